/* STORE: changes flags and keywords, returning every matched message's new
 * state so the frontend can answer with FETCH responses. */
#include "backend.h"

#include "notify.h"
#include "pgarray.h"

#include <stdio.h>
#include <stdlib.h>


static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    int64_t *mailbox_id = req->state;
    req->state = NULL;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
    } else {
        /* Column 7 is each changed message's new modseq. */
        uint64_t modseq = 0;
        for (int i = 0; i < PQntuples(r->res); i++)
            if ((uint64_t)db_int(r->res, i, 7) > modseq)
                modseq = (uint64_t)db_int(r->res, i, 7);
        if (PQntuples(r->res) > 0)
            notify_change(req->account_id, *mailbox_id, modseq, req->session);
        reply_meta_rows(req, r->res, 1, NULL);
    }
    free(mailbox_id);
}

void op_store(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__StoreReq *s = msg->store;
    char acct[24], mbox[24], mode[8], flags[16];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", (long long)s->mailbox_id);
    snprintf(mode, sizeof mode, "%d", (int)s->mode);
    snprintf(flags, sizeof flags, "%u", s->flags);
    char *lo, *hi;
    uid_ranges_to_arrays(s->uids, &lo, &hi);
    char *kw = pg_text_array(s->keywords, s->n_keywords);
    struct db_param p[] = { { acct }, { mbox }, { lo }, { hi }, { mode }, { flags }, { kw } };
    int64_t *mailbox_id = malloc(sizeof *mailbox_id);   /* for the notification */
    if (!mailbox_id)
        abort();
    *mailbox_id = s->mailbox_id;
    req->state = mailbox_id;
    db_query(backend->db, STMT_STORE, p, 7, done, req);
    free(lo);
    free(hi);
    free(kw);
}
