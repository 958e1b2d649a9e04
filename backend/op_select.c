/* SELECT / EXAMINE: the mailbox's state and every UID in it, which the
 * frontend keeps as the session's sequence map. */
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
    if (PQntuples(r->res) != 1) {
        rpc_fail(req, PETREL__STATUS__NONEXISTENT, "Mailbox doesn't exist");
        return;
    }
    const PGresult *res = r->res;
    Petrel__SelectResp sr = PETREL__SELECT_RESP__INIT;
    sr.mailbox_id = db_bin_int(res, 0, 0);
    sr.uidvalidity = (uint32_t)db_bin_int(res, 0, 1);
    sr.uidnext = (uint32_t)db_bin_int(res, 0, 2);
    sr.highestmodseq = (uint64_t)db_bin_int(res, 0, 3);
    sr.unseen = (uint32_t)db_bin_int(res, 0, 4);
    sr.first_unseen_uid = (uint32_t)db_bin_int(res, 0, 5);
    char mailboxid[OBJECTID_LEN];
    objectid_format(OBJECTID_MAILBOX, PQgetvalue(res, 0, 7), mailboxid);
    sr.objectid = mailboxid;
    /* uids arrives as packed 4-byte big-endian integers. */
    size_t len = PQgetisnull(res, 0, 6) ? 0 : (size_t)PQgetlength(res, 0, 6);
    const unsigned char *u = (const unsigned char *)PQgetvalue(res, 0, 6);
    sr.n_uids = len / 4;
    sr.uids = malloc(sr.n_uids * sizeof *sr.uids + 1);
    for (size_t i = 0; i < sr.n_uids; i++)
        sr.uids[i] = (uint32_t)u[4 * i] << 24 | (uint32_t)u[4 * i + 1] << 16 |
                     (uint32_t)u[4 * i + 2] << 8 | u[4 * i + 3];
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_SELECT;
    resp.select = &sr;
    rpc_reply(req, &resp);
    free(sr.uids);
}

void op_select(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    struct db_param p[] = { { acct }, { msg->select->mailbox } };
    db_query(backend->db, STMT_SELECT, p, 2, done, req);
}
