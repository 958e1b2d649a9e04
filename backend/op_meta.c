/* FETCH metadata (flags, sizes, dates) of a set of UIDs; with set_seen it
 * first sets \Seen, as a non-PEEK body fetch must. With want_mime it adds
 * ENVELOPE, BODYSTRUCTURE and BODY from the stored parse, parsing first any
 * body that was stored without one; with want_objectid EMAILID, THREADID and
 * SAVEDATE. Those come from queries of their own before the metadata, so
 * the common FETCH pays nothing for them. With inline_max it adds the
 * bodies of small messages, so their FETCH BODY[] needs no stream of its
 * own. */
#include "backend.h"

#include "mime_store.h"
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct meta_state {
    char acct[24], mbox[24];
    char *lo, *hi;
    bool set_seen;
    bool crlf;                /* want_crlf_size: POP3's listing */
    char since[24];           /* CHANGEDSINCE (RFC 7162); "" for none */
    char inline_lo[16], inline_hi[16];   /* the one range of an inline request */
    uint64_t inline_max;      /* 0 unless bodies go inline */
    int64_t mailbox_id;
    bool reparsed;            /* ensure ran once already */
    bool want_mime, want_objectid;
    bool mime_read, objectid_read;
    struct meta_mime mm;
    struct meta_objectids oids;
};

static void state_free(struct meta_state *st)
{
    for (size_t i = 0; i < st->mm.n; i++) {
        free(st->mm.rows[i].envelope);
        free(st->mm.rows[i].bodystructure);
        free(st->mm.rows[i].body);
    }
    free(st->mm.rows);
    free(st->oids.rows);
    free(st->lo);
    free(st->hi);
    free(st);
}

static void meta_query(struct rpc_req *req);

static void meta_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct meta_state *st = req->state;
    req->state = NULL;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
    } else if (st && st->inline_max && PQntuples(r->res) == 0) {
        /* petrel_meta_inline has no rows for a missing mailbox either:
         * petrel_meta tells the two apart (P0002). */
        st->inline_max = 0;
        req->state = st;
        meta_query(req);
        return;
    } else {
        /* \Seen set here (a row carries petrel_meta_since's seen_modseq):
         * other sessions learn of it like of a STORE. */
        for (int i = 0; st && st->set_seen && PQnfields(r->res) > 9 && i < PQntuples(r->res); i++)
            if (db_int(r->res, i, 9) > 0 && db_int(r->res, i, 9) == db_int(r->res, i, 7)) {
                notify_change(req->account_id, st->mailbox_id, (uint64_t)db_int(r->res, i, 9),
                              req->session);
                break;
            }
        reply_meta_rows(req, r->res, st && st->mm.rows ? &st->mm : NULL,
                        st && st->oids.rows ? &st->oids : NULL,
                        st ? (size_t)st->inline_max : 0);
    }
    if (st)
        state_free(st);
}

static void meta_query(struct rpc_req *req)
{
    struct meta_state *st = req->state;
    struct db_param p[] = { { st->acct }, { st->mbox }, { st->lo }, { st->hi },
                            { st->set_seen ? "t" : "f" } };
    /* CHANGEDSINCE, and \Seen setting (which then tells its modseq). */
    if (st->since[0] || st->set_seen) {
        struct db_param ps[] = { { st->acct }, { st->mbox }, { st->lo }, { st->hi },
                                 { st->set_seen ? "t" : "f" }, { st->since[0] ? st->since : "0" } };
        db_query(backend->db, STMT_META_SINCE, ps, 6, meta_done, req);
        return;
    }
    if (st->inline_max) {   /* 012_inline_fetch_parsed_delivery.sql */
        char max[24];
        snprintf(max, sizeof max, "%llu", (unsigned long long)st->inline_max);
        struct db_param pi[] = { { st->acct }, { st->mbox }, { st->inline_lo }, { st->inline_hi },
                                 { max } };
        db_query(backend->db, STMT_META_INLINE, pi, 5, meta_done, req);
        return;
    }
    if (st->crlf) {   /* 009_pop3_size.sql */
        db_query(backend->db, STMT_META_CRLF, p, 4, meta_done, req);
        return;
    }
    db_query(backend->db, STMT_META, p, 5, meta_done, req);
}

static void next_query(struct rpc_req *req);

static void parsed(struct rpc_req *req, int ok, void *ctx)
{
    struct meta_state *st = req->state;
    if (req->cancelled || !ok) {
        req->state = NULL;
        state_free(st);
        if (req->cancelled)
            rpc_done(req);
        else
            rpc_fail(req, PETREL__STATUS__TEMPFAIL, "Cannot parse messages now");
        return;
    }
    next_query(req);
}

static char *copy_value(const PGresult *res, int row, int col)
{
    int len = PQgetlength(res, row, col);
    char *s = malloc((size_t)len + 1);
    memcpy(s, PQgetvalue(res, row, col), (size_t)len);
    s[len] = '\0';
    return s;
}

/* A side query (MIME, object ids) failed or the client went away: frees
 * the state and answers; true if the caller must stop. */
static bool query_ended(struct rpc_req *req, const struct db_result *r)
{
    if (r->status == DB_OK && !req->cancelled)
        return false;
    state_free(req->state);
    req->state = NULL;
    if (req->cancelled)
        rpc_done(req);
    else
        rpc_fail_db(req, r);
    return true;
}

static void mime_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct meta_state *st = req->state;
    if (query_ended(req, r))
        return;
    int n = PQntuples(r->res);
    uint32_t *uids = malloc((size_t)n * sizeof *uids + 1);
    int64_t *blobs = malloc((size_t)n * sizeof *blobs + 1);
    size_t missing = 0;
    for (int i = 0; i < n; i++)
        if (!*PQgetvalue(r->res, i, 3)) {
            uids[missing] = (uint32_t)db_bin_int(r->res, i, 0);
            blobs[missing++] = db_bin_int(r->res, i, 1);
        }
    if (missing && !st->reparsed) {
        st->reparsed = true;
        mime_ensure(req, st->mailbox_id, uids, blobs, missing, parsed, NULL);
        free(uids);
        free(blobs);
        return;
    }
    free(uids);
    free(blobs);
    st->mm.rows = calloc((size_t)n + 1, sizeof *st->mm.rows);
    for (int i = 0; i < n; i++) {
        struct meta_mime_row *m = &st->mm.rows[st->mm.n];
        if (!*PQgetvalue(r->res, i, 3))
            continue;   /* still unparsed (a parse failed): left out */
        m->uid = (uint32_t)db_bin_int(r->res, i, 0);
        m->envelope = copy_value(r->res, i, 5);
        m->bodystructure = copy_value(r->res, i, 6);
        m->body = copy_value(r->res, i, 7);
        st->mm.n++;
    }
    st->mime_read = true;
    next_query(req);
}

static void mime_query(struct rpc_req *req)
{
    struct meta_state *st = req->state;
    struct db_param p[] = { { st->acct }, { st->mbox }, { st->lo }, { st->hi } };
    db_query(backend->db, STMT_MIME, p, 4, mime_done, req);
}

static void objectid_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct meta_state *st = req->state;
    if (query_ended(req, r))
        return;
    int n = PQntuples(r->res);
    st->oids.rows = calloc((size_t)n + 1, sizeof *st->oids.rows);
    if (!st->oids.rows)
        abort();
    for (int i = 0; i < n; i++) {
        struct meta_objectid_row *o = &st->oids.rows[i];
        o->uid = (uint32_t)db_int(r->res, i, 0);
        objectid_format(OBJECTID_EMAIL, PQgetvalue(r->res, i, 1), o->emailid);
        objectid_format(OBJECTID_THREAD, PQgetvalue(r->res, i, 2), o->threadid);   /* NULL: "" */
        o->savedate = db_int(r->res, i, 3);
    }
    st->oids.n = (size_t)n;
    st->objectid_read = true;
    next_query(req);
}

static void objectid_query(struct rpc_req *req)
{
    struct meta_state *st = req->state;
    struct db_param p[] = { { st->acct }, { st->mbox }, { st->lo }, { st->hi } };
    db_query(backend->db, STMT_META_OBJECTID, p, 4, objectid_done, req);
}

/* The queries a FETCH needs, the metadata last (it may set \Seen). */
static void next_query(struct rpc_req *req)
{
    struct meta_state *st = req->state;
    if (st->want_objectid && !st->objectid_read)
        objectid_query(req);
    else if (st->want_mime && !st->mime_read)
        mime_query(req);
    else
        meta_query(req);
}

#define INLINE_MAX_CAP 262144

/* Inline bodies only where the one-query statement answers exactly what
 * was asked: a single range, nothing to change, no CHANGEDSINCE filter,
 * and few enough UIDs that their bodies stay within meta_inline_budget.
 * Anything else is answered without bodies, which the frontend streams. */
static void choose_inline(struct meta_state *st, const Petrel__MetaReq *m)
{
    if (!m->inline_max || st->set_seen || st->crlf || st->since[0] || !m->uids ||
        m->uids->n_bounds != 2 || m->uids->bounds[0] > m->uids->bounds[1])
        return;
    /* One stored chunk at most (the SQL function reads only chunk 0). */
    uint64_t max = m->inline_max < INLINE_MAX_CAP ? m->inline_max : INLINE_MAX_CAP;
    uint64_t uids = (uint64_t)m->uids->bounds[1] - m->uids->bounds[0] + 1;
    if (uids * max > (uint64_t)backend->cfg->meta_inline_budget)
        return;
    snprintf(st->inline_lo, sizeof st->inline_lo, "%u", m->uids->bounds[0]);
    snprintf(st->inline_hi, sizeof st->inline_hi, "%u", m->uids->bounds[1]);
    st->inline_max = max;
}

void op_meta(struct rpc_req *req, const Petrel__Request *msg)
{
    struct meta_state *st = calloc(1, sizeof *st);
    snprintf(st->acct, sizeof st->acct, "%lld", (long long)req->account_id);
    snprintf(st->mbox, sizeof st->mbox, "%lld", (long long)msg->meta->mailbox_id);
    uid_ranges_to_arrays(msg->meta->uids, &st->lo, &st->hi);
    st->set_seen = msg->meta->set_seen;
    st->crlf = msg->meta->want_crlf_size;
    if (msg->meta->changedsince)
        snprintf(st->since, sizeof st->since, "%llu",
                 (unsigned long long)(msg->meta->changedsince > INT64_MAX ? INT64_MAX
                                                                         : msg->meta->changedsince));
    st->mailbox_id = msg->meta->mailbox_id;
    st->want_mime = msg->meta->want_mime;
    st->want_objectid = msg->meta->want_objectid;
    choose_inline(st, msg->meta);
    req->state = st;
    next_query(req);
}
