/* LIST: every mailbox of the account with its attributes. */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
        return;
    }
    int n = PQntuples(r->res);
    Petrel__MailboxInfo *infos = calloc((size_t)n + 1, sizeof *infos);
    Petrel__MailboxInfo **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    for (int i = 0; i < n; i++) {
        petrel__mailbox_info__init(&infos[i]);
        infos[i].name = PQgetvalue(r->res, i, 0);
        infos[i].special_use = PQgetvalue(r->res, i, 1);
        infos[i].subscribed = PQgetvalue(r->res, i, 2)[0] == 't';
        infos[i].has_children = PQgetvalue(r->res, i, 3)[0] == 't';
        ptrs[i] = &infos[i];
    }
    Petrel__ListResp lr = PETREL__LIST_RESP__INIT;
    lr.n_mailboxes = (size_t)n;
    lr.mailboxes = ptrs;
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_LIST;
    resp.list = &lr;
    rpc_reply(req, &resp);
    free(infos);
    free(ptrs);
}

void op_list(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    struct db_param p[] = { { acct } };
    db_query(backend->db, STMT_LIST, p, 1, done, req);
}
