/* Sends rows of (uid, flags, keywords, internaldate, tz_offset, size,
 * header_size, modseq, blob_id) as MessageMeta batches, in text or binary
 * format (keywords always as text[]'s text form). */
#include "backend.h"

#include "objectid.h"
#include "pgarray.h"

#include <stdlib.h>

/* Messages per response frame: about 40 bytes each, far below rpc_max_frame. */
#define META_BATCH 2000

static long long col_int(const PGresult *res, int row, int col)
{
    return PQfformat(res, col) ? db_bin_int(res, row, col) : db_int(res, row, col);
}

static void fill(Petrel__MessageMeta *m, const PGresult *res, int row, char ***kw_r)
{
    petrel__message_meta__init(m);
    m->uid = (uint32_t)col_int(res, row, 0);
    m->flags = (uint32_t)col_int(res, row, 1);
    size_t nkw;
    *kw_r = pg_parse_text_array(PQgetvalue(res, row, 2), &nkw);
    m->keywords = *kw_r;
    m->n_keywords = nkw;
    m->internaldate = col_int(res, row, 3);
    m->tz_offset = (int32_t)col_int(res, row, 4);
    m->size = (uint64_t)col_int(res, row, 5);
    m->header_size = (uint64_t)col_int(res, row, 6);
    m->modseq = (uint64_t)col_int(res, row, 7);
    m->blob_id = col_int(res, row, 8);
}

void meta_flags_from_row(Petrel__MessageMeta *m, const PGresult *res, int row, int col)
{
    petrel__message_meta__init(m);
    m->uid = (uint32_t)col_int(res, row, col);
    m->flags = (uint32_t)col_int(res, row, col + 1);
    size_t nkw = 0;
    m->keywords = pg_parse_text_array(PQgetvalue(res, row, col + 2), &nkw);
    m->n_keywords = nkw;
    m->modseq = (uint64_t)col_int(res, row, col + 3);
}

/* petrel_meta_inline (012_inline_fetch_parsed_delivery.sql): the body, where it came along.
 * Returns its size (0 when none). */
static size_t fill_inline(Petrel__MessageMeta *m, const PGresult *res, int row, int col)
{
    if (col < 0 || PQgetisnull(res, row, col))
        return 0;
    m->inlined = true;
    m->inline_body.data = (uint8_t *)PQgetvalue(res, row, col);
    m->inline_body.len = (size_t)PQgetlength(res, row, col);
    return m->inline_body.len;
}

/* Finds the ids of uid among oids' rows (both in UID order). */
static const struct meta_objectid_row *oid_row(const struct meta_objectids *oids, uint32_t uid,
                                               size_t *at)
{
    while (*at < oids->n && oids->rows[*at].uid < uid)
        (*at)++;
    return *at < oids->n && oids->rows[*at].uid == uid ? &oids->rows[*at] : NULL;
}

/* Finds the structure of uid among mm's rows (both in UID order). */
static const struct meta_mime_row *mime_row(const struct meta_mime *mm, uint32_t uid, size_t *at)
{
    while (*at < mm->n && mm->rows[*at].uid < uid)
        (*at)++;
    return *at < mm->n && mm->rows[*at].uid == uid ? &mm->rows[*at] : NULL;
}

void reply_meta_rows(struct rpc_req *req, const PGresult *res, const struct meta_mime *mm,
                     const struct meta_objectids *oids, size_t inline_cut)
{
    size_t at = 0, oid_at = 0;
    int n = PQntuples(res);
    /* petrel_meta_since: column 9 is the modseq setting \Seen gave; a row
     * carrying it was changed by this call (007_changes.sql). */
    uint64_t seen_modseq = 0;
    for (int i = 0; PQfnumber(res, "seen_modseq") == 9 && i < n && !seen_modseq; i++)
        if (db_int(res, i, 9) > 0 && db_int(res, i, 9) == db_int(res, i, 7))
            seen_modseq = (uint64_t)db_int(res, i, 9);
    /* petrel_meta_crlf (009_pop3_size.sql): the POP3 size. */
    int crlf_col = PQfnumber(res, "crlf_size");
    int inline_col = PQfnumber(res, "inline_body");
    /* Sized for the rows there are: a full batch is ~0.5 MB, whose calloc
     * (mmap, page faults, zeroing) was 15% of a backend's CPU when most
     * answers are one message (FETCH BODY[] of one message). */
    size_t cap = n < META_BATCH ? (size_t)n + 1 : META_BATCH;
    Petrel__MessageMeta *metas = calloc(cap, sizeof *metas);
    Petrel__MessageMeta **ptrs = calloc(cap, sizeof *ptrs);
    char ***kws = calloc(cap, sizeof *kws);
    int row = 0;
    do {
        int k = 0;
        /* A frame with bodies ends once they reach the largest one asked
         * for, so it stays within what the frontend accepts. */
        size_t inline_bytes = 0;
        for (; k < META_BATCH && row < n && (!inline_bytes || inline_bytes < inline_cut); k++, row++) {
            fill(&metas[k], res, row, &kws[k]);
            inline_bytes += fill_inline(&metas[k], res, row, inline_col);
            if (crlf_col >= 0)
                metas[k].crlf_size = (uint64_t)db_int(res, row, crlf_col);
            const struct meta_mime_row *m = mm ? mime_row(mm, metas[k].uid, &at) : NULL;
            if (m) {
                metas[k].envelope = m->envelope;
                metas[k].bodystructure = m->bodystructure;
                metas[k].body = m->body;
            }
            /* A message missing here arrived between the two queries: it is
             * not in the session's view yet, and the frontend skips it. */
            const struct meta_objectid_row *o = oids ? oid_row(oids, metas[k].uid, &oid_at) : NULL;
            if (o) {
                metas[k].emailid = (char *)o->emailid;
                metas[k].threadid = (char *)o->threadid;
                metas[k].savedate = o->savedate;
            }
            ptrs[k] = &metas[k];
        }
        Petrel__MetaResp mr = PETREL__META_RESP__INIT;
        mr.messages = ptrs;
        mr.n_messages = (size_t)k;
        mr.seen_modseq = seen_modseq;
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        resp.result_case = PETREL__RESPONSE__RESULT_META;
        resp.meta = &mr;
        resp.more = row < n;
        int last = !resp.more;
        rpc_reply(req, &resp);   /* frees req on the last batch */
        for (int i = 0; i < k; i++)
            pg_free_strings(kws[i], metas[i].n_keywords);
        if (last)
            break;
    } while (1);
    free(metas);
    free(ptrs);
    free(kws);
}
