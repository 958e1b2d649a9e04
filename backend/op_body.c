/* Streams a byte range of a message body as Chunk responses, with the flow
 * control of body_stream.h.
 *
 * With a section ("1.2", "2.MIME", "HEADER.FIELDS", ...) the range comes from
 * the stored part tree; the first chunk then says how many bytes follow in
 * all, and HEADER.FIELDS[.NOT] sends the filtered header as one chunk. */
#include "backend.h"

#include "body_read.h"
#include "body_stream.h"
#include "header_filter.h"
#include "mime_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A part header larger than this is cut for HEADER.FIELDS: a message with a
 * megabyte of header lines is an attack, not mail. */
#define MAX_FILTERED_HEADER (1024 * 1024)

struct body_state {
    struct body_stream s;   /* first: req->state points here */
    long long mailbox_id;
    uint32_t uid;
    uint64_t offset;      /* next byte to read */
    uint64_t end;         /* one past the last byte wanted */
    uint64_t asked;       /* length of the read in flight */
    bool send_total;      /* the first chunk carries the total length */
    /* section requests */
    char *section;
    char **fields;
    size_t nfields;
    bool fields_not;
    bool partial;
    uint64_t p_off, p_len;
    bool collect;         /* gathering a header to filter, not streaming */
    struct buf header;
};

static void read_next(struct rpc_req *req);
void op_binary(struct rpc_req *req, const Petrel__Request *msg);

static void state_free(void *state)
{
    struct body_state *st = state;
    free(st->section);
    for (size_t i = 0; i < st->nfields; i++)
        free(st->fields[i]);
    free(st->fields);
    buf_free(&st->header);
    free(st);
}

/* One chunk holding everything, with its length up front. */
static void send_whole(struct rpc_req *req, const char *data, size_t len)
{
    body_stream_send(req, data, len, true, len, false);
}

static void filter_and_send(struct rpc_req *req)
{
    struct body_state *st = req->state;
    struct buf out = {0};
    header_filter(buf_head(&st->header), buf_len(&st->header), st->fields, st->nfields,
                  st->fields_not, &out);
    size_t off = 0, len = buf_len(&out);
    if (st->partial) {
        off = st->p_off < len ? (size_t)st->p_off : len;
        len = len - off < st->p_len ? len - off : (size_t)st->p_len;
    }
    send_whole(req, buf_head(&out) ? buf_head(&out) + off : "", len);
    buf_free(&out);
}

static void read_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    if (body_stream_landed(req))
        return;
    struct body_state *st = req->state;
    if (r->status != DB_OK) {
        body_stream_fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
        body_stream_fail(req, PETREL__STATUS__NONEXISTENT, "Message has been expunged");
        return;
    }
    size_t len = (size_t)PQgetlength(r->res, 0, 0);
    st->offset += len;
    /* A short read means the message ended before `end`. */
    bool last = st->offset >= st->end || len < st->asked;
    if (st->collect) {
        buf_append(&st->header, PQgetvalue(r->res, 0, 0), len);
        if (last)
            filter_and_send(req);
        else
            read_next(req);
        return;
    }
    /* offset has moved past these bytes */
    uint64_t total = st->send_total ? st->end - st->offset + len : 0;
    body_stream_send(req, PQgetvalue(r->res, 0, 0), len, last, total, false);
    if (!last)
        read_next(req);
}

static void read_next(struct rpc_req *req)
{
    struct body_state *st = req->state;
    if (!body_stream_room(&st->s))
        return;
    uint64_t len = st->end - st->offset;
    if (len > (uint64_t)backend->cfg->stream_chunk)
        len = (uint64_t)backend->cfg->stream_chunk;
    st->s.querying = true;
    st->asked = len;
    body_read(req->account_id, st->mailbox_id, st->uid, st->offset, len, read_done, req);
}

/* ---- sections ---- */

static bool is_fields_section(const char *s)
{
    const char *h = strcasestr(s, "HEADER.FIELDS");
    return h != NULL;
}

static void start_section(struct rpc_req *req, const struct mime_range *rg)
{
    struct body_state *st = req->state;
    uint64_t start = rg->start, end = rg->end;
    if (rg->kind == MIME_SECTION_HEADER && is_fields_section(st->section)) {
        if (start == end) {   /* after a part that is not a message: "" as Dovecot */
            send_whole(req, "", 0);
            return;
        }
        st->collect = true;
        st->offset = start;
        st->end = end - start > MAX_FILTERED_HEADER ? start + MAX_FILTERED_HEADER : end;
        read_next(req);
        return;
    }
    if (st->partial) {
        uint64_t len = end - start;
        uint64_t off = st->p_off < len ? st->p_off : len;
        start += off;
        end = len - off < st->p_len ? end : start + st->p_len;
    }
    st->offset = start;
    st->end = end;
    st->send_total = true;
    if (start == end)
        send_whole(req, "", 0);
    else
        read_next(req);
}

static void tree_loaded(struct rpc_req *req, enum mime_load result, const struct db_result *failed,
                        const struct mime_tree *tree, void *ctx)
{
    if (body_stream_landed(req))
        return;
    struct body_state *st = req->state;
    struct mime_range rg;
    if (body_stream_load_failed(req, result, failed))
        return;
    if (mime_find_section(tree, st->section, &rg) == 0)
        start_section(req, &rg);
    else
        body_stream_nil(req);   /* no such part: NIL, as Dovecot */
}

static void tree_query(struct rpc_req *req)
{
    struct body_state *st = req->state;
    st->s.querying = true;
    mime_tree_load(req, st->mailbox_id, st->uid, tree_loaded, NULL);
}

void op_body(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__BodyReq *b = msg->body;
    if (b->binary) {   /* IMAP BINARY: decoded, in op_binary.c */
        op_binary(req, msg);
        return;
    }
    struct body_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    body_stream_start(req, &st->s, st, read_next, state_free);
    st->mailbox_id = b->mailbox_id;
    st->uid = b->uid;
    if (b->section && *b->section) {
        st->section = strdup(b->section);
        st->fields = calloc(b->n_fields + 1, sizeof *st->fields);
        for (size_t i = 0; i < b->n_fields; i++)
            st->fields[i] = strdup(b->fields[i]);
        st->nfields = b->n_fields;
        st->fields_not = strcasestr(b->section, "HEADER.FIELDS.NOT") != NULL;
        st->partial = b->partial;
        st->p_off = b->offset;
        st->p_len = b->length;
        tree_query(req);
        return;
    }
    st->offset = b->offset;
    st->end = b->length > UINT64_MAX - b->offset ? UINT64_MAX : b->offset + b->length;
    read_next(req);
}
