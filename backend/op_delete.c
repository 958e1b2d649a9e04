/* DELETE: a mailbox, its messages and their bodies (petrel_mailbox_delete). */
#include "backend.h"
#include "notify.h"

#include <stdio.h>
#include <string.h>

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status == DB_OK) {
        int64_t id = PQntuples(r->res) > 0 ? db_int(r->res, 0, 0) : 0;
        notify_change(req->account_id, id, 0, req->session);
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        rpc_reply(req, &resp);
        return;
    }
    if (r->status != DB_TEMPFAIL && strcmp(r->sqlstate, "2BP01") == 0) {
        Petrel__DeleteResp dr = PETREL__DELETE_RESP__INIT;
        dr.has_children = true;
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        resp.status = PETREL__STATUS__NO;
        resp.text = "Mailbox has children, delete them first";
        resp.result_case = PETREL__RESPONSE__RESULT_MAILBOX_DELETE;
        resp.mailbox_delete = &dr;
        rpc_reply(req, &resp);
        return;
    }
    rpc_fail_db(req, r);
}

void op_mailbox_delete(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    struct db_param p[] = { { acct }, { msg->mailbox_delete->name } };
    db_query(backend->db, STMT_MAILBOX_DELETE, p, 2, done, req);
}
