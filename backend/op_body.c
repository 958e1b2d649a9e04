/* Streams a byte range of a message body as Chunk responses. At most
 * STREAM_WINDOW chunks are unacknowledged at a time, so a client that reads
 * slowly holds at most that much in its frontend and nothing piles up here. */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>

#define STREAM_WINDOW 2

struct body_state {
    long long mailbox_id;
    uint32_t uid;
    uint64_t offset;      /* next byte to read */
    uint64_t end;         /* one past the last byte wanted */
    int unacked;          /* chunks sent and not yet acknowledged */
    int querying;         /* a read is in flight */
    uint64_t asked;       /* length of the read in flight */
};

static void read_next(struct rpc_req *req);

static void finish_cancelled(struct rpc_req *req)
{
    free(req->state);
    rpc_done(req);
}

static void send_chunk(struct rpc_req *req, const char *data, size_t len, int last)
{
    struct body_state *st = req->state;
    Petrel__Chunk ch = PETREL__CHUNK__INIT;
    ch.data.data = (uint8_t *)data;
    ch.data.len = len;
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_CHUNK;
    resp.chunk = &ch;
    resp.more = !last;
    if (last) {
        free(st);
        rpc_reply(req, &resp);
        return;
    }
    st->unacked++;
    rpc_reply(req, &resp);
}

static void read_done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct body_state *st = req->state;
    st->querying = 0;
    if (req->cancelled) {
        finish_cancelled(req);
        return;
    }
    if (r->status != DB_OK) {
        free(st);
        rpc_fail_db(req, r);
        return;
    }
    if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
        free(st);
        rpc_fail(req, PETREL__STATUS__NONEXISTENT, "Message has been expunged");
        return;
    }
    size_t len = (size_t)PQgetlength(r->res, 0, 0);
    st->offset += len;
    /* A short read means the message ended before `end`. */
    int last = st->offset >= st->end || len < st->asked;
    send_chunk(req, PQgetvalue(r->res, 0, 0), len, last);
    if (!last)
        read_next(req);
}

static void read_next(struct rpc_req *req)
{
    struct body_state *st = req->state;
    if (st->querying || st->unacked >= STREAM_WINDOW)
        return;
    uint64_t len = st->end - st->offset;
    if (len > (uint64_t)backend->cfg->stream_chunk)
        len = (uint64_t)backend->cfg->stream_chunk;
    char acct[24], mbox[24], uid[16], off[24], n[16];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account_id);
    snprintf(mbox, sizeof mbox, "%lld", st->mailbox_id);
    snprintf(uid, sizeof uid, "%u", st->uid);
    snprintf(off, sizeof off, "%llu", (unsigned long long)st->offset);
    snprintf(n, sizeof n, "%llu", (unsigned long long)len);
    struct db_param p[] = { { acct }, { mbox }, { uid }, { off }, { n } };
    st->querying = 1;
    st->asked = len;
    db_query(backend->db, STMT_READ, p, 5, read_done, req);
}

static void on_ack(struct rpc_req *req, const Petrel__Request *msg)
{
    struct body_state *st = req->state;
    if (st->unacked > 0)
        st->unacked--;
    read_next(req);
}

static void on_cancel(struct rpc_req *req)
{
    struct body_state *st = req->state;
    if (!st->querying)
        finish_cancelled(req);
    /* else read_done sees req->cancelled and finishes */
}

void op_body(struct rpc_req *req, const Petrel__Request *msg)
{
    const Petrel__BodyReq *b = msg->body;
    struct body_state *st = calloc(1, sizeof *st);
    st->mailbox_id = b->mailbox_id;
    st->uid = b->uid;
    st->offset = b->offset;
    st->end = b->length > UINT64_MAX - b->offset ? UINT64_MAX : b->offset + b->length;
    req->state = st;
    req->on_more = on_ack;
    req->on_cancel = on_cancel;
    read_next(req);
}
