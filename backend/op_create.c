/* CREATE: a new mailbox. */
#include "backend.h"
#include "notify.h"

#include <stdio.h>

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
        return;
    }
    /* petrel_mailbox_create_objectid: the new mailbox's id and MAILBOXID. */
    bool row = PQntuples(r->res) > 0;
    notify_change(req->account_id, row ? db_int(r->res, 0, 0) : 0, 0, req->session);
    Petrel__CreateResp cr = PETREL__CREATE_RESP__INIT;
    char mailboxid[OBJECTID_LEN] = "";
    if (row) {
        cr.mailbox_id = db_int(r->res, 0, 0);
        objectid_format(OBJECTID_MAILBOX, PQgetvalue(r->res, 0, 1), mailboxid);
    }
    cr.objectid = mailboxid;
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_CREATE;
    resp.create = &cr;
    rpc_reply(req, &resp);
}

void op_create(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    const char *su = msg->create->special_use;
    struct db_param p[] = { { acct }, { msg->create->name }, { su && *su ? su : NULL } };
    db_query(backend->db, STMT_MAILBOX_CREATE, p, 3, done, req);
}
