/* SEARCH: runs an IMAP search program (SearchKey tree) as one SQL query over
 * a mailbox's messages and, when a key needs text, the bodies' blob_text
 * (006_search.sql). The query is built here, so it is not a prepared
 * statement; every value the client chose travels as a parameter, in two
 * arrays: $3 text[] (strings, patterns, dates) and $4 int8[] (numbers).
 * The SQL text holds only column names, operators and subscripts.
 * A message whose body has no blob_text row (a parse failed) matches no
 * text key: each such key tests "t.headers IS NOT NULL" first (a column
 * outside the primary key, so it cannot become an index condition).
 *
 * A program that needs text first makes sure every message of the mailbox
 * has its text: bodies stored without a parse (LMTP deliveries before
 * migration 012) are parsed now (mime_ensure), then the search runs.
 *
 * Matching (see also proto/petrel.proto SearchKey):
 *  - strings are folded as stored text is (search_text.h): case-insensitive
 *    substring, on decoded text;
 *  - HEADER name value: a line "name: ...value..." of the message's header;
 *    an empty value: the field is present (with a non-empty value); From,
 *    To, Cc, Bcc and Subject have columns of their own;
 *  - BEFORE/ON/SINCE compare the INTERNALDATE's date in UTC;
 *  - SENT* compare the Date: field's date as written, or where it is missing
 *    or unparsable the INTERNALDATE's UTC date;
 *  - SAVED* (RFC 8514) compare the save date's date in UTC, as BEFORE/ON/SINCE
 *    do the INTERNALDATE's; every message has a save date, so
 *    SAVEDATESUPPORTED matches all;
 *  - EMAILID / THREADID (RFC 8474) match the id exactly; an id of another
 *    shape than ours (objectid.h) matches nothing, as does a NIL THREADID. */
#include "backend.h"

#include "buf.h"
#include "mime_store.h"
#include "pgarray.h"
#include "search_text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* These bound what any frontend may send, so they are constants; each is at
 * least the maximum of the frontend setting that limits clients first
 * (frontend/main.c), so a client meets the frontend's NO [LIMIT] and never
 * this BAD. Keys in one program, counting AND/OR/NOT nodes: one per frontend
 * key (imap_max_search_keys, at most 10000), plus the top-level AND. */
#define MAX_SEARCH_NODES 10001
/* Nesting of AND/OR/NOT (the frontend sends OR and AND chains flat):
 * imap_max_search_depth (at most 256), plus the top-level AND. */
#define MAX_SEARCH_DEPTH 257
/* UID ranges in all UID keys of one program together: imap_max_set_ranges
 * (at most 100000) counts the same. */
#define MAX_SEARCH_RANGES 100000
/* Bytes of one search string: imap_max_search_string (at most 1 MiB). */
#define MAX_SEARCH_STRING 1048576
/* Dates outside years 0001..9999 are refused. */
#define MIN_SEARCH_DAY (-719162)
#define MAX_SEARCH_DAY 2932896
/* UIDs per SearchResp. */
#define SEARCH_BATCH 65536

struct search_state {
    char acct[24], mbox[24];
    int64_t mailbox_id;
    struct buf sql;
    char **strs;              /* $3 elements, owned */
    size_t nstrs, capstrs;
    struct buf nums;          /* $4 elements, "1,2,3" */
    size_t nnums;
    size_t nodes, ranges;
    bool needs_text;
    bool ensured;
    char *strs_lit, *nums_lit;
};

static void state_free(struct search_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nstrs; i++)
        free(st->strs[i]);
    free(st->strs);
    buf_free(&st->sql);
    buf_free(&st->nums);
    free(st->strs_lit);
    free(st->nums_lit);
    free(st);
}

/* ---- building the query ---- */

/* Adds a string parameter (copied) and writes its reference. */
static void put_str(struct search_state *st, const char *s, size_t len)
{
    if (st->nstrs == st->capstrs) {
        st->capstrs = st->capstrs ? st->capstrs * 2 : 16;
        st->strs = realloc(st->strs, st->capstrs * sizeof *st->strs);
        if (!st->strs)
            abort();
    }
    char *c = malloc(len + 1);
    if (!c)
        abort();
    memcpy(c, s, len);
    c[len] = '\0';
    st->strs[st->nstrs++] = c;
    buf_printf(&st->sql, "($3::text[])[%zu]", st->nstrs);
}

static void put_num(struct search_state *st, long long v)
{
    buf_printf(&st->nums, "%s%lld", st->nnums ? "," : "", v);
    st->nnums++;
    buf_printf(&st->sql, "($4::int8[])[%zu]", st->nnums);
}

static void day_string(int32_t day, char out[40])
{
    time_t t = (time_t)day * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* A header field name: printable ASCII without ":" (RFC 5322 ftext). */
static bool valid_field_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s > '~' || *s == ':')
            return false;
    return true;
}

static int emit(struct search_state *st, const Petrel__SearchKey *k, int depth, const char **err);

static int emit_list(struct search_state *st, const Petrel__SearchKey *k, const char *op,
                     const char *empty, int depth, const char **err)
{
    if (k->n_keys == 0) {
        buf_puts(&st->sql, empty);
        return 0;
    }
    buf_puts(&st->sql, "(");
    for (size_t i = 0; i < k->n_keys; i++) {
        if (i)
            buf_puts(&st->sql, op);
        if (emit(st, k->keys[i], depth + 1, err) < 0)
            return -1;
    }
    buf_puts(&st->sql, ")");
    return 0;
}

/* A folded substring of text. */
static int fold_value(const char *v, struct buf *out, const char **err)
{
    size_t n = strlen(v);
    if (n > MAX_SEARCH_STRING) {
        *err = "Search string too long";
        return -1;
    }
    search_fold(out, v, n, true);
    return 0;
}

static int emit_text(struct search_state *st, const Petrel__SearchKey *k, const char **err)
{
    struct buf folded = {0}, pat = {0};
    st->needs_text = true;
    if (fold_value(k->value ? k->value : "", &folded, err) < 0) {
        buf_free(&folded);
        return -1;
    }
    const char *f = buf_head(&folded) ? buf_head(&folded) : "";
    size_t fl = buf_len(&folded);
    if (k->kind == PETREL__SEARCH_KEY__KIND__SK_HEADER) {
        if (!k->name || !valid_field_name(k->name) || strlen(k->name) > 200) {
            buf_free(&folded);
            *err = "Invalid header field name";
            return -1;
        }
        struct buf name = {0};
        search_fold(&name, k->name, strlen(k->name), true);
        buf_append(&name, "", 1);
        static const char *const common[] = { "from", "to", "cc", "bcc", "subject" };
        for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
            if (strcmp(buf_head(&name), common[i]) != 0)
                continue;
            /* A column of its own; the LIKE on all five (implied by it) is
             * the expression of the trigram index blob_text_fields_trgm
             * (015_append_text_cost.sql), which finds a rare value. */
            if (fl == 0) {
                buf_printf(&st->sql, "(t.headers IS NOT NULL AND t.h_%s <> '')", common[i]);
            } else {
                search_like_pattern(&pat, f, fl);
                buf_printf(&st->sql, "(t.headers IS NOT NULL AND t.h_%s LIKE ", common[i]);
                put_str(st, buf_head(&pat), buf_len(&pat));
                buf_printf(&st->sql, " AND (t.h_from || E'\\n' || t.h_to || E'\\n' || t.h_cc"
                           " || E'\\n' || t.h_bcc || E'\\n' || t.h_subject)"
                           " LIKE ($3::text[])[%zu])", st->nstrs);
            }
            buf_free(&name);
            buf_free(&folded);
            buf_free(&pat);
            return 0;
        }
        buf_puts(&pat, "(^|\n)");
        search_regex_literal(&pat, buf_head(&name), buf_len(&name) - 1);
        buf_puts(&pat, ": ");
        if (fl) {
            buf_puts(&pat, "[^\n]*");
            search_regex_literal(&pat, f, fl);
        }
        buf_free(&name);
        buf_puts(&st->sql, "(t.headers IS NOT NULL AND t.headers ~ ");
        put_str(st, buf_head(&pat), buf_len(&pat));
        buf_puts(&st->sql, ")");
    } else {
        search_like_pattern(&pat, f, fl);
        if (k->kind == PETREL__SEARCH_KEY__KIND__SK_BODY) {
            buf_puts(&st->sql, "(t.headers IS NOT NULL AND t.body LIKE ");
            put_str(st, buf_head(&pat), buf_len(&pat));
            buf_puts(&st->sql, ")");
        } else {
            buf_puts(&st->sql, "(t.headers IS NOT NULL AND (t.headers LIKE ");
            put_str(st, buf_head(&pat), buf_len(&pat));
            buf_puts(&st->sql, " OR t.body LIKE ");
            buf_printf(&st->sql, "($3::text[])[%zu]))", st->nstrs);
        }
    }
    buf_free(&folded);
    buf_free(&pat);
    return 0;
}

static int emit_uids(struct search_state *st, const Petrel__SearchKey *k, const char **err)
{
    size_t n = k->uids ? k->uids->n_bounds / 2 : 0;
    if (k->uids && k->uids->n_bounds % 2) {
        *err = "Odd number of UID bounds";
        return -1;
    }
    st->ranges += n;
    if (st->ranges > MAX_SEARCH_RANGES) {
        *err = "Too many UID ranges";
        return -1;
    }
    if (n == 0) {
        buf_puts(&st->sql, "false");
        return 0;
    }
    struct buf r = {0};
    buf_puts(&r, "{");
    for (size_t i = 0; i < n; i++) {
        uint32_t lo = k->uids->bounds[2 * i], hi = k->uids->bounds[2 * i + 1];
        if (lo > hi) {
            uint32_t x = lo;
            lo = hi;
            hi = x;
        }
        buf_printf(&r, "%s[%" PRIu32 ",%" PRIu32 "]", i ? "," : "", lo, hi);
    }
    buf_puts(&r, "}");
    buf_puts(&st->sql, "(m.uid <@ ");
    put_str(st, buf_head(&r), buf_len(&r));
    buf_puts(&st->sql, "::int8multirange)");
    buf_free(&r);
    return 0;
}

/* EMAILID / THREADID: the id as a UUID parameter, or false when it is not
 * one of ours. */
static int emit_objectid(struct search_state *st, const Petrel__SearchKey *k, const char **err)
{
    bool email = k->kind == PETREL__SEARCH_KEY__KIND__SK_EMAILID;
    char uuid[OBJECTID_UUID_LEN];
    /* RFC 8474 objectid: at most 255 characters. */
    if (!k->value || !*k->value || strlen(k->value) > 255) {
        *err = "Invalid object id";
        return -1;
    }
    if (!objectid_parse(email ? OBJECTID_EMAIL : OBJECTID_THREAD, k->value, uuid)) {
        buf_puts(&st->sql, "false");
        return 0;
    }
    buf_puts(&st->sql, email ? "(m.emailid = " : "(m.threadid IS NOT NULL AND m.threadid = ");
    put_str(st, uuid, strlen(uuid));
    buf_puts(&st->sql, "::uuid)");
    return 0;
}

static int emit(struct search_state *st, const Petrel__SearchKey *k, int depth, const char **err)
{
    if (!k) {
        *err = "Missing search key";
        return -1;
    }
    if (++st->nodes > MAX_SEARCH_NODES) {
        *err = "Too many search keys";
        return -1;
    }
    if (depth > MAX_SEARCH_DEPTH) {
        *err = "Search keys nested too deeply";
        return -1;
    }
    bool leaf = k->kind != PETREL__SEARCH_KEY__KIND__SK_AND &&
                k->kind != PETREL__SEARCH_KEY__KIND__SK_OR && k->kind != PETREL__SEARCH_KEY__KIND__SK_NOT;
    if (leaf && k->n_keys) {
        *err = "Search key with children";
        return -1;
    }
    char day[40];
    switch (k->kind) {
    case PETREL__SEARCH_KEY__KIND__SK_ALL:
        buf_puts(&st->sql, "true");
        return 0;
    case PETREL__SEARCH_KEY__KIND__SK_AND:
        return emit_list(st, k, " AND ", "true", depth, err);
    case PETREL__SEARCH_KEY__KIND__SK_OR:
        return emit_list(st, k, " OR ", "false", depth, err);
    case PETREL__SEARCH_KEY__KIND__SK_NOT:
        if (k->n_keys != 1) {
            *err = "NOT takes one key";
            return -1;
        }
        buf_puts(&st->sql, "(NOT ");
        if (emit(st, k->keys[0], depth + 1, err) < 0)
            return -1;
        buf_puts(&st->sql, ")");
        return 0;
    case PETREL__SEARCH_KEY__KIND__SK_FLAGS_SET:
    case PETREL__SEARCH_KEY__KIND__SK_FLAGS_CLEAR:
        if (k->flags > 31) {
            *err = "Invalid flag bits";
            return -1;
        }
        buf_puts(&st->sql, "((m.flags & ");
        put_num(st, k->flags);
        buf_puts(&st->sql, "::int4) = ");
        if (k->kind == PETREL__SEARCH_KEY__KIND__SK_FLAGS_SET) {
            put_num(st, k->flags);
            buf_puts(&st->sql, "::int4)");
        } else {
            buf_puts(&st->sql, "0)");
        }
        return 0;
    case PETREL__SEARCH_KEY__KIND__SK_KEYWORD:
    case PETREL__SEARCH_KEY__KIND__SK_UNKEYWORD:
        if (!k->name || !*k->name || strlen(k->name) > 1000) {
            *err = "Invalid keyword";
            return -1;
        }
        buf_puts(&st->sql, k->kind == PETREL__SEARCH_KEY__KIND__SK_KEYWORD ? "(EXISTS" : "(NOT EXISTS");
        buf_puts(&st->sql, " (SELECT 1 FROM unnest(m.keywords) AS kw(k) WHERE lower(kw.k) = lower(");
        put_str(st, k->name, strlen(k->name));
        buf_puts(&st->sql, ")))");
        return 0;
    case PETREL__SEARCH_KEY__KIND__SK_UID:
        return emit_uids(st, k, err);
    case PETREL__SEARCH_KEY__KIND__SK_MODSEQ:
        buf_puts(&st->sql, "(m.modseq >= ");
        put_num(st, k->number > (uint64_t)INT64_MAX ? INT64_MAX : (long long)k->number);
        buf_puts(&st->sql, ")");
        return 0;
    case PETREL__SEARCH_KEY__KIND__SK_LARGER:
    case PETREL__SEARCH_KEY__KIND__SK_SMALLER:
        buf_puts(&st->sql, k->kind == PETREL__SEARCH_KEY__KIND__SK_LARGER ? "(m.size > " : "(m.size < ");
        put_num(st, k->number > (uint64_t)INT64_MAX ? INT64_MAX : (long long)k->number);
        buf_puts(&st->sql, ")");
        return 0;
    case PETREL__SEARCH_KEY__KIND__SK_BEFORE:
    case PETREL__SEARCH_KEY__KIND__SK_ON:
    case PETREL__SEARCH_KEY__KIND__SK_SINCE:
    case PETREL__SEARCH_KEY__KIND__SK_SENTBEFORE:
    case PETREL__SEARCH_KEY__KIND__SK_SENTON:
    case PETREL__SEARCH_KEY__KIND__SK_SENTSINCE:
    case PETREL__SEARCH_KEY__KIND__SK_SAVEDBEFORE:
    case PETREL__SEARCH_KEY__KIND__SK_SAVEDON:
    case PETREL__SEARCH_KEY__KIND__SK_SAVEDSINCE:
        if (k->day < MIN_SEARCH_DAY || k->day > MAX_SEARCH_DAY) {
            *err = "Date out of range";
            return -1;
        }
        break;
    case PETREL__SEARCH_KEY__KIND__SK_HEADER:
    case PETREL__SEARCH_KEY__KIND__SK_BODY:
    case PETREL__SEARCH_KEY__KIND__SK_TEXT:
        return emit_text(st, k, err);
    case PETREL__SEARCH_KEY__KIND__SK_EMAILID:
    case PETREL__SEARCH_KEY__KIND__SK_THREADID:
        return emit_objectid(st, k, err);
    case PETREL__SEARCH_KEY__KIND__SK_SAVEDATESUPPORTED:
        buf_puts(&st->sql, "true");
        return 0;
    default:
        *err = "Unknown search key";
        return -1;
    }
    /* The date keys. */
    long long t0 = (long long)k->day * 86400;
    bool saved = k->kind == PETREL__SEARCH_KEY__KIND__SK_SAVEDBEFORE ||
                 k->kind == PETREL__SEARCH_KEY__KIND__SK_SAVEDON ||
                 k->kind == PETREL__SEARCH_KEY__KIND__SK_SAVEDSINCE;
    const char *col = saved ? "m.savedate" : "m.internaldate";
    switch (k->kind) {
    case PETREL__SEARCH_KEY__KIND__SK_BEFORE:
    case PETREL__SEARCH_KEY__KIND__SK_SAVEDBEFORE:
        buf_printf(&st->sql, "(%s < to_timestamp(", col);
        put_num(st, t0);
        buf_puts(&st->sql, "))");
        break;
    case PETREL__SEARCH_KEY__KIND__SK_SINCE:
    case PETREL__SEARCH_KEY__KIND__SK_SAVEDSINCE:
        buf_printf(&st->sql, "(%s >= to_timestamp(", col);
        put_num(st, t0);
        buf_puts(&st->sql, "))");
        break;
    case PETREL__SEARCH_KEY__KIND__SK_ON:
    case PETREL__SEARCH_KEY__KIND__SK_SAVEDON:
        buf_printf(&st->sql, "(%s >= to_timestamp(", col);
        put_num(st, t0);
        buf_printf(&st->sql, ") AND %s < to_timestamp(", col);
        put_num(st, t0 + 86400);
        buf_puts(&st->sql, "))");
        break;
    default:   /* SENT* */
        st->needs_text = true;
        day_string(k->day, day);
        buf_puts(&st->sql, "(coalesce(t.sentdate, (m.internaldate AT TIME ZONE 'UTC')::date) ");
        buf_puts(&st->sql, k->kind == PETREL__SEARCH_KEY__KIND__SK_SENTBEFORE ? "<"
                           : k->kind == PETREL__SEARCH_KEY__KIND__SK_SENTON   ? "="
                                                                             : ">=");
        buf_puts(&st->sql, " ");
        put_str(st, day, strlen(day));
        buf_puts(&st->sql, "::date)");
    }
    return 0;
}

/* Builds the whole query into st->sql; -1 with *err for a bad program. */
static int build(struct search_state *st, const Petrel__SearchKey *program, const char **err)
{
    struct buf where = {0};
    st->sql = where;
    if (emit(st, program, 0, err) < 0)
        return -1;
    where = st->sql;
    st->sql = (struct buf){0};
    buf_puts(&st->sql, "SELECT m.uid, m.modseq FROM messages m");
    if (st->needs_text)
        buf_puts(&st->sql, " LEFT JOIN blob_text t ON t.account_id = m.account_id AND t.blob_id = m.blob_id");
    /* $3 and $4 are named even when no key uses them: every parameter
     * needs a type. */
    buf_puts(&st->sql, " WHERE m.account_id = $1 AND m.mailbox_id = $2"
                       " AND $3::text[] IS NOT NULL AND $4::int8[] IS NOT NULL AND ");
    buf_append(&st->sql, buf_head(&where), buf_len(&where));
    buf_puts(&st->sql, " ORDER BY m.uid");
    buf_append(&st->sql, "", 1);
    buf_free(&where);
    st->strs_lit = pg_text_array(st->strs, st->nstrs);
    struct buf nl = {0};
    buf_printf(&nl, "{%.*s}", (int)buf_len(&st->nums), buf_head(&st->nums) ? buf_head(&st->nums) : "");
    buf_append(&nl, "", 1);
    st->nums_lit = strdup(buf_head(&nl));
    buf_free(&nl);
    return 0;
}

/* ---- running it ---- */

static void finish(struct rpc_req *req, struct search_state *st)
{
    req->state = NULL;
    state_free(st);
}

static void search_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    finish(req, req->state);
    if (req->cancelled) {
        rpc_done(req);
        return;
    }
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
        return;
    }
    int n = PQntuples(r->res);
    uint32_t *uids = malloc(((size_t)n < SEARCH_BATCH ? (size_t)n : SEARCH_BATCH) * sizeof *uids + 1);
    if (!uids)
        abort();
    uint64_t modseq = 0;
    for (int i = 0; i < n; i++) {
        uint64_t ms = strtoull(PQgetvalue(r->res, i, 1), NULL, 10);
        if (ms > modseq)
            modseq = ms;
    }
    int i = 0;
    do {
        size_t k = 0;
        for (; i < n && k < SEARCH_BATCH; i++)
            uids[k++] = (uint32_t)strtoul(PQgetvalue(r->res, i, 0), NULL, 10);
        Petrel__SearchResp sr = PETREL__SEARCH_RESP__INIT;
        sr.uids = uids;
        sr.n_uids = k;
        sr.highestmodseq = i < n ? 0 : modseq;
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        resp.result_case = PETREL__RESPONSE__RESULT_SEARCH;
        resp.search = &sr;
        resp.more = i < n;
        rpc_reply(req, &resp);
    } while (i < n);
    free(uids);
}

static void run_search(struct rpc_req *req)
{
    struct search_state *st = req->state;
    struct db_param p[] = { { st->acct }, { st->mbox }, { st->strs_lit }, { st->nums_lit } };
    db_query_sql(backend->db, buf_head(&st->sql), p, 4, search_done, req);
}

static void parsed(struct rpc_req *req, int ok, void *ctx)
{
    if (req->cancelled || !ok) {
        finish(req, req->state);
        if (req->cancelled)
            rpc_done(req);
        else
            rpc_fail(req, PETREL__STATUS__TEMPFAIL, "Cannot parse messages now");
        return;
    }
    run_search(req);
}

static void unparsed_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct search_state *st = req->state;
    if (r->status != DB_OK || req->cancelled) {
        finish(req, st);
        if (req->cancelled)
            rpc_done(req);
        else
            rpc_fail_db(req, r);
        return;
    }
    int n = PQntuples(r->res);
    if (n == 0) {
        run_search(req);
        return;
    }
    uint32_t *uids = malloc((size_t)n * sizeof *uids);
    int64_t *blobs = malloc((size_t)n * sizeof *blobs);
    if (!uids || !blobs)
        abort();
    for (int i = 0; i < n; i++) {
        uids[i] = (uint32_t)db_int(r->res, i, 0);
        blobs[i] = db_int(r->res, i, 1);
    }
    mime_ensure(req, st->mailbox_id, uids, blobs, (size_t)n, parsed, NULL);
    free(uids);
    free(blobs);
}

void op_search(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__SearchReq *s = msg->search;
    struct search_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    snprintf(st->acct, sizeof st->acct, "%lld", (long long)req->account_id);
    snprintf(st->mbox, sizeof st->mbox, "%lld", (long long)s->mailbox_id);
    st->mailbox_id = s->mailbox_id;
    const char *err = NULL;
    Petrel__SearchKey all = PETREL__SEARCH_KEY__INIT;
    if (build(st, s->program ? s->program : &all, &err) < 0) {
        state_free(st);
        rpc_fail(req, PETREL__STATUS__BAD, err);
        return;
    }
    req->state = st;
    if (!st->needs_text) {
        run_search(req);
        return;
    }
    struct db_param p[] = { { st->acct }, { st->mbox } };
    db_query(backend->db, STMT_SEARCH_UNPARSED, p, 2, unparsed_done, req);
}
