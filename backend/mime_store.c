#include "mime_store.h"

#include "body_read.h"
#include "search_text.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- collecting searchable text ---- */

struct mime_store {
    struct mime_parser *parser;
    struct buf headers, text;
    char pend[4];             /* an incomplete UTF-8 sequence ending a body piece */
    size_t npend;
    bool have_date;
    char sentdate[16];
};

/* How many bytes at the end of s start a UTF-8 sequence that continues in
 * the next piece (0 when s ends on a whole one). */
static size_t cut_tail(const unsigned char *s, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xC0) == 0x80)
            continue;
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

static void flush_pending(struct mime_store *s)
{
    if (s->npend)
        search_fold(&s->text, s->pend, s->npend, false);
    s->npend = 0;
}

static void body_text(struct mime_store *s, const char *data, size_t len)
{
    if (s->npend) {
        /* Complete the held sequence with the first bytes of this piece. */
        size_t take = 0;
        while (take < len && s->npend + take < sizeof s->pend &&
               ((unsigned char)data[take] & 0xC0) == 0x80)
            take++;
        char tmp[8];
        memcpy(tmp, s->pend, s->npend);
        memcpy(tmp + s->npend, data, take);
        search_fold(&s->text, tmp, s->npend + take, false);
        s->npend = 0;
        data += take;
        len -= take;
    }
    size_t tail = cut_tail((const unsigned char *)data, len);
    search_fold(&s->text, data, len - tail, false);
    memcpy(s->pend, data + len - tail, tail);
    s->npend = tail;
}

static void header_line(struct buf *out, const char *name, const char *data, size_t len)
{
    for (const char *n = name; *n; n++) {
        char c = *n >= 'A' && *n <= 'Z' ? (char)(*n + 32) : *n;
        if (c == '\n' || c == '\r')
            c = ' ';
        buf_append(out, &c, 1);
    }
    buf_append(out, ": ", 2);
    search_fold(out, data, len, true);
    buf_append(out, "\n", 1);
}

static void collect_text(void *ctx, enum mime_text_kind kind, unsigned part, const char *name,
                         const char *data, size_t len)
{
    struct mime_store *s = ctx;
    if (kind == MIME_TEXT_BODY) {
        body_text(s, data, len);
        return;
    }
    flush_pending(s);
    if (part != 0) {   /* an embedded message's or a part's header: body text */
        header_line(&s->text, name ? name : "", data, len);
        return;
    }
    header_line(&s->headers, name ? name : "", data, len);
    int y, m, d;
    if (!s->have_date && name && strcasecmp(name, "Date") == 0) {
        s->have_date = true;
        if (search_parse_date(data, len, &y, &m, &d) == 0)
            snprintf(s->sentdate, sizeof s->sentdate, "%04d-%02d-%02d", y, m, d);
    }
}

struct mime_store *mime_store_parser(void)
{
    struct mime_store *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    /* backend is NULL only in unit tests: the parser's default then. */
    struct mime_limits lim = { .max_text = backend ? (size_t)backend->cfg->search_text_max : 0 };
    s->parser = mime_parser_new(&lim);
    mime_parser_set_text_sink(s->parser, collect_text, s);
    return s;
}

void mime_store_feed(struct mime_store *s, const void *data, size_t len)
{
    mime_parser_feed(s->parser, data, len);
}

void mime_store_free(struct mime_store *s)
{
    if (!s)
        return;
    mime_parser_free(s->parser);
    buf_free(&s->headers);
    buf_free(&s->text);
    free(s);
}

static const char *const field_names[MIME_BLOB_NFIELDS] = { "from", "to", "cc", "bcc", "subject" };

/* Collects the values of the fields blob_text keeps apart from headers'
 * "name: value\n" lines (names already in lower case). */
static void split_fields(struct mime_blob *mb)
{
    const char *p = buf_head(&mb->headers), *end = p + buf_len(&mb->headers);
    while (p && p < end && *p) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        for (int i = 0; i < MIME_BLOB_NFIELDS; i++) {
            size_t n = strlen(field_names[i]);
            if ((size_t)(eol - p) < n + 2 || memcmp(p, field_names[i], n) != 0 || memcmp(p + n, ": ", 2) != 0)
                continue;
            if (buf_len(&mb->fields[i]))
                buf_append(&mb->fields[i], "\n", 1);
            buf_append(&mb->fields[i], p + n + 2, (size_t)(eol - p - n - 2));
        }
        p = nl ? nl + 1 : end;
    }
    for (int i = 0; i < MIME_BLOB_NFIELDS; i++)
        buf_append(&mb->fields[i], "", 1);
}

void mime_blob_finish(struct mime_blob *mb, struct mime_store *s)
{
    memset(mb, 0, sizeof *mb);
    mime_parser_finish(s->parser, &mb->res);
    s->parser = NULL;
    flush_pending(s);
    mime_tree_encode(&mb->res.tree, &mb->tree);
    mb->headers = s->headers;
    mb->text = s->text;
    memset(&s->headers, 0, sizeof s->headers);
    memset(&s->text, 0, sizeof s->text);
    buf_append(&mb->headers, "", 1);
    buf_append(&mb->text, "", 1);
    memcpy(mb->sentdate, s->sentdate, sizeof mb->sentdate);
    mime_store_free(s);
    split_fields(mb);
}

static struct db_param bin(const struct buf *b)
{
    /* The strings are NUL-terminated; the NUL is not part of the value. */
    size_t n = buf_len(b);
    if (n && buf_head(b)[n - 1] == '\0')
        n--;
    return (struct db_param){ n ? buf_head(b) : "", (int)n, true };
}

void mime_blob_params(const struct mime_blob *mb, struct db_param params[MIME_BLOB_NPARAMS])
{
    params[0] = (struct db_param){ buf_len(&mb->tree) ? buf_head(&mb->tree) : "",
                                   (int)buf_len(&mb->tree), true };
    params[1] = bin(&mb->res.envelope);
    params[2] = bin(&mb->res.bodystructure);
    params[3] = bin(&mb->res.body);
    /* Text parameters: NUL-terminated, valid UTF-8 without NUL (search_fold). */
    params[4] = (struct db_param){ buf_head(&mb->headers) };
    params[5] = (struct db_param){ buf_head(&mb->text) };
    params[6] = (struct db_param){ mb->sentdate[0] ? mb->sentdate : NULL };
}

void mime_blob_field_params(const struct mime_blob *mb, struct db_param params[MIME_BLOB_NFIELDS])
{
    for (int i = 0; i < MIME_BLOB_NFIELDS; i++)
        params[i] = (struct db_param){ buf_head(&mb->fields[i]) };
}

void mime_blob_free(struct mime_blob *mb)
{
    for (int i = 0; i < MIME_BLOB_NFIELDS; i++)
        buf_free(&mb->fields[i]);
    mime_result_free(&mb->res);
    buf_free(&mb->tree);
    buf_free(&mb->headers);
    buf_free(&mb->text);
}

/* ---- parsing what was stored unparsed ---- */

#define ENSURE_READ 262144

struct ensure {
    struct rpc_req *req;
    int64_t mailbox_id;
    uint32_t *uids;
    int64_t *blobs;
    size_t n, i;
    uint64_t offset;
    struct mime_store *parser;
    mime_ensure_cb *done;
    void *ctx;
};

static void ensure_next(struct ensure *e);

static void ensure_end(struct ensure *e, int ok)
{
    mime_store_free(e->parser);
    struct rpc_req *req = e->req;
    mime_ensure_cb *done = e->done;
    void *ctx = e->ctx;
    free(e->uids);
    free(e->blobs);
    free(e);
    done(req, ok, ctx);
}

static void stored(const struct db_result *r, void *arg)
{
    struct ensure *e = arg;
    if (r->status != DB_OK || e->req->cancelled) {
        ensure_end(e, 0);
        return;
    }
    e->i++;
    ensure_next(e);
}

static void read_piece(struct ensure *e);

static void piece_read(const struct db_result *r, void *arg)
{
    struct ensure *e = arg;
    if (r->status != DB_OK || e->req->cancelled) {
        ensure_end(e, 0);
        return;
    }
    if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
        /* Expunged meanwhile: nothing to parse, nothing to store. */
        mime_store_free(e->parser);
        e->parser = NULL;
        e->i++;
        ensure_next(e);
        return;
    }
    size_t len = (size_t)PQgetlength(r->res, 0, 0);
    mime_store_feed(e->parser, PQgetvalue(r->res, 0, 0), len);
    e->offset += len;
    if (len == ENSURE_READ) {
        read_piece(e);
        return;
    }
    struct mime_blob mb;
    mime_blob_finish(&mb, e->parser);
    e->parser = NULL;
    char acct[24], blob[24];
    snprintf(acct, sizeof acct, "%lld", (long long)e->req->account_id);
    snprintf(blob, sizeof blob, "%lld", (long long)e->blobs[e->i]);
    struct db_param p[2 + MIME_BLOB_NPARAMS] = { { acct }, { blob } };
    mime_blob_params(&mb, &p[2]);
    db_query(backend->db, STMT_BLOB_SET_MIME, p, 2 + MIME_BLOB_NPARAMS, stored, e);
    mime_blob_free(&mb);
}

static void read_piece(struct ensure *e)
{
    body_read(e->req->account_id, e->mailbox_id, e->uids[e->i], e->offset, ENSURE_READ,
              piece_read, e);
}

static void ensure_next(struct ensure *e)
{
    if (e->i == e->n) {
        ensure_end(e, 1);
        return;
    }
    e->offset = 0;
    e->parser = mime_store_parser();
    read_piece(e);
}

void mime_ensure(struct rpc_req *req, int64_t mailbox_id, const uint32_t *uids,
                 const int64_t *blob_ids, size_t n, mime_ensure_cb *done, void *ctx)
{
    struct ensure *e = calloc(1, sizeof *e);
    e->req = req;
    e->mailbox_id = mailbox_id;
    e->uids = malloc(n * sizeof *uids + 1);
    e->blobs = malloc(n * sizeof *blob_ids + 1);
    if (n) {
        memcpy(e->uids, uids, n * sizeof *uids);
        memcpy(e->blobs, blob_ids, n * sizeof *blob_ids);
    }
    e->n = n;
    e->done = done;
    e->ctx = ctx;
    ensure_next(e);
}

/* ---- loading one message's tree ---- */

struct tree_load {
    struct rpc_req *req;
    int64_t mailbox_id;
    uint32_t uid;
    bool parsed;               /* a parse ran already: never a second */
    mime_load_cb *done;
    void *ctx;
};

static void tree_load_query(struct tree_load *tl);

static void tree_load_end(struct tree_load *tl, enum mime_load result, const struct db_result *failed,
                          const struct mime_tree *tree)
{
    struct rpc_req *req = tl->req;
    mime_load_cb *done = tl->done;
    void *ctx = tl->ctx;
    free(tl);
    done(req, result, failed, tree, ctx);
}

static void tree_load_parsed(struct rpc_req *req, int ok, void *arg)
{
    struct tree_load *tl = arg;
    if (!ok || req->cancelled) {
        tree_load_end(tl, MIME_PARSE_FAILED, NULL, NULL);
        return;
    }
    tl->parsed = true;
    tree_load_query(tl);
}

static void tree_load_done(const struct db_result *r, void *arg)
{
    struct tree_load *tl = arg;
    if (r->status != DB_OK || tl->req->cancelled) {
        tree_load_end(tl, MIME_DB_FAILED, r, NULL);
        return;
    }
    if (PQntuples(r->res) != 1) {
        tree_load_end(tl, MIME_GONE, NULL, NULL);
        return;
    }
    if (!*PQgetvalue(r->res, 0, 3)) {   /* not parsed yet: parse, then look again */
        if (tl->parsed) {
            tree_load_end(tl, MIME_PARSE_FAILED, NULL, NULL);
            return;
        }
        int64_t blob = db_bin_int(r->res, 0, 1);
        mime_ensure(tl->req, tl->mailbox_id, &tl->uid, &blob, 1, tree_load_parsed, tl);
        return;
    }
    struct mime_tree tree;
    if (mime_tree_decode(PQgetvalue(r->res, 0, 4), (size_t)PQgetlength(r->res, 0, 4), &tree) < 0) {
        tree_load_end(tl, MIME_UNREADABLE, NULL, NULL);
        return;
    }
    tree_load_end(tl, MIME_LOADED, NULL, &tree);
    mime_tree_free(&tree);
}

static void tree_load_query(struct tree_load *tl)
{
    char acct[24], mbox[24], range[24];
    snprintf(acct, sizeof acct, "%lld", (long long)tl->req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", (long long)tl->mailbox_id);
    snprintf(range, sizeof range, "{%u}", tl->uid);
    struct db_param p[] = { { acct }, { mbox }, { range }, { range } };
    db_query(backend->db, STMT_MIME, p, 4, tree_load_done, tl);
}

void mime_tree_load(struct rpc_req *req, int64_t mailbox_id, uint32_t uid, mime_load_cb *done, void *ctx)
{
    struct tree_load *tl = calloc(1, sizeof *tl);
    if (!tl)
        abort();
    *tl = (struct tree_load){ req, mailbox_id, uid, false, done, ctx };
    tree_load_query(tl);
}
