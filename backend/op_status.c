/* STATUS: counters of a mailbox without selecting it. */
#include "backend.h"

#include <stdio.h>

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) != 1) {
        rpc_fail(req, PETREL__STATUS__NONEXISTENT, "Mailbox doesn't exist");
        return;
    }
    Petrel__StatusResp sr = PETREL__STATUS_RESP__INIT;
    sr.messages = (uint32_t)db_int(r->res, 0, 0);
    sr.uidnext = (uint32_t)db_int(r->res, 0, 1);
    sr.uidvalidity = (uint32_t)db_int(r->res, 0, 2);
    sr.unseen = (uint32_t)db_int(r->res, 0, 3);
    sr.highestmodseq = (uint64_t)db_int(r->res, 0, 4);
    sr.size = (uint64_t)db_int(r->res, 0, 5);
    /* MAILBOXID (010_objectid_savedate.sql), then with STMT_STATUS_DELETED
     * the \Deleted count. */
    char mailboxid[OBJECTID_LEN];
    objectid_format(OBJECTID_MAILBOX, PQgetvalue(r->res, 0, 6), mailboxid);
    sr.objectid = mailboxid;
    if (PQnfields(r->res) > 7)
        sr.deleted = (uint32_t)db_int(r->res, 0, 7);
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_STATUS_RESP;
    resp.status_resp = &sr;
    rpc_reply(req, &resp);
}

void op_status(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    struct db_param p[] = { { acct }, { msg->status->mailbox } };
    db_query(backend->db, msg->status->want_deleted ? STMT_STATUS_DELETED : STMT_STATUS, p, 2,
             done, req);
}
