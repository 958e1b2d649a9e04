/* EXPUNGE: removes messages (only \Deleted ones for IMAP), leaving tombstones;
 * then prunes the mailbox's tombstones older than expunge_tombstone_days
 * (petrel_expunge_prune, 007_changes.sql). */
#include "backend.h"
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    int64_t *mailbox_id = req->state;
    req->state = NULL;
    if (r->status != DB_OK) {
        free(mailbox_id);
        rpc_fail_db(req, r);
        return;
    }
    int n = PQntuples(r->res);
    uint64_t modseq = n > 0 ? (uint64_t)db_int(r->res, 0, 1) : 0;
    if (n > 0)
        notify_change(req->account_id, *mailbox_id, modseq, req->session);
    free(mailbox_id);
    Petrel__ExpungeResp er = PETREL__EXPUNGE_RESP__INIT;
    er.uids = malloc((size_t)n * sizeof *er.uids + 1);
    er.n_uids = (size_t)n;
    er.modseq = modseq;
    for (int i = 0; i < n; i++)
        er.uids[i] = (uint32_t)db_int(r->res, i, 0);
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_EXPUNGE;
    resp.expunge = &er;
    rpc_reply(req, &resp);
    free(er.uids);
}

void op_expunge(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__ExpungeReq *e = msg->expunge;
    char acct[24], mbox[24], keep[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", (long long)e->mailbox_id);
    char *lo = NULL, *hi = NULL;
    int all = !e->uids || e->uids->n_bounds == 0;
    if (!all)
        uid_ranges_to_arrays(e->uids, &lo, &hi);
    snprintf(keep, sizeof keep, "%ld", backend->cfg->expunge_tombstone_days);
    struct db_param p[] = { { acct }, { mbox }, { lo }, { hi }, { e->require_deleted ? "t" : "f" },
                            { keep } };
    int64_t *mailbox_id = malloc(sizeof *mailbox_id);   /* for the notification */
    if (!mailbox_id)
        abort();
    *mailbox_id = e->mailbox_id;
    req->state = mailbox_id;
    db_query(backend->db, STMT_EXPUNGE_PRUNE, p, 6, done, req);
    free(lo);
    free(hi);
}
