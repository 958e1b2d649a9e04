/* APPEND: stores a message. One that fits the first frame is stored with one
 * statement; a larger one streams in: chunks are written as they arrive inside
 * one transaction on a pinned connection, and each Chunk frame is acknowledged
 * once it is handed on, so the frontend never has more than a window of it in
 * flight. Only the final commit makes the message visible; a frontend that
 * vanishes midway rolls everything back. */
#include "backend.h"

#include "header_end.h"

#include "buf.h"
#include "crlf_size.h"
#include "log.h"
#include "mime_store.h"
#include "notify.h"
#include "pgarray.h"
#include "thread_refs.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Must equal the chunk size the schema uses for blob_chunks. */
#define BLOB_CHUNK 262144

struct append_state {
    char acct[24];
    char *mailbox;
    char flags[16];
    char *keywords;          /* text[] literal */
    char date[24];
    char tz[16];
    uint64_t size;           /* announced total */
    uint64_t received;
    uint64_t header_size;    /* 0 until the blank line is seen */
    struct header_end hend;   /* finds header_size across frames */
    struct db_pin *pin;
    int pin_waiting;         /* db_pin_acquire has not called back yet */
    long long blob_id;
    int seq;                 /* next chunk number */
    struct buf piece;        /* bytes not yet written as a whole chunk */
    EVP_MD_CTX *sha;
    struct mime_store *mime;   /* parses the message as it streams in */
    struct crlf_size crlf;   /* its POP3 size (blobs.crlf_size) */
    struct thread_refs thread;   /* its Message-ID and references (THREADID) */
    Petrel__AppendResp result;
    int failed;
    struct db_result fail;   /* status only; texts copied below */
    int fail_bad;            /* a protocol error, not a database one */
    char fail_state[8];
    char fail_text[256];
};

static void state_free(struct append_state *st)
{
    if (st->pin)
        db_pin_release(st->pin);
    free(st->mailbox);
    free(st->keywords);
    buf_free(&st->piece);
    EVP_MD_CTX_free(st->sha);
    mime_store_free(st->mime);
    thread_refs_free(&st->thread);
    free(st);
}

/* Finds where the header ends (after the first empty line), across frames. */
static void scan_header(struct append_state *st, const uint8_t *p, size_t n)
{
    st->header_size = header_end_feed(&st->hend, p, n);
}

static void reply_appended(struct rpc_req *req, const PGresult *res)
{
    Petrel__AppendResp ar = PETREL__APPEND_RESP__INIT;
    ar.uidvalidity = (uint32_t)db_int(res, 0, 0);
    ar.uid = (uint32_t)db_int(res, 0, 1);
    ar.mailbox_id = db_int(res, 0, 2);
    notify_change(req->account_id, ar.mailbox_id, (uint64_t)db_int(res, 0, 3), req->session);
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_APPEND;
    resp.append = &ar;
    rpc_reply(req, &resp);
}

/* petrel_append_message's parameters (010_objectid_savedate.sql): the
 * message, the body as [7] data or [8..10] a staged blob (set by the
 * caller), its parse, its POP3 size and its threading ids. */
#define APPEND_NPARAMS (11 + MIME_BLOB_NPARAMS + 3)

struct append_params {
    char crlf[24];
    char *msgid, *refs;      /* owned */
};

static void append_params(struct append_state *st, const struct mime_blob *mb, const char *hs,
                          struct append_params *ap, struct db_param p[APPEND_NPARAMS])
{
    snprintf(ap->crlf, sizeof ap->crlf, "%llu", (unsigned long long)crlf_size_total(&st->crlf));
    thread_refs_params(&st->thread, &ap->msgid, &ap->refs);
    p[0] = (struct db_param){ st->acct };
    p[1] = (struct db_param){ st->mailbox };
    p[2] = (struct db_param){ st->flags };
    p[3] = (struct db_param){ st->keywords };
    p[4] = (struct db_param){ st->date };
    p[5] = (struct db_param){ st->tz };
    p[6] = (struct db_param){ hs };
    mime_blob_params(mb, &p[11]);
    p[11 + MIME_BLOB_NPARAMS] = (struct db_param){ ap->crlf };
    p[12 + MIME_BLOB_NPARAMS] = (struct db_param){ ap->msgid };
    p[13 + MIME_BLOB_NPARAMS] = (struct db_param){ ap->refs };
}

static void append_params_free(struct append_params *ap)
{
    free(ap->msgid);
    free(ap->refs);
}

/* ---- one statement for a message that arrived whole ---- */

static void small_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    state_free(req->state);
    req->state = NULL;
    if (r->status != DB_OK)
        rpc_fail_db(req, r);
    else
        reply_appended(req, r->res);
}

static void append_small(struct rpc_req *req, const Petrel__AppendReq *a)
{
    struct append_state *st = req->state;
    scan_header(st, a->data.data, a->data.len);
    char hs[24];
    snprintf(hs, sizeof hs, "%llu", (unsigned long long)(st->header_size ? st->header_size : a->size));
    struct mime_store *parser = mime_store_parser();
    mime_store_feed(parser, a->data.data, a->data.len);
    struct mime_blob mb;
    mime_blob_finish(&mb, parser);
    crlf_size_feed(&st->crlf, a->data.data, a->data.len);
    thread_refs_feed(&st->thread, a->data.data, a->data.len);
    struct append_params ap;
    struct db_param p[APPEND_NPARAMS] = {
        [7] = { (const char *)a->data.data, (int)a->data.len, true },
    };
    append_params(st, &mb, hs, &ap, p);
    db_query(backend->db, STMT_APPEND, p, APPEND_NPARAMS, small_done, req);
    append_params_free(&ap);
    mime_blob_free(&mb);
}

/* ---- the streamed path ---- */

/* Failure of a streamed append: the transaction is rolled back on its pinned
 * connection; queries queued before the ROLLBACK finish first (their callbacks
 * see `failed` and do nothing), so the reply goes out when nothing of this
 * request can fire any more. */
static void rolled_back(const struct db_result *ignored, void *ctx)
{
    struct rpc_req *req = ctx;
    struct append_state *st = req->state;
    struct db_result r = { st->fail.status, NULL, st->fail_state, st->fail_text };
    int bad = st->fail_bad;
    state_free(st);
    if (req->cancelled)
        rpc_done(req);
    else if (bad)
        rpc_fail(req, PETREL__STATUS__BAD, r.message);
    else
        rpc_fail_db(req, &r);
}

static void fail_stream(struct rpc_req *req, const struct db_result *r, const char *bad_text)
{
    struct append_state *st = req->state;
    if (st->failed)
        return;
    st->failed = 1;
    if (r) {
        st->fail.status = r->status;
        snprintf(st->fail_state, sizeof st->fail_state, "%s", r->sqlstate);
        snprintf(st->fail_text, sizeof st->fail_text, "%s", r->message);
    } else {
        st->fail_bad = 1;
        snprintf(st->fail_text, sizeof st->fail_text, "%s", bad_text);
    }
    if (st->pin_waiting)
        return;   /* pinned() finishes once the connection arrives */
    if (st->pin)
        db_exec(backend->db, st->pin, "ROLLBACK", rolled_back, req);
    else
        rolled_back(NULL, req);
}

static void ack_chunk(struct rpc_req *req)
{
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.more = 1;
    rpc_reply(req, &resp);
}

static void commit_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct append_state *st = req->state;
    if (r->status != DB_OK) {
        /* The transaction is over either way; nothing to roll back. */
        db_pin_release(st->pin);
        st->pin = NULL;
        fail_stream(req, r, NULL);
        return;
    }
    Petrel__AppendResp result = st->result;
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_APPEND;
    resp.append = &result;
    if (req->cancelled)
        log_info("\"append committed after the frontend left\" session=%s", req->session);
    state_free(st);
    rpc_reply(req, &resp);
}

static void final_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct append_state *st = req->state;
    if (st->failed)
        return;
    if (r->status != DB_OK) {
        fail_stream(req, r, NULL);
        return;
    }
    petrel__append_resp__init(&st->result);
    st->result.uidvalidity = (uint32_t)db_int(r->res, 0, 0);
    st->result.uid = (uint32_t)db_int(r->res, 0, 1);
    st->result.mailbox_id = db_int(r->res, 0, 2);
    db_exec(backend->db, st->pin, "COMMIT", commit_done, req);
}

static void put_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status != DB_OK)
        fail_stream(req, r, NULL);
}

static void put_piece(struct rpc_req *req, const char *p, size_t n)
{
    struct append_state *st = req->state;
    char blob[24], seq[16];
    snprintf(blob, sizeof blob, "%lld", st->blob_id);
    snprintf(seq, sizeof seq, "%d", st->seq++);
    struct db_param prm[] = { { st->acct }, { blob }, { seq }, { p, (int)n, true } };
    db_pin_query(st->pin, STMT_BLOB_PUT, prm, 4, put_done, req);
}

static void finish_stream(struct rpc_req *req)
{
    struct append_state *st = req->state;
    if (buf_len(&st->piece) > 0)
        put_piece(req, buf_head(&st->piece), buf_len(&st->piece));
    buf_reset(&st->piece);
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(st->sha, md, &mdlen);
    char blob[24], size[24], hs[24];
    snprintf(blob, sizeof blob, "%lld", st->blob_id);
    snprintf(size, sizeof size, "%llu", (unsigned long long)st->size);
    snprintf(hs, sizeof hs, "%llu", (unsigned long long)(st->header_size ? st->header_size : st->size));
    struct mime_blob mb;
    mime_blob_finish(&mb, st->mime);
    st->mime = NULL;
    struct append_params ap;
    struct db_param p[APPEND_NPARAMS] = {
        [8] = { blob }, [9] = { size }, [10] = { (const char *)md, (int)mdlen, true },
    };
    append_params(st, &mb, hs, &ap, p);
    db_pin_query(st->pin, STMT_APPEND, p, APPEND_NPARAMS, final_done, req);
    append_params_free(&ap);
    mime_blob_free(&mb);
}

/* Takes bytes of the message: hashes them and writes every whole chunk. */
static void take_bytes(struct rpc_req *req, const uint8_t *p, size_t n)
{
    struct append_state *st = req->state;
    scan_header(st, p, n);
    st->received += n;
    EVP_DigestUpdate(st->sha, p, n);
    if (n)
        mime_store_feed(st->mime, p, n);
    crlf_size_feed(&st->crlf, p, n);
    thread_refs_feed(&st->thread, p, n);
    buf_append(&st->piece, p, n);
    while (st->blob_id && buf_len(&st->piece) >= BLOB_CHUNK) {
        put_piece(req, buf_head(&st->piece), BLOB_CHUNK);
        buf_consume(&st->piece, BLOB_CHUNK);
    }
}

static void on_chunk(struct rpc_req *req, const Petrel__Request *msg)
{
    struct append_state *st = req->state;
    if (st->failed || msg->op_case != PETREL__REQUEST__OP_APPEND_CHUNK)
        return;
    const ProtobufCBinaryData *d = &msg->append_chunk->data;
    if (d->len > st->size - st->received) {
        fail_stream(req, NULL, "More message data than announced");
        return;
    }
    take_bytes(req, d->data, d->len);
    ack_chunk(req);
    if (st->received == st->size && st->blob_id)
        finish_stream(req);
}

static void blob_begun(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct append_state *st = req->state;
    if (st->failed)
        return;
    if (r->status != DB_OK) {
        fail_stream(req, r, NULL);
        return;
    }
    st->blob_id = db_int(r->res, 0, 0);
    take_bytes(req, NULL, 0);   /* write chunks that arrived meanwhile */
    if (st->received == st->size)
        finish_stream(req);
}

static void begun(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct append_state *st = req->state;
    if (st->failed)
        return;
    if (r->status != DB_OK) {
        fail_stream(req, r, NULL);
        return;
    }
    struct db_param p[] = { { st->acct } };
    db_pin_query(st->pin, STMT_BLOB_BEGIN, p, 1, blob_begun, req);
}

static void pinned(struct db_pin *pin, const char *error, void *ctx)
{
    struct rpc_req *req = ctx;
    struct append_state *st = req->state;
    st->pin_waiting = 0;
    st->pin = pin;
    if (st->failed) {   /* cancelled while waiting */
        rolled_back(NULL, req);
        return;
    }
    if (!pin) {
        struct db_result r = { DB_TEMPFAIL, NULL, "", error };
        fail_stream(req, &r, NULL);
        return;
    }
    db_exec(backend->db, pin, "BEGIN", begun, req);
}

static void on_cancel(struct rpc_req *req)
{
    /* The frontend is gone: whatever is in flight fails or finishes, and the
     * transaction never commits unless the whole message had arrived. */
    struct append_state *st = req->state;
    if (st->received < st->size)
        fail_stream(req, NULL, "cancelled");
}

void op_append(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__AppendReq *a = msg->append;
    if (a->size > (uint64_t)backend->cfg->max_message_size) {
        rpc_fail(req, PETREL__STATUS__TOOBIG, "Message too large");
        return;
    }
    if (a->data.len > a->size) {
        rpc_fail(req, PETREL__STATUS__BAD, "More message data than announced");
        return;
    }
    struct append_state *st = calloc(1, sizeof *st);
    header_end_init(&st->hend);
    req->state = st;
    crlf_size_init(&st->crlf);
    thread_refs_init(&st->thread);
    snprintf(st->acct, sizeof st->acct, "%lld", (long long)req->account_id);
    st->mailbox = strdup(a->mailbox);
    snprintf(st->flags, sizeof st->flags, "%u", a->flags);
    st->keywords = pg_text_array(a->keywords, a->n_keywords);
    snprintf(st->date, sizeof st->date, "%lld", (long long)a->internaldate);
    snprintf(st->tz, sizeof st->tz, "%d", a->tz_offset);
    st->size = a->size;
    if (a->data.len == a->size) {
        append_small(req, a);
        return;
    }
    st->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(st->sha, EVP_sha256(), NULL);
    st->mime = mime_store_parser();
    req->on_more = on_chunk;
    req->on_cancel = on_cancel;
    take_bytes(req, a->data.data, a->data.len);
    st->pin_waiting = 1;
    db_pin_acquire(backend->db, pinned, req);
}
