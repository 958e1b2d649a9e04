/* SUBSCRIBE / UNSUBSCRIBE: the subscription list (petrel_subscribe). */
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
    /* Only when the name is a mailbox; nothing about mail changed, so no
     * session resyncs for it (the id matches no selected mailbox but its own). */
    if (PQntuples(r->res) > 0 && !PQgetisnull(r->res, 0, 0))
        notify_change(req->account_id, db_int(r->res, 0, 0), 0, req->session);
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    rpc_reply(req, &resp);
}

void op_subscribe(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    const Petrel__SubscribeReq *sr = msg->subscribe;
    struct db_param p[] = { { acct }, { sr->name }, { sr->unsubscribe ? "f" : "t" } };
    db_query(backend->db, STMT_SUBSCRIBE, p, 3, done, req);
}
