/* BodyReq with binary set: IMAP FETCH BINARY[section]<partial> and
 * BINARY.SIZE[section] (RFC 3516; what is sent: binary_part.h).
 *
 * The literal's size must be known before its first byte, so the result's
 * size comes first: from the sizes the MIME parser stored (bin_size), or,
 * for messages parsed before those existed, from a counting pass that reads
 * and decodes the encoded segments without keeping anything. Then the plan's
 * segments stream in stream_chunk reads, each decoded as it arrives, with
 * body_stream.h's flow control, so neither pass holds more than one read
 * and its decoded output. */
#include "backend.h"

#include "body_read.h"
#include "body_stream.h"
#include "binary_part.h"
#include "mime_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct binary_state {
    struct body_stream s;     /* first: req->state points here */
    long long mailbox_id;
    uint32_t uid;
    char *section;
    bool size_only;
    bool partial;
    uint64_t p_off, p_len;
    struct bin_plan plan;
    bool counting;            /* sizing the unsized segments, not sending */
    size_t seg;               /* segment being read */
    bool seg_open;            /* its transformation has begun */
    uint64_t pos;             /* its next raw byte */
    struct bin_transform x;
    uint64_t out_pos;         /* result bytes produced before those in out */
    uint64_t from, to;        /* the window of the result that is sent */
    bool binary;              /* a literal8 */
    uint64_t asked;
    struct buf out;           /* result bytes of the last read */
};

void op_binary(struct rpc_req *req, const Petrel__Request *msg);
static void pump(struct rpc_req *req);

static void state_free(void *state)
{
    struct binary_state *st = state;
    free(st->section);
    bin_plan_free(&st->plan);
    buf_free(&st->out);
    free(st);
}

/* A chunk of the result; last ends the request (and frees the state). */
static void send_chunk(struct rpc_req *req, const char *data, size_t len, bool last)
{
    struct binary_state *st = req->state;
    body_stream_send(req, data, len, last, st->size_only ? st->to : st->to - st->from,
                     st->binary);
}

/* Sends the part of out inside the window. Returns true when the request
 * has ended. */
static bool emit(struct rpc_req *req, bool at_end)
{
    struct binary_state *st = req->state;
    uint64_t len = buf_len(&st->out);
    uint64_t lo = st->out_pos > st->from ? st->out_pos : st->from;
    uint64_t hi = st->out_pos + len < st->to ? st->out_pos + len : st->to;
    const char *slice = hi > lo ? buf_head(&st->out) + (lo - st->out_pos) : "";
    size_t n = hi > lo ? (size_t)(hi - lo) : 0;
    st->out_pos += len;
    bool last = at_end || st->out_pos >= st->to;
    if (n || last) {
        /* A last chunk frees the state; the data must outlive the reply. */
        struct buf keep = st->out;
        memset(&st->out, 0, sizeof st->out);
        send_chunk(req, slice, n, last);
        if (last) {
            buf_free(&keep);
            return true;
        }
        st->out = keep;
    }
    buf_reset(&st->out);
    return false;
}

/* Every segment is sized: answer BINARY.SIZE, or start sending the window. */
static void start_output(struct rpc_req *req)
{
    struct binary_state *st = req->state;
    uint64_t total = 0;
    bin_plan_size(&st->plan, &total);
    if (st->size_only) {
        st->to = total;
        send_chunk(req, "", 0, true);
        return;
    }
    st->from = st->partial ? (st->p_off < total ? st->p_off : total) : 0;
    st->to = st->partial && total - st->from > st->p_len ? st->from + st->p_len : total;
    if (st->from == st->to) {
        send_chunk(req, "", 0, true);
        return;
    }
    /* Whole segments before the window are skipped; a raw one is entered
     * where the window starts. */
    st->counting = false;
    st->seg = 0;
    st->out_pos = 0;
    while (st->seg < st->plan.n && st->out_pos + st->plan.segs[st->seg].size <= st->from)
        st->out_pos += st->plan.segs[st->seg++].size;
    st->seg_open = false;
    if (st->seg < st->plan.n) {
        const struct bin_seg *s = &st->plan.segs[st->seg];
        st->pos = s->start;
        if (s->kind == BIN_RAW) {
            st->pos += st->from - st->out_pos;
            st->out_pos = st->from;
        }
    }
    pump(req);
}

/* The current segment's raw bytes are all read. Returns true when the
 * request has ended. */
static bool segment_done(struct rpc_req *req)
{
    struct binary_state *st = req->state;
    struct bin_seg *s = &st->plan.segs[st->seg];
    size_t k = bin_transform_end(&st->x, st->counting ? NULL : &st->out);
    if (st->counting) {
        s->size += k;
        s->sized = true;
    }
    st->seg++;
    st->seg_open = false;
    if (st->seg < st->plan.n)
        st->pos = st->plan.segs[st->seg].start;
    return !st->counting && emit(req, st->seg == st->plan.n);
}

static void read_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (body_stream_landed(req))
        return;
    struct binary_state *st = req->state;
    if (r->status != DB_OK) {
        body_stream_fail_db(req, r);
        return;
    }
    size_t len = PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0) ? (size_t)PQgetlength(r->res, 0, 0) : 0;
    if (len < st->asked) {   /* the segments were planned from this very body */
        body_stream_fail(req, PETREL__STATUS__NONEXISTENT, "Message has been expunged");
        return;
    }
    struct bin_seg *s = &st->plan.segs[st->seg];
    size_t k = bin_transform_feed(&st->x, PQgetvalue(r->res, 0, 0), len, st->counting ? NULL : &st->out);
    if (st->counting)
        s->size += k;
    st->pos += len;
    if (st->pos >= s->end) {
        if (segment_done(req))
            return;
    } else if (!st->counting && emit(req, false)) {
        return;
    }
    pump(req);
}

/* Reads on until the window of unacknowledged chunks is full. */
static void pump(struct rpc_req *req)
{
    struct binary_state *st = req->state;
    while (st->counting ? !st->s.querying : body_stream_room(&st->s)) {
        if (st->seg == st->plan.n) {
            if (st->counting)
                start_output(req);
            else
                emit(req, true);   /* only reached with nothing planned */
            return;
        }
        struct bin_seg *s = &st->plan.segs[st->seg];
        if (st->counting && s->sized) {
            st->seg++;
            if (st->seg < st->plan.n)
                st->pos = st->plan.segs[st->seg].start;
            continue;
        }
        if (!st->seg_open) {
            bin_transform_begin(&st->x, s);
            st->seg_open = true;
        }
        if (st->pos >= s->end) {
            if (segment_done(req))
                return;
            continue;
        }
        uint64_t len = s->end - st->pos;
        if (len > (uint64_t)backend->cfg->stream_chunk)
            len = (uint64_t)backend->cfg->stream_chunk;
        if (!st->counting && s->kind == BIN_RAW && len > st->to - st->out_pos)
            len = st->to - st->out_pos;   /* the window ends inside it */
        st->s.querying = true;
        st->asked = len;
        body_read(req->account_id, st->mailbox_id, st->uid, st->pos, len, read_done, req);
        return;
    }
}

/* ---- finding the part ---- */

/* Plans the section; false when the request has been answered. */
static bool plan_section(struct rpc_req *req, const struct mime_tree *tree)
{
    struct binary_state *st = req->state;
    unsigned idx = 0;
    bool include_hdr = !*st->section;
    if (!include_hdr) {
        struct mime_range rg;
        /* No such part, or the placeholder part of a multipart without
         * parts: an empty result, as Dovecot. */
        if (mime_find_section(tree, st->section, &rg) < 0 || rg.start == rg.end)
            return true;
        idx = (unsigned)rg.part;
    }
    if (bin_plan_build(tree, idx, include_hdr, &st->plan) < 0) {
        body_stream_fail(req, PETREL__STATUS__UNKNOWN_CTE, "Unknown Content-Transfer-Encoding.");
        return false;
    }
    /* RFC 3516 4.3: a string when the data is not decoded and has no NUL;
     * Dovecot sends every decoded result as literal8 (index-mail-binary.c). */
    st->binary = st->plan.converted || st->plan.has_nuls;
    return true;
}

static void tree_loaded(struct rpc_req *req, enum mime_load result, const struct db_result *failed,
                        const struct mime_tree *tree, void *ctx)
{
    if (body_stream_landed(req))
        return;
    struct binary_state *st = req->state;
    if (body_stream_load_failed(req, result, failed))
        return;
    if (!plan_section(req, tree))
        return;
    uint64_t size;
    if (bin_plan_size(&st->plan, &size)) {
        start_output(req);
        return;
    }
    st->counting = true;
    st->seg = 0;
    st->pos = st->plan.n ? st->plan.segs[0].start : 0;
    pump(req);
}

void op_binary(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__BodyReq *b = msg->body;
    const char *section = b->section ? b->section : "";
    if (!bin_section_valid(section)) {
        rpc_fail(req, PETREL__STATUS__BAD, "BINARY takes part numbers only");
        return;
    }
    struct binary_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->mailbox_id = b->mailbox_id;
    st->uid = b->uid;
    st->section = strdup(section);
    st->size_only = b->size_only;
    st->partial = b->partial && !b->size_only;
    st->p_off = b->offset;
    st->p_len = b->length;
    body_stream_start(req, &st->s, st, pump, state_free);
    st->s.querying = true;
    mime_tree_load(req, st->mailbox_id, st->uid, tree_loaded, NULL);
}
