/* LIST-EXTENDED / LSUB / LIST-STATUS: every mailbox, optionally with the
 * subscribed names that do not exist and every mailbox's counters, DELETED
 * among them (petrel_list_ext_deleted, 017), answered as a ListResp. */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>

static int status_marker;

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
        return;
    }
    bool with_status = req->state == &status_marker;
    int n = PQntuples(r->res);
    Petrel__MailboxInfo *infos = calloc((size_t)n + 1, sizeof *infos);
    Petrel__MailboxInfo **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    Petrel__StatusResp *st = calloc((size_t)n + 1, sizeof *st);
    char (*ids)[OBJECTID_LEN] = calloc((size_t)n + 1, sizeof *ids);
    if (!infos || !ptrs || !st || !ids)
        abort();
    for (int i = 0; i < n; i++) {
        Petrel__MailboxInfo *m = &infos[i];
        petrel__mailbox_info__init(m);
        m->name = PQgetvalue(r->res, i, 0);
        m->special_use = PQgetvalue(r->res, i, 1);
        m->subscribed = PQgetvalue(r->res, i, 2)[0] == 't';
        m->has_children = PQgetvalue(r->res, i, 3)[0] == 't';
        m->nonexistent = PQgetvalue(r->res, i, 4)[0] == 't';
        if (with_status && !m->nonexistent) {
            petrel__status_resp__init(&st[i]);
            st[i].messages = (uint32_t)db_int(r->res, i, 5);
            st[i].uidnext = (uint32_t)db_int(r->res, i, 6);
            st[i].uidvalidity = (uint32_t)db_int(r->res, i, 7);
            st[i].unseen = (uint32_t)db_int(r->res, i, 8);
            st[i].highestmodseq = (uint64_t)db_int(r->res, i, 9);
            st[i].size = (uint64_t)db_int(r->res, i, 10);
            objectid_format(OBJECTID_MAILBOX, PQgetvalue(r->res, i, 11), ids[i]);
            st[i].objectid = ids[i];
            st[i].deleted = (uint32_t)db_int(r->res, i, 12);   /* RETURN (STATUS (DELETED)) */
            m->status = &st[i];
        }
        ptrs[i] = m;
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
    free(st);
    free(ids);
}

void op_list_ext(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    const Petrel__ListExtReq *lr = msg->list_ext;
    /* All done() needs to know; points at a static, nothing to free. */
    req->state = lr->status ? &status_marker : NULL;
    struct db_param p[] = { { acct }, { lr->subscriptions ? "t" : "f" }, { lr->status ? "t" : "f" } };
    db_query(backend->db, STMT_LIST_EXT, p, 3, done, req);
}
