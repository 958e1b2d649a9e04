/* APPEND and MULTIAPPEND (RFC 3502): stores one message or several, all or
 * none.
 *
 * A single message that fits the first frame is stored with one statement.
 * Anything else streams, in one transaction on a pinned connection
 * (stream_txn.h): each body is written into a staged blob as it arrives and
 * gets its parse once complete (petrel_append_stage), so a backend holds at
 * most a chunk of a body and the few frames in flight. Once the last message
 * is in (append_end; without multi, the last byte of the one message) the
 * messages are added with petrel_append_staged (011_append_staged.sql), which
 * takes the mailbox row lock only then, and the transaction commits once. A
 * failure, or a Cancel before the end, rolls everything back. Each body's
 * parse, search text and thread (petrel_append_stage) are stored as soon as
 * it is complete, so threading ids are claimed before any mailbox row lock,
 * the order 010_objectid_savedate.sql relies on against deadlocks.
 *
 * Line ends are made CRLF as bytes arrive (crlf_norm.h), before the hash,
 * parse, header size and blob see them: the announced size (checked against
 * the limits, and telling where a message ends) counts the bytes as sent;
 * what is stored, and its size, is known only at the message's end.
 *
 * Flow control: each Chunk and append_next frame is acknowledged once the
 * bytes it brought are written, so the frontend's window of two
 * unacknowledged frames bounds what waits here. Frames arriving while a
 * body's blob is being created wait, in order, packed (at most
 * MAX_HELD_FRAMES). */
#include "backend.h"

#include "header_end.h"

#include "buf.h"
#include "crlf_norm.h"
#include "crlf_size.h"
#include "log.h"
#include "mime_store.h"
#include "notify.h"
#include "pgarray.h"
#include "stream_txn.h"
#include "thread_refs.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Must equal the chunk size the schema uses for blob_chunks. */
#define BLOB_CHUNK 262144
/* Frames held while a blob is created; the frontend keeps 2 unacknowledged. */
#define MAX_HELD_FRAMES 8

/* The message arriving now. */
struct msg_in {
    char flags[16];
    char *keywords;          /* text[] literal */
    char date[24];
    char tz[16];
    uint64_t size;           /* announced total (the literal's size) */
    uint64_t received;       /* of those, bytes arrived */
    struct crlf_norm norm;   /* makes line ends CRLF as they arrive */
    uint64_t stored;         /* bytes after that: the message's size */
    uint64_t header_size;    /* 0 until the blank line is seen */
    struct header_end hend;  /* finds header_size across frames */
    long long blob_id;       /* its staged blob; 0 while being created */
    int seq;                 /* next chunk number */
    EVP_MD_CTX *sha;
    struct mime_store *mime; /* parses the message as it streams in */
    struct crlf_size crlf;   /* its POP3 size (blobs.crlf_size) */
    struct thread_refs thread;   /* its Message-ID and references (THREADID) */
};

/* A message whose body is written, added to the mailbox at the end. */
struct staged_msg {
    char flags[16], date[24], tz[16], hs[24], blob[24], size[24], crlf[24];
    char thread[40];         /* its THREADID, once petrel_append_stage answered */
    char *keywords;
    unsigned char sha[32];
};

struct append_state {
    struct stream_txn txn;   /* first: the txn callbacks find the state from it */
    char acct[24];
    char *mailbox;
    bool multi;
    bool ended;              /* no message follows: add them all, commit */
    bool open;               /* cur is arriving (not staged yet) */
    bool blob_pending;       /* cur's petrel_blob_begin has not answered */
    struct msg_in cur;
    struct buf piece;        /* cur's bytes not yet written as a whole chunk */
    struct buf held;         /* frames waiting: 4-byte length + packed Request */
    unsigned nheld;
    unsigned puts_issued, puts_done;
    unsigned owed_acks;      /* frames taken but not acknowledged yet */
    struct staged_msg *staged;
    size_t nstaged, cap;
    size_t nprepared;        /* petrel_append_stage answers so far */
    bool adding;             /* petrel_append_staged calls sent */
    size_t nadded;           /* petrel_append_staged answers so far */
    uint32_t *uids;          /* the UIDs they gave, in order */
    Petrel__AppendResp result;
    uint64_t modseq;
};

static void msg_free(struct msg_in *m)
{
    free(m->keywords);
    EVP_MD_CTX_free(m->sha);
    mime_store_free(m->mime);
    thread_refs_free(&m->thread);
    memset(m, 0, sizeof *m);
}

static void state_free(struct append_state *st)
{
    msg_free(&st->cur);
    free(st->mailbox);
    buf_free(&st->piece);
    buf_free(&st->held);
    for (size_t i = 0; i < st->nstaged; i++)
        free(st->staged[i].keywords);
    free(st->staged);
    free(st->uids);
    free(st);
}

static void txn_free_state(struct stream_txn *t)
{
    struct append_state *st = (struct append_state *)t;
    st->txn.req->state = NULL;
    state_free(st);
}

/* The message's fields from an AppendReq (the first one or an append_next). */
static void msg_begin(struct msg_in *m, const Petrel__AppendReq *a)
{
    memset(m, 0, sizeof *m);
    snprintf(m->flags, sizeof m->flags, "%u", a->flags);
    m->keywords = pg_text_array(a->keywords, a->n_keywords);
    snprintf(m->date, sizeof m->date, "%lld", (long long)a->internaldate);
    snprintf(m->tz, sizeof m->tz, "%d", a->tz_offset);
    m->size = a->size;
    crlf_norm_init(&m->norm);
    crlf_size_init(&m->crlf);
    thread_refs_init(&m->thread);
    header_end_init(&m->hend);
}

/* Finds where the header ends (after the first empty line), across frames. */
static void scan_header(struct msg_in *m, const uint8_t *p, size_t n)
{
    m->header_size = header_end_feed(&m->hend, p, n);
}

static const char *header_size_text(const struct msg_in *m, char *buf, size_t n)
{
    snprintf(buf, n, "%llu", (unsigned long long)(m->header_size ? m->header_size : m->stored));
    return buf;
}

/* ---- one statement for a single message that arrived whole ---- */

static void small_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    state_free(req->state);
    req->state = NULL;
    if (r->status != DB_OK) {
        rpc_fail_db(req, r);
        return;
    }
    Petrel__AppendResp ar = PETREL__APPEND_RESP__INIT;
    ar.uidvalidity = (uint32_t)db_int(r->res, 0, 0);
    ar.uid = (uint32_t)db_int(r->res, 0, 1);
    ar.mailbox_id = db_int(r->res, 0, 2);
    notify_change(req->account_id, ar.mailbox_id, (uint64_t)db_int(r->res, 0, 3), req->session);
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_APPEND;
    resp.append = &ar;
    rpc_reply(req, &resp);
}

/* petrel_append_message's parameters (020_append_fields_from_backend.sql):
 * [7] the body, [8..10] a staged blob (unused here), the parse, the POP3
 * size, the threading ids and the five header fields blob_text keeps. */
#define APPEND_NPARAMS (11 + MIME_BLOB_NPARAMS + 3 + MIME_BLOB_NFIELDS)

static void append_small(struct rpc_req *req, const Petrel__AppendReq *a)
{
    struct append_state *st = req->state;
    struct msg_in *m = &st->cur;
    /* Everything below sees the message with CRLF line ends (crlf_norm.h). */
    struct buf body = { 0 };
    crlf_norm_append(&m->norm, a->data.data, a->data.len, &body);
    const uint8_t *d = (const uint8_t *)(buf_head(&body) ? buf_head(&body) : "");
    size_t n = buf_len(&body);
    m->stored = n;
    scan_header(m, d, n);
    char hs[24];
    struct mime_store *parser = mime_store_parser();
    mime_store_feed(parser, d, n);
    struct mime_blob mb;
    mime_blob_finish(&mb, parser);
    crlf_size_feed(&m->crlf, d, n);
    thread_refs_feed(&m->thread, d, n);
    char crlf[24], *msgid, *refs;
    snprintf(crlf, sizeof crlf, "%llu", (unsigned long long)crlf_size_total(&m->crlf));
    thread_refs_params(&m->thread, &msgid, &refs);
    struct db_param p[APPEND_NPARAMS] = {
        { st->acct }, { st->mailbox }, { m->flags }, { m->keywords }, { m->date }, { m->tz },
        { header_size_text(m, hs, sizeof hs) }, { (const char *)d, (int)n, true },
    };
    mime_blob_params(&mb, &p[11]);
    p[11 + MIME_BLOB_NPARAMS] = (struct db_param){ crlf };
    p[12 + MIME_BLOB_NPARAMS] = (struct db_param){ msgid };
    p[13 + MIME_BLOB_NPARAMS] = (struct db_param){ refs };
    mime_blob_field_params(&mb, &p[14 + MIME_BLOB_NPARAMS]);
    db_query(backend->db, STMT_APPEND, p, APPEND_NPARAMS, small_done, req);
    free(msgid);
    free(refs);
    mime_blob_free(&mb);
    buf_free(&body);
}

/* ---- the streamed path ---- */

static void committed(struct stream_txn *t)
{
    struct append_state *st = (struct append_state *)t;
    struct rpc_req *req = t->req;
    Petrel__AppendResp ar = st->result;
    ar.uids = st->uids;
    ar.n_uids = st->multi ? st->nadded : 0;
    notify_change(req->account_id, ar.mailbox_id, st->modseq, req->session);
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_APPEND;
    resp.append = &ar;
    req->state = NULL;
    rpc_reply(req, &resp);   /* frees req */
    state_free(st);
}

/* Acknowledges the frames taken once every byte they brought is written (or,
 * for a tail under one blob chunk, held): the frontend sends more only then. */
static void flush_acks(struct append_state *st)
{
    if (st->txn.failed || st->blob_pending || st->puts_done != st->puts_issued)
        return;
    for (; st->owed_acks > 0; st->owed_acks--) {
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        resp.more = 1;
        rpc_reply(st->txn.req, &resp);
    }
}

/* Counts a finished write (a chunk or a body's stage); false when the
 * transaction has failed, by this write or before it. */
static bool write_done(struct append_state *st, const struct db_result *r)
{
    if (st->txn.failed)
        return false;
    st->puts_done++;
    if (r->status != DB_OK) {
        stream_txn_fail_db(&st->txn, r);
        return false;
    }
    return true;
}

static void put_done(const struct db_result *r, void *ctx)
{
    struct append_state *st = ctx;
    if (write_done(st, r))
        flush_acks(st);
}

static void put_piece(struct append_state *st, const char *p, size_t n)
{
    char blob[24], seq[16];
    snprintf(blob, sizeof blob, "%lld", st->cur.blob_id);
    snprintf(seq, sizeof seq, "%d", st->cur.seq++);
    struct db_param prm[] = { { st->acct }, { blob }, { seq }, { p, (int)n, true } };
    st->puts_issued++;
    db_pin_query(st->txn.pin, STMT_BLOB_PUT, prm, 4, put_done, st);
}

static void added(const struct db_result *r, void *ctx)
{
    struct append_state *st = ctx;
    if (st->txn.failed)
        return;
    if (r->status != DB_OK) {
        stream_txn_fail_db(&st->txn, r);
        return;
    }
    st->result.uidvalidity = (uint32_t)db_int(r->res, 0, 0);
    st->result.uid = (uint32_t)db_int(r->res, 0, 1);
    st->result.mailbox_id = db_int(r->res, 0, 2);
    st->modseq = (uint64_t)db_int(r->res, 0, 3);
    st->uids[st->nadded++] = st->result.uid;
    if (st->nadded == st->nstaged)
        stream_txn_commit(&st->txn);
}

/* Once no message follows and every body is staged: add them, in order. */
static void maybe_add(struct append_state *st)
{
    if (!st->ended || st->adding || st->open || st->nprepared < st->nstaged || st->txn.failed)
        return;
    st->adding = true;
    petrel__append_resp__init(&st->result);
    st->uids = calloc(st->nstaged, sizeof *st->uids);
    if (!st->uids)
        abort();
    for (size_t i = 0; i < st->nstaged; i++) {
        const struct staged_msg *s = &st->staged[i];
        struct db_param p[] = {
            { st->acct }, { st->mailbox }, { s->flags }, { s->keywords }, { s->date }, { s->tz },
            { s->hs }, { s->blob }, { s->size }, { (const char *)s->sha, 32, true }, { s->crlf },
            { s->thread },
        };
        db_pin_query(st->txn.pin, STMT_APPEND_STAGED, p, 12, added, st);
    }
}

static void stage_done(const struct db_result *r, void *ctx)
{
    struct append_state *st = ctx;
    if (!write_done(st, r))
        return;
    snprintf(st->staged[st->nprepared++].thread, sizeof st->staged[0].thread, "%s",
             PQgetvalue(r->res, 0, 0));
    flush_acks(st);
    maybe_add(st);
}

/* cur has arrived whole and has its blob: write the rest, store its parse
 * and thread, and keep what adding it will need. */
static void stage_message(struct append_state *st)
{
    struct msg_in *m = &st->cur;
    if (buf_len(&st->piece) > 0)
        put_piece(st, buf_head(&st->piece), buf_len(&st->piece));
    buf_reset(&st->piece);
    if (st->nstaged == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 4;
        st->staged = realloc(st->staged, st->cap * sizeof *st->staged);
        if (!st->staged)
            abort();
    }
    struct staged_msg *s = &st->staged[st->nstaged++];
    memcpy(s->flags, m->flags, sizeof s->flags);
    memcpy(s->date, m->date, sizeof s->date);
    memcpy(s->tz, m->tz, sizeof s->tz);
    header_size_text(m, s->hs, sizeof s->hs);
    snprintf(s->blob, sizeof s->blob, "%lld", m->blob_id);
    snprintf(s->size, sizeof s->size, "%llu", (unsigned long long)m->stored);
    snprintf(s->crlf, sizeof s->crlf, "%llu", (unsigned long long)crlf_size_total(&m->crlf));
    s->keywords = m->keywords;
    m->keywords = NULL;
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(m->sha, s->sha, &mdlen);
    struct mime_blob mb;
    mime_blob_finish(&mb, m->mime);
    m->mime = NULL;
    char *msgid, *refs;
    thread_refs_params(&m->thread, &msgid, &refs);
    struct db_param p[2 + MIME_BLOB_NPARAMS + 2] = { { st->acct }, { s->blob } };
    mime_blob_params(&mb, &p[2]);
    p[2 + MIME_BLOB_NPARAMS] = (struct db_param){ msgid };
    p[3 + MIME_BLOB_NPARAMS] = (struct db_param){ refs };
    st->puts_issued++;
    db_pin_query(st->txn.pin, STMT_APPEND_STAGE, p, 2 + MIME_BLOB_NPARAMS + 2, stage_done, st);
    free(msgid);
    free(refs);
    mime_blob_free(&mb);
    msg_free(m);
    st->open = false;
    if (!st->multi)
        st->ended = true;
    maybe_add(st);
}

/* Takes bytes of cur: makes their line ends CRLF (into piece), hashes and
 * parses the result and writes every whole chunk (once the blob exists);
 * stages cur when it is complete. The announced size counts the bytes as
 * sent, the stored size as normalised. */
static void take_bytes(struct append_state *st, const uint8_t *p, size_t n)
{
    struct msg_in *m = &st->cur;
    m->received += n;
    size_t from = buf_len(&st->piece);
    size_t k = crlf_norm_append(&m->norm, p, n, &st->piece);
    if (k > 0) {
        const uint8_t *q = (const uint8_t *)buf_head(&st->piece) + from;
        m->stored += k;
        scan_header(m, q, k);
        EVP_DigestUpdate(m->sha, q, k);
        mime_store_feed(m->mime, q, k);
        crlf_size_feed(&m->crlf, q, k);
        thread_refs_feed(&m->thread, q, k);
    }
    if (st->blob_pending)
        return;
    while (buf_len(&st->piece) >= BLOB_CHUNK) {
        put_piece(st, buf_head(&st->piece), BLOB_CHUNK);
        buf_consume(&st->piece, BLOB_CHUNK);
    }
    if (st->open && m->received == m->size)
        stage_message(st);
}

static void blob_begun(const struct db_result *r, void *ctx);

/* Starts a message: its fields, its first bytes, its blob. */
static void open_message(struct append_state *st, const Petrel__AppendReq *a)
{
    msg_begin(&st->cur, a);
    st->cur.sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(st->cur.sha, EVP_sha256(), NULL);
    st->cur.mime = mime_store_parser();
    st->open = true;
    st->blob_pending = true;
    take_bytes(st, a->data.data, a->data.len);
    if (st->txn.pin) {   /* else txn_begun() asks once BEGIN is through */
        struct db_param p[] = { { st->acct } };
        db_pin_query(st->txn.pin, STMT_BLOB_BEGIN, p, 1, blob_begun, st);
    }
}

/* A message's own checks, before any of it is taken. NULL: fine. */
static const char *refuse_message(const struct append_state *st, const Petrel__AppendReq *a,
                                  Petrel__Status *status_r)
{
    *status_r = PETREL__STATUS__BAD;
    if (a->data.len > a->size)
        return "More message data than announced";
    *status_r = PETREL__STATUS__TOOBIG;
    if (a->size > (uint64_t)backend->cfg->max_message_size)
        return "Message too large";
    *status_r = PETREL__STATUS__NO;
    if (st->nstaged + 1 > (size_t)backend->cfg->append_max_messages)
        return "Too many messages in one APPEND";
    return NULL;
}

static void take_frame(struct append_state *st, const Petrel__Request *msg)
{
    Petrel__Status status;
    const char *why;
    switch (msg->op_case) {
    case PETREL__REQUEST__OP_APPEND_CHUNK:
        if (!st->open || msg->append_chunk->data.len > st->cur.size - st->cur.received) {
            stream_txn_fail(&st->txn, PETREL__STATUS__BAD, "More message data than announced");
            return;
        }
        st->owed_acks++;
        take_bytes(st, msg->append_chunk->data.data, msg->append_chunk->data.len);
        break;
    case PETREL__REQUEST__OP_APPEND_NEXT:
        if (!st->multi || st->ended || st->open) {
            stream_txn_fail(&st->txn, PETREL__STATUS__BAD, "Next message before the last one ended");
            return;
        }
        if ((why = refuse_message(st, msg->append_next, &status))) {
            stream_txn_fail(&st->txn, status, why);
            return;
        }
        st->owed_acks++;
        open_message(st, msg->append_next);
        break;
    case PETREL__REQUEST__OP_APPEND_END:
        if (!st->multi || st->ended || st->open) {
            stream_txn_fail(&st->txn, PETREL__STATUS__BAD, "End of messages before the last one ended");
            return;
        }
        st->ended = true;
        maybe_add(st);
        break;
    default:
        stream_txn_fail(&st->txn, PETREL__STATUS__BAD, "Unexpected frame in an append");
        return;
    }
    flush_acks(st);
}

/* Takes the frames that waited for a blob, until one makes the next wait. */
static void take_held(struct append_state *st)
{
    while (st->nheld > 0 && !st->blob_pending && !st->txn.failed) {
        uint32_t len;
        memcpy(&len, buf_head(&st->held), sizeof len);
        Petrel__Request *msg = petrel__request__unpack(
            NULL, len, (const uint8_t *)buf_head(&st->held) + sizeof len);
        buf_consume(&st->held, sizeof len + len);
        st->nheld--;
        if (!msg) {
            stream_txn_fail(&st->txn, PETREL__STATUS__BAD, "Unreadable frame");
            return;
        }
        take_frame(st, msg);
        petrel__request__free_unpacked(msg, NULL);
    }
}

static void on_frame(struct rpc_req *req, const Petrel__Request *msg)
{
    struct append_state *st = req->state;
    if (st->txn.failed)
        return;
    if (!st->blob_pending && st->nheld == 0) {
        take_frame(st, msg);
        return;
    }
    if (st->nheld >= MAX_HELD_FRAMES) {
        stream_txn_fail(&st->txn, PETREL__STATUS__BAD, "Too many unacknowledged frames");
        return;
    }
    uint32_t len = (uint32_t)petrel__request__get_packed_size(msg);
    buf_append(&st->held, &len, sizeof len);
    size_t avail;
    uint8_t *room = (uint8_t *)buf_tail(&st->held, len, &avail);
    buf_commit(&st->held, petrel__request__pack(msg, room));
    st->nheld++;
}

static void blob_begun(const struct db_result *r, void *ctx)
{
    struct append_state *st = ctx;
    if (st->txn.failed)
        return;
    if (r->status != DB_OK) {
        stream_txn_fail_db(&st->txn, r);
        return;
    }
    st->cur.blob_id = db_int(r->res, 0, 0);
    st->blob_pending = false;
    take_bytes(st, NULL, 0);   /* writes what arrived meanwhile */
    flush_acks(st);
    take_held(st);
}

static void txn_begun(struct stream_txn *t)
{
    struct append_state *st = (struct append_state *)t;
    struct db_param p[] = { { st->acct } };
    db_pin_query(t->pin, STMT_BLOB_BEGIN, p, 1, blob_begun, st);
}

static void on_cancel(struct rpc_req *req)
{
    /* The frontend is gone. Before the end of the command nothing may be
     * stored; after it the append completes, as it would have anyway. */
    struct append_state *st = req->state;
    if (!st->ended)
        stream_txn_fail(&st->txn, PETREL__STATUS__TEMPFAIL, "cancelled");
}

void op_append(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__AppendReq *a = msg->append;
    struct append_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    Petrel__Status status;
    const char *why = refuse_message(st, a, &status);
    if (why) {
        free(st);
        rpc_fail(req, status, why);
        return;
    }
    req->state = st;
    snprintf(st->acct, sizeof st->acct, "%lld", (long long)req->account_id);
    st->mailbox = strdup(a->mailbox);
    st->multi = a->multi;
    if (!a->multi && a->data.len == a->size) {
        msg_begin(&st->cur, a);
        append_small(req, a);
        return;
    }
    st->txn.begun = txn_begun;
    st->txn.committed = committed;
    st->txn.free_state = txn_free_state;
    req->on_more = on_frame;
    req->on_cancel = on_cancel;
    open_message(st, a);   /* no pin yet: its blob comes after BEGIN */
    stream_txn_start(&st->txn, req);
}
