/* FETCH metadata (flags, sizes, dates) of a set of UIDs; with set_seen it
 * first sets \Seen, as a non-PEEK body fetch must. */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>

void reply_meta_rows(struct rpc_req *req, const PGresult *res, int is_store);

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status != DB_OK)
        rpc_fail_db(req, r);
    else
        reply_meta_rows(req, r->res, 0);
}

void op_meta(struct rpc_req *req, const Petrel__Request *msg)
{
    char acct[24], mbox[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", (long long)msg->meta->mailbox_id);
    char *lo, *hi;
    uid_ranges_to_arrays(msg->meta->uids, &lo, &hi);
    struct db_param p[] = { { acct }, { mbox }, { lo }, { hi }, { msg->meta->set_seen ? "t" : "f" } };
    db_query(backend->db, STMT_META, p, 5, done, req);
    free(lo);
    free(hi);
}
