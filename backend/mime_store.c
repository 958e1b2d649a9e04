#include "mime_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void drop_text(void *ctx, enum mime_text_kind kind, unsigned part, const char *name,
                      const char *data, size_t len)
{
}

struct mime_parser *mime_store_parser(void)
{
    struct mime_parser *p = mime_parser_new(NULL);
    mime_parser_set_text_sink(p, drop_text, NULL);
    return p;
}

void mime_blob_finish(struct mime_blob *mb, struct mime_parser *p)
{
    memset(mb, 0, sizeof *mb);
    mime_parser_finish(p, &mb->res);
    mime_tree_encode(&mb->res.tree, &mb->tree);
}

static struct db_param bin(const struct buf *b)
{
    /* The strings are NUL-terminated; the NUL is not part of the value. */
    size_t n = buf_len(b);
    if (n && buf_head(b)[n - 1] == '\0')
        n--;
    return (struct db_param){ n ? buf_head(b) : "", (int)n, true };
}

void mime_blob_params(const struct mime_blob *mb, struct db_param params[4])
{
    params[0] = (struct db_param){ buf_len(&mb->tree) ? buf_head(&mb->tree) : "",
                                   (int)buf_len(&mb->tree), true };
    params[1] = bin(&mb->res.envelope);
    params[2] = bin(&mb->res.bodystructure);
    params[3] = bin(&mb->res.body);
}

void mime_blob_free(struct mime_blob *mb)
{
    mime_result_free(&mb->res);
    buf_free(&mb->tree);
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
    struct mime_parser *parser;
    mime_ensure_cb *done;
    void *ctx;
};

static void ensure_next(struct ensure *e);

static void ensure_end(struct ensure *e, int ok)
{
    mime_parser_free(e->parser);
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
        mime_parser_free(e->parser);
        e->parser = NULL;
        e->i++;
        ensure_next(e);
        return;
    }
    size_t len = (size_t)PQgetlength(r->res, 0, 0);
    mime_parser_feed(e->parser, PQgetvalue(r->res, 0, 0), len);
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
    struct db_param p[6] = { { acct }, { blob } };
    mime_blob_params(&mb, &p[2]);
    db_query(backend->db, STMT_BLOB_SET_MIME, p, 6, stored, e);
    mime_blob_free(&mb);
}

static void read_piece(struct ensure *e)
{
    char acct[24], mbox[24], uid[16], off[24], n[16];
    snprintf(acct, sizeof acct, "%lld", (long long)e->req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", (long long)e->mailbox_id);
    snprintf(uid, sizeof uid, "%u", e->uids[e->i]);
    snprintf(off, sizeof off, "%llu", (unsigned long long)e->offset);
    snprintf(n, sizeof n, "%d", ENSURE_READ);
    struct db_param p[] = { { acct }, { mbox }, { uid }, { off }, { n } };
    db_query(backend->db, STMT_READ, p, 5, piece_read, e);
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
