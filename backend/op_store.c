/* STORE: changes flags and keywords, returning every matched message's new
 * state so the frontend can answer with FETCH responses. With conditional
 * (RFC 7162 UNCHANGEDSINCE) messages changed after unchangedsince are left
 * alone and reported as modified (petrel_store_cond, 007_changes.sql). */
#include "backend.h"

#include "notify.h"
#include "pgarray.h"

#include <stdio.h>
#include <stdlib.h>

void reply_store_rows(struct rpc_req *req, const PGresult *res);   /* store_reply.c */
uint64_t store_rows_modseq(const PGresult *res);

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    int64_t *mailbox_id = req->state;
    req->state = NULL;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
    } else {
        /* The new modseq of what changed; nothing changed: nothing to tell. */
        uint64_t modseq = store_rows_modseq(r->res);
        if (modseq)
            notify_change(req->account_id, *mailbox_id, modseq, req->session);
        reply_store_rows(req, r->res);
    }
    free(mailbox_id);
}

void op_store(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__StoreReq *s = msg->store;
    char acct[24], mbox[24], mode[8], flags[16], since[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", (long long)s->mailbox_id);
    snprintf(mode, sizeof mode, "%d", (int)s->mode);
    snprintf(flags, sizeof flags, "%u", s->flags);
    char *lo, *hi;
    uid_ranges_to_arrays(s->uids, &lo, &hi);
    char *kw = pg_text_array(s->keywords, s->n_keywords);
    uint64_t u = s->unchangedsince > INT64_MAX ? INT64_MAX : s->unchangedsince;
    snprintf(since, sizeof since, "%llu", (unsigned long long)u);
    struct db_param p[] = { { acct }, { mbox }, { lo }, { hi }, { mode }, { flags }, { kw },
                            { s->conditional ? since : NULL } };
    int64_t *mailbox_id = malloc(sizeof *mailbox_id);   /* for the notification */
    if (!mailbox_id)
        abort();
    *mailbox_id = s->mailbox_id;
    req->state = mailbox_id;
    db_query(backend->db, STMT_STORE_COND, p, 8, done, req);
    free(lo);
    free(hi);
    free(kw);
}
