/* LMTP: RCPT (does this recipient exist?) and DELIVER (store one message for
 * all of a transaction's recipients).
 *
 * DELIVER: the message's total size is unknown until the client's final ".",
 * so it arrives as a DeliverReq and Chunk frames, the last one flagged. A
 * message that came whole in the DeliverReq is stored with one statement
 * (petrel_deliver_data). A longer one is streamed as a streamed APPEND is:
 * one transaction on a pinned connection stages the body under the first
 * recipient account that exists (petrel_deliver_begin + petrel_blob_put) as
 * it arrives, and after the last piece petrel_deliver adds it to every
 * recipient (copying the body inside the database to the other accounts,
 * one subtransaction per account and mailbox, so one recipient's failure
 * leaves the others alone); the reply, one result per recipient, goes out
 * only after COMMIT. Either way the message is parsed as it arrives (MIME
 * structure, search text: mime_store.h) and the parse is stored by the
 * same statement as the message, as APPEND does. Line ends are made CRLF
 * first, as for APPEND (crlf_norm.h): the hash, parse, header size, size and
 * blob are those of the normalised bytes, while max_message_size counts the
 * bytes as sent. Each Chunk frame is acknowledged once everything
 * received so far has been written, so the frontend's window of unacked
 * chunks bounds what waits here. A Cancel (the client vanished) before the
 * last piece rolls everything back; after it the delivery completes, as an
 * SMTP server's would once it had the final dot. The transaction's skeleton
 * (pin, BEGIN, COMMIT, ROLLBACK) is stream_txn.h, shared with APPEND.
 *
 * Hook point for change notifications (Redis, later): deliver_committed(),
 * which knows every (account, mailbox, uid) that was added. */
#include "backend.h"
#include "crlf_norm.h"
#include "mime_store.h"
#include "header_end.h"
#include "notify.h"
#include "stream_txn.h"

#include "buf.h"
#include "log.h"
#include "pgarray.h"
#include "thread_refs.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Must equal the chunk size the schema uses for blob_chunks. */
#define BLOB_CHUNK 262144
/* Recipients in one DeliverReq (the SQL function takes up to 10000). A
 * constant, not a setting: it bounds what a frontend sends, and must be at
 * least the maximum the frontend's lmtp_max_recipients setting allows
 * (10000, frontend/main.c), which is what limits LMTP clients. */
#define MAX_RECIPIENTS 10000
/* Chunk frames the frontend may have unacknowledged; it keeps 2. */
#define MAX_OWED_ACKS 8

/* ---- RCPT ---- */

static void rcpt_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) < 1) {
        rpc_fail(req, PETREL__STATUS__NONEXISTENT, "No such user");
        return;
    }
    Petrel__RcptResp rr = PETREL__RCPT_RESP__INIT;
    rr.account_id = db_int(r->res, 0, 0);
    rr.address = PQgetvalue(r->res, 0, 1);
    rr.detail = PQgetvalue(r->res, 0, 2);
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_RCPT;
    resp.rcpt = &rr;
    rpc_reply(req, &resp);
}

void op_rcpt(struct rpc_req *req, const Petrel__Request *msg)
{
    const char *addr = msg->rcpt->address;
    if (!addr || !*addr || strlen(addr) > 1024) {
        rpc_fail(req, PETREL__STATUS__BAD, "Invalid address");
        return;
    }
    struct db_param p[] = { { addr } };
    db_query(backend->db, STMT_LMTP_RCPT, p, 1, rcpt_done, req);
}

/* ---- DELIVER ---- */

struct deliver_state {
    struct stream_txn txn;       /* first: the txn callbacks find the state from it */
    size_t nrcpt;
    int64_t *rcpt_accounts;      /* for logs and the notification hook */
    char *accounts;              /* int8[] literal */
    char *mailboxes;             /* text[] literal */
    uint64_t received;           /* bytes as the frontend sent them */
    struct crlf_norm norm;       /* makes their line ends CRLF */
    uint64_t stored;             /* bytes after that: the message's size */
    uint64_t header_size;        /* 0 until the blank line is seen */
    struct header_end hend;      /* finds header_size across frames */
    struct thread_refs thread;   /* Message-ID and references, for THREADID */
    char *msgid, *refs;          /* their statement parameters, once known */
    bool last;                   /* the final piece arrived */
    char src_acct[24];           /* the account the body is staged under */
    long long blob_id;           /* the staged blob, 0 until staged */
    int seq;                     /* next chunk number */
    struct buf piece;            /* bytes not yet written as a whole chunk */
    EVP_MD_CTX *sha;
    struct mime_store *mime;     /* parses the message as it streams in */
    unsigned puts_issued, puts_done;
    unsigned owed_acks;          /* Chunk frames not acknowledged yet */
    Petrel__DeliverResult *results;   /* nrcpt, once petrel_deliver answered */
    Petrel__DeliverResult **result_ptrs;
};

static void state_free(struct deliver_state *st)
{
    if (!st)
        return;
    if (st->results)
        for (size_t i = 0; i < st->nrcpt; i++) {
            free(st->results[i].text);
            free(st->results[i].mailbox);
        }
    free(st->results);
    free(st->result_ptrs);
    free(st->rcpt_accounts);
    free(st->accounts);
    free(st->mailboxes);
    thread_refs_free(&st->thread);
    free(st->msgid);
    free(st->refs);
    buf_free(&st->piece);
    EVP_MD_CTX_free(st->sha);
    mime_store_free(st->mime);
    free(st);
}

/* Finds where the header ends (after the first empty line), across frames. */
static void scan_header(struct deliver_state *st, const uint8_t *p, size_t n)
{
    st->header_size = header_end_feed(&st->hend, p, n);
}

static const char *header_size_text(const struct deliver_state *st, char *buf, size_t n)
{
    snprintf(buf, n, "%llu",
             (unsigned long long)(st->header_size ? st->header_size : st->stored));
    return buf;
}

/* Where new mail becomes visible: every recipient's result is final and
 * committed. The change notification (Redis) belongs here. */
static void deliver_committed(struct rpc_req *req, struct deliver_state *st)
{
    for (size_t i = 0; i < st->nrcpt; i++) {
        const Petrel__DeliverResult *r = &st->results[i];
        if (r->status == PETREL__STATUS__OK)
            /* The mailbox is known here by name only: 0 = "some mailbox". */
            notify_change(st->rcpt_accounts[i], 0, 0, req->session);
        if (r->status == PETREL__STATUS__OK)
            log_info("\"delivered\" session=%s account=%lld mailbox=\"%s\" uid=%u size=%llu",
                     req->session, (long long)st->rcpt_accounts[i], r->mailbox, r->uid,
                     (unsigned long long)st->stored);
        else
            log_warn("\"delivery failed\" session=%s account=%lld status=%d error=\"%s\"",
                     req->session, (long long)st->rcpt_accounts[i], (int)r->status, r->text);
    }
}

/* Turns petrel_deliver's rows (idx, err_state, err_text, mailbox,
 * uidvalidity, uid) into one result per recipient. */
static void take_results(struct deliver_state *st, const PGresult *res)
{
    st->results = calloc(st->nrcpt, sizeof *st->results);
    st->result_ptrs = calloc(st->nrcpt, sizeof *st->result_ptrs);
    if (!st->results || !st->result_ptrs)
        abort();
    for (size_t i = 0; i < st->nrcpt; i++) {
        petrel__deliver_result__init(&st->results[i]);
        st->results[i].status = PETREL__STATUS__TEMPFAIL;
        st->results[i].text = strdup("Not delivered");
        st->results[i].mailbox = strdup("");
        st->result_ptrs[i] = &st->results[i];
    }
    for (int row = 0; row < PQntuples(res); row++) {
        long long idx = db_int(res, row, 0);
        if (idx < 1 || (size_t)idx > st->nrcpt)
            continue;
        Petrel__DeliverResult *r = &st->results[idx - 1];
        const char *state = PQgetvalue(res, row, 1);
        free(r->text);
        free(r->mailbox);
        r->mailbox = strdup(PQgetvalue(res, row, 3));
        if (strcmp(state, "00000") == 0) {
            r->status = PETREL__STATUS__OK;
            r->text = strdup("");
            r->uidvalidity = (uint32_t)db_int(res, row, 4);
            r->uid = (uint32_t)db_int(res, row, 5);
            continue;
        }
        /* 23503: the account is gone (foreign key); P0002: its INBOX is. */
        if (strcmp(state, "23503") == 0 || strcmp(state, "P0002") == 0)
            r->status = PETREL__STATUS__NONEXISTENT;
        else
            r->status = PETREL__STATUS__TEMPFAIL;
        char text[300];
        snprintf(text, sizeof text, "%s (SQLSTATE %s)", PQgetvalue(res, row, 2), state);
        r->text = strdup(text);
    }
}

static void reply_results(struct rpc_req *req, struct deliver_state *st)
{
    deliver_committed(req, st);
    Petrel__DeliverResp dr = PETREL__DELIVER_RESP__INIT;
    dr.n_results = st->nrcpt;
    dr.results = st->result_ptrs;
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_DELIVER;
    resp.deliver = &dr;
    if (req->cancelled)
        log_info("\"delivery committed after the frontend left\" session=%s", req->session);
    rpc_reply(req, &resp);
    state_free(st);
}

/* ---- one statement for a message that arrived whole ---- */

static void small_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct deliver_state *st = req->state;
    req->state = NULL;
    if (r->status != DB_OK) {
        state_free(st);
        rpc_fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) == 0) {   /* none of the accounts exists any more */
        state_free(st);
        rpc_fail(req, PETREL__STATUS__NONEXISTENT, "No such user");
        return;
    }
    take_results(st, r->res);
    reply_results(req, st);
}

static void deliver_small(struct rpc_req *req, const ProtobufCBinaryData *data)
{
    struct deliver_state *st = req->state;
    /* Everything below sees the message with CRLF line ends (crlf_norm.h). */
    struct buf body = { 0 };
    crlf_norm_append(&st->norm, data->data, data->len, &body);
    const uint8_t *d = (const uint8_t *)(buf_head(&body) ? buf_head(&body) : "");
    size_t n = buf_len(&body);
    scan_header(st, d, n);
    thread_refs_feed(&st->thread, d, n);
    thread_refs_params(&st->thread, &st->msgid, &st->refs);
    st->received = data->len;
    st->stored = n;
    char hs[24];
    struct mime_store *parser = mime_store_parser();
    mime_store_feed(parser, d, n);
    struct mime_blob mb;
    mime_blob_finish(&mb, parser);
    enum { N = 6 + MIME_BLOB_NPARAMS + MIME_BLOB_NFIELDS };
    struct db_param p[N] = {
        { st->accounts }, { st->mailboxes }, { header_size_text(st, hs, sizeof hs) },
        { (const char *)d, (int)n, true }, { st->msgid }, { st->refs },
    };
    mime_blob_params(&mb, &p[6]);
    mime_blob_field_params(&mb, &p[6 + MIME_BLOB_NPARAMS]);
    db_query(backend->db, STMT_DELIVER_DATA_MIME, p, N, small_done, req);
    mime_blob_free(&mb);
    buf_free(&body);
}

/* ---- the streamed path ---- */

static void txn_free_state(struct stream_txn *t)
{
    t->req->state = NULL;
    state_free((struct deliver_state *)t);
}

/* Ends the request with status for every recipient, once what is queued
 * has finished (stream_txn.h). */
static void fail_stream(struct rpc_req *req, Petrel__Status status, const char *text)
{
    struct deliver_state *st = req->state;
    stream_txn_fail(&st->txn, status, text);
}

static void fail_db(struct rpc_req *req, const struct db_result *r)
{
    if (r->status == DB_TEMPFAIL) {
        fail_stream(req, PETREL__STATUS__TEMPFAIL, r->message);
        return;
    }
    log_error("\"query failed\" session=%s op=%s sqlstate=%s error=\"%s\"", req->session, req->op,
              r->sqlstate, r->message);
    fail_stream(req, PETREL__STATUS__TEMPFAIL, "Internal error");
}

/* Acknowledges the Chunk frames received so far once all their bytes are
 * written (or, for a tail under one blob chunk, held): the frontend sends
 * more only then. */
static void flush_acks(struct rpc_req *req)
{
    struct deliver_state *st = req->state;
    if (st->txn.failed || !st->blob_id || st->puts_done != st->puts_issued)
        return;
    for (; st->owed_acks > 0; st->owed_acks--) {
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        resp.more = 1;
        rpc_reply(req, &resp);
    }
}

static void committed(struct stream_txn *t)
{
    struct rpc_req *req = t->req;
    req->state = NULL;
    reply_results(req, (struct deliver_state *)t);
}

static void delivered(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct deliver_state *st = req->state;
    if (st->txn.failed)
        return;
    if (r->status != DB_OK) {
        fail_db(req, r);
        return;
    }
    take_results(st, r->res);
    stream_txn_commit(&st->txn);
}

static void put_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct deliver_state *st = req->state;
    if (st->txn.failed)
        return;
    st->puts_done++;
    if (r->status != DB_OK) {
        fail_db(req, r);
        return;
    }
    flush_acks(req);
}

static void put_piece(struct rpc_req *req, const char *p, size_t n)
{
    struct deliver_state *st = req->state;
    char blob[24], seq[16];
    snprintf(blob, sizeof blob, "%lld", st->blob_id);
    snprintf(seq, sizeof seq, "%d", st->seq++);
    struct db_param prm[] = { { st->src_acct }, { blob }, { seq }, { p, (int)n, true } };
    st->puts_issued++;
    db_pin_query(st->txn.pin, STMT_BLOB_PUT, prm, 4, put_done, req);
}

/* Writes every whole chunk buffered (once the blob is staged). */
static void write_pieces(struct rpc_req *req)
{
    struct deliver_state *st = req->state;
    while (st->blob_id && buf_len(&st->piece) >= BLOB_CHUNK) {
        put_piece(req, buf_head(&st->piece), BLOB_CHUNK);
        buf_consume(&st->piece, BLOB_CHUNK);
    }
}

static void finish_stream(struct rpc_req *req)
{
    struct deliver_state *st = req->state;
    if (buf_len(&st->piece) > 0)
        put_piece(req, buf_head(&st->piece), buf_len(&st->piece));
    buf_reset(&st->piece);
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(st->sha, md, &mdlen);
    char blob[24], size[24], hs[24];
    snprintf(blob, sizeof blob, "%lld", st->blob_id);
    snprintf(size, sizeof size, "%llu", (unsigned long long)st->stored);
    thread_refs_params(&st->thread, &st->msgid, &st->refs);
    struct mime_blob mb;
    mime_blob_finish(&mb, st->mime);
    st->mime = NULL;
    enum { N = 9 + MIME_BLOB_NPARAMS + MIME_BLOB_NFIELDS };
    struct db_param p[N] = {
        { st->src_acct }, { blob }, { size }, { (const char *)md, (int)mdlen, true },
        { header_size_text(st, hs, sizeof hs) }, { st->accounts }, { st->mailboxes },
        { st->msgid }, { st->refs },
    };
    mime_blob_params(&mb, &p[9]);
    mime_blob_field_params(&mb, &p[9 + MIME_BLOB_NPARAMS]);
    db_pin_query(st->txn.pin, STMT_DELIVER_MIME, p, N, delivered, req);
    mime_blob_free(&mb);
}

/* Takes bytes of the message: makes their line ends CRLF (into piece),
 * hashes and parses the result and writes every whole chunk. Returns false
 * (the request fails) when the message is over the limit. */
static bool take_bytes(struct rpc_req *req, const uint8_t *p, size_t n)
{
    struct deliver_state *st = req->state;
    if (st->received + n > (uint64_t)backend->cfg->max_message_size) {
        fail_stream(req, PETREL__STATUS__TOOBIG, "Message too large");
        return false;
    }
    st->received += n;
    size_t from = buf_len(&st->piece);
    size_t k = crlf_norm_append(&st->norm, p, n, &st->piece);
    if (k > 0) {
        const uint8_t *q = (const uint8_t *)buf_head(&st->piece) + from;
        st->stored += k;
        scan_header(st, q, k);
        thread_refs_feed(&st->thread, q, k);
        EVP_DigestUpdate(st->sha, q, k);
        mime_store_feed(st->mime, q, k);
    }
    write_pieces(req);
    return true;
}

static void on_chunk(struct rpc_req *req, const Petrel__Request *msg)
{
    struct deliver_state *st = req->state;
    if (st->txn.failed)
        return;
    if (msg->op_case != PETREL__REQUEST__OP_APPEND_CHUNK || st->last) {
        fail_stream(req, PETREL__STATUS__BAD, "Unexpected frame in a delivery");
        return;
    }
    const Petrel__Chunk *ch = msg->append_chunk;
    if (!take_bytes(req, ch->data.data, ch->data.len))
        return;
    if (ch->last) {
        st->last = true;
        st->owed_acks = 0;   /* the final reply answers for them */
        if (st->blob_id)
            finish_stream(req);
        return;
    }
    if (++st->owed_acks > MAX_OWED_ACKS) {
        fail_stream(req, PETREL__STATUS__BAD, "Too many unacknowledged chunks");
        return;
    }
    flush_acks(req);
}

static void staged(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct deliver_state *st = req->state;
    if (st->txn.failed)
        return;
    if (r->status != DB_OK) {
        fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) < 1) {
        fail_stream(req, PETREL__STATUS__NONEXISTENT, "No such user");
        return;
    }
    snprintf(st->src_acct, sizeof st->src_acct, "%s", PQgetvalue(r->res, 0, 0));
    st->blob_id = db_int(r->res, 0, 1);
    write_pieces(req);   /* what arrived meanwhile */
    if (st->last)
        finish_stream(req);
    else
        flush_acks(req);
}

static void txn_begun(struct stream_txn *t)
{
    struct deliver_state *st = (struct deliver_state *)t;
    struct db_param p[] = { { st->accounts } };
    db_pin_query(t->pin, STMT_DELIVER_BEGIN, p, 1, staged, t->req);
}

static void on_cancel(struct rpc_req *req)
{
    /* The client or frontend is gone. Without the final piece the message is
     * incomplete: roll back. With it, the delivery completes. */
    struct deliver_state *st = req->state;
    if (st && !st->last)
        fail_stream(req, PETREL__STATUS__TEMPFAIL, "cancelled");
}

void op_deliver(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__DeliverReq *d = msg->deliver;
    if (d->n_recipients < 1 || d->n_recipients > MAX_RECIPIENTS) {
        rpc_fail(req, PETREL__STATUS__BAD, "Between 1 and 10000 recipients expected");
        return;
    }
    if (d->data.len > (size_t)backend->cfg->max_message_size) {
        rpc_fail(req, PETREL__STATUS__TOOBIG, "Message too large");
        return;
    }
    struct deliver_state *st = calloc(1, sizeof *st);
    header_end_init(&st->hend);
    crlf_norm_init(&st->norm);
    char **names = calloc(d->n_recipients, sizeof *names);
    st->rcpt_accounts = calloc(d->n_recipients, sizeof *st->rcpt_accounts);
    if (!st || !names || !st->rcpt_accounts)
        abort();
    st->nrcpt = d->n_recipients;
    thread_refs_init(&st->thread);
    struct buf acc = { 0 };
    buf_puts(&acc, "{");
    for (size_t i = 0; i < d->n_recipients; i++) {
        const Petrel__DeliverRcpt *rc = d->recipients[i];
        st->rcpt_accounts[i] = rc->account_id;
        buf_printf(&acc, "%s%lld", i ? "," : "", (long long)rc->account_id);
        names[i] = rc->mailbox ? rc->mailbox : "";
    }
    buf_append(&acc, "}", 2);
    st->accounts = acc.data;
    st->mailboxes = pg_text_array(names, d->n_recipients);
    free(names);
    req->state = st;
    if (d->last) {
        deliver_small(req, &d->data);
        return;
    }
    st->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(st->sha, EVP_sha256(), NULL);
    st->mime = mime_store_parser();
    req->on_more = on_chunk;
    req->on_cancel = on_cancel;
    take_bytes(req, d->data.data, d->data.len);   /* within the limit: checked above */
    st->txn.begun = txn_begun;
    st->txn.committed = committed;
    st->txn.free_state = txn_free_state;
    stream_txn_start(&st->txn, req);
}
