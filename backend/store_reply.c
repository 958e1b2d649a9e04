/* Sends rows of petrel_store_cond (uid, flags, keywords, modseq, changed,
 * modified) as StoreResp batches: messages for the rows stored or left as
 * they were, modified for the UIDs that failed UNCHANGEDSINCE, and on every
 * batch the modseq this STORE gave what it changed (0: nothing changed). */
#include "backend.h"

#include "pgarray.h"

#include <stdlib.h>
#include <string.h>

/* Rows per frame, as META_BATCH in meta_reply.c: far below rpc_max_frame. */
#define STORE_BATCH 2000

static bool is_true(const PGresult *res, int row, int col)
{
    return strcmp(PQgetvalue(res, row, col), "t") == 0;
}

uint64_t store_rows_modseq(const PGresult *res)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (is_true(res, i, 4))
            return (uint64_t)db_int(res, i, 3);
    return 0;
}

void reply_store_rows(struct rpc_req *req, const PGresult *res)
{
    int n = PQntuples(res);
    uint64_t modseq = store_rows_modseq(res);
    /* Sized for the rows there are, as in meta_reply.c: a full batch is
     * ~0.5 MB to zero for what is mostly a one-message STORE. */
    size_t cap = n < STORE_BATCH ? (size_t)n + 1 : STORE_BATCH;
    Petrel__MessageMeta *metas = calloc(cap, sizeof *metas);
    Petrel__MessageMeta **ptrs = calloc(cap, sizeof *ptrs);
    uint32_t *modified = malloc(cap * sizeof *modified);
    if (!metas || !ptrs || !modified)
        abort();
    int row = 0;
    for (;;) {
        size_t k = 0, nm = 0;
        for (; row < n && k + nm < STORE_BATCH; row++) {
            if (is_true(res, row, 5)) {
                modified[nm++] = (uint32_t)db_int(res, row, 0);
                continue;
            }
            meta_flags_from_row(&metas[k], res, row, 0);
            ptrs[k] = &metas[k];
            k++;
        }
        Petrel__StoreResp sr = PETREL__STORE_RESP__INIT;
        sr.messages = ptrs;
        sr.n_messages = k;
        sr.modified = modified;
        sr.n_modified = nm;
        sr.modseq = modseq;
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        resp.result_case = PETREL__RESPONSE__RESULT_STORE;
        resp.store = &sr;
        resp.more = row < n;
        bool last = !resp.more;
        rpc_reply(req, &resp);   /* frees req on the last batch */
        for (size_t i = 0; i < k; i++)
            pg_free_strings(metas[i].keywords, metas[i].n_keywords);
        if (last)
            break;
    }
    free(metas);
    free(ptrs);
    free(modified);
}
