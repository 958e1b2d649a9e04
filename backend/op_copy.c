/* COPY and MOVE: one statement; the reply pairs source and new UIDs for
 * COPYUID. */
#include "backend.h"
#include "notify.h"

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
    /* The destination is known by name only (and MOVE changes the source
     * too): mailbox 0 tells every session of the account to look. */
    if (n > 0)
        notify_change(req->account_id, 0, 0, req->session);
    Petrel__CopyResp cr = PETREL__COPY_RESP__INIT;
    cr.src_uids = malloc((size_t)n * sizeof *cr.src_uids + 1);
    cr.dst_uids = malloc((size_t)n * sizeof *cr.dst_uids + 1);
    cr.n_src_uids = cr.n_dst_uids = (size_t)n;
    for (int i = 0; i < n; i++) {
        cr.uidvalidity = (uint32_t)db_int(r->res, i, 0);
        cr.src_uids[i] = (uint32_t)db_int(r->res, i, 1);
        cr.dst_uids[i] = (uint32_t)db_int(r->res, i, 2);
    }
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_COPY;
    resp.copy = &cr;
    rpc_reply(req, &resp);
    free(cr.src_uids);
    free(cr.dst_uids);
}

void op_copy(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__CopyReq *c = msg->copy;
    char acct[24], mbox[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", (long long)c->mailbox_id);
    char *lo, *hi;
    uid_ranges_to_arrays(c->uids, &lo, &hi);
    struct db_param p[] = { { acct }, { mbox }, { lo }, { hi }, { c->dest }, { c->move ? "t" : "f" } };
    db_query(backend->db, STMT_COPY, p, 6, done, req);
    free(lo);
    free(hi);
}
