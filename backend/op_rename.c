/* RENAME: a mailbox with everything below it (petrel_mailbox_rename). */
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
    /* Several mailboxes may have changed names: "anything" (0), so every
     * session of the account with a mailbox selected checks it. */
    notify_change(req->account_id, 0, 0, req->session);
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    rpc_reply(req, &resp);
}

void op_mailbox_rename(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    const Petrel__RenameReq *rr = msg->mailbox_rename;
    struct db_param p[] = { { acct }, { rr->from }, { rr->to } };
    db_query(backend->db, STMT_MAILBOX_RENAME, p, 3, done, req);
}
