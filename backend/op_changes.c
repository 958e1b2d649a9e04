/* CHANGES (CONDSTORE/QRESYNC, RFC 7162): what changed in a mailbox since a
 * modseq, from one snapshot (petrel_changes, 007_changes.sql). The answer is
 * batched like MetaResp so that a 10,000-message expunge or a STORE 1:* on a
 * big mailbox never makes one huge frame. */
#include "backend.h"

#include "pgarray.h"

#include <stdio.h>
#include <stdlib.h>

/* Per frame: changed messages are ~40 bytes plus keywords, vanished UIDs at
 * most 5 bytes: both far below rpc_max_frame (4 MiB by default). */
#define CHANGED_BATCH 2000
#define VANISHED_BATCH 100000

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
        return;
    }
    const PGresult *res = r->res;
    int n = PQntuples(res);
    if (n < 1 || db_int(res, 0, 0) != 0) {
        rpc_fail(req, PETREL__STATUS__TEMPFAIL, "Internal error");
        return;
    }
    Petrel__ChangesResp cr = PETREL__CHANGES_RESP__INIT;
    cr.uidnext = (uint32_t)db_int(res, 0, 1);
    cr.too_old = db_int(res, 0, 2) != 0;
    cr.highestmodseq = (uint64_t)db_int(res, 0, 4);
    cr.uidvalidity = (uint32_t)db_int(res, 0, 5);

    /* Sized for the rows there are, as in meta_reply.c. */
    size_t cap = (size_t)n < CHANGED_BATCH ? (size_t)n : CHANGED_BATCH;
    Petrel__MessageMeta *metas = calloc(cap, sizeof *metas);
    Petrel__MessageMeta **ptrs = calloc(cap, sizeof *ptrs);
    uint32_t *vanished = malloc(((size_t)n < VANISHED_BATCH ? (size_t)n : VANISHED_BATCH) * sizeof *vanished);
    if (!metas || !ptrs || !vanished)
        abort();
    int row = 1;
    for (;;) {
        size_t nc = 0, nv = 0;
        for (; row < n && nc < CHANGED_BATCH && nv < VANISHED_BATCH; row++) {
            if (db_int(res, row, 0) == 1) {
                meta_flags_from_row(&metas[nc], res, row, 1);
                ptrs[nc] = &metas[nc];
                nc++;
            } else {
                vanished[nv++] = (uint32_t)db_int(res, row, 1);
            }
        }
        cr.changed = ptrs;
        cr.n_changed = nc;
        cr.vanished = vanished;
        cr.n_vanished = nv;
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        resp.result_case = PETREL__RESPONSE__RESULT_CHANGES;
        resp.changes = &cr;
        resp.more = row < n;
        bool last = !resp.more;
        rpc_reply(req, &resp);   /* frees req on the last batch */
        for (size_t i = 0; i < nc; i++)
            pg_free_strings(metas[i].keywords, metas[i].n_keywords);
        if (last)
            break;
    }
    free(metas);
    free(ptrs);
    free(vanished);
}

void op_changes(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__ChangesReq *c = msg->changes;
    char acct[24], mbox[24], since[24];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", (long long)c->mailbox_id);
    /* modseqs are positive 63-bit values (RFC 7162); clamp a hostile one. */
    uint64_t s = c->since_modseq > INT64_MAX ? INT64_MAX : c->since_modseq;
    snprintf(since, sizeof since, "%llu", (unsigned long long)s);
    struct db_param p[] = { { acct }, { mbox }, { since } };
    db_query(backend->db, STMT_CHANGES, p, 3, done, req);
}
