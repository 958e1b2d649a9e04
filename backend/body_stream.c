#include "body_stream.h"

static struct body_stream *stream_of(struct rpc_req *req) { return req->state; }

static void free_state(struct rpc_req *req)
{
    struct body_stream *s = stream_of(req);
    req->state = NULL;
    s->free_state(s);
}

static void on_ack(struct rpc_req *req, const Petrel__Request *msg)
{
    struct body_stream *s = stream_of(req);
    if (s->unacked > 0)
        s->unacked--;
    s->pump(req);
}

static void on_cancel(struct rpc_req *req)
{
    if (stream_of(req)->querying)
        return;   /* the callback in flight sees req->cancelled and finishes */
    free_state(req);
    rpc_done(req);
}

void body_stream_start(struct rpc_req *req, struct body_stream *s, void *st,
                       void (*pump)(struct rpc_req *req), void (*free_fn)(void *state))
{
    s->first = true;
    s->pump = pump;
    s->free_state = free_fn;
    req->state = st;
    req->on_more = on_ack;
    req->on_cancel = on_cancel;
}

bool body_stream_room(const struct body_stream *s)
{
    return !s->querying && s->unacked < BODY_STREAM_WINDOW;
}

void body_stream_send(struct rpc_req *req, const char *data, size_t len, bool last,
                      uint64_t total, bool binary)
{
    struct body_stream *s = stream_of(req);
    Petrel__Chunk ch = PETREL__CHUNK__INIT;
    ch.data.data = (uint8_t *)data;
    ch.data.len = len;
    if (s->first) {
        ch.total = total;
        ch.binary = binary;
    }
    s->first = false;
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_CHUNK;
    resp.chunk = &ch;
    resp.more = !last;
    if (last) {
        free_state(req);
        rpc_reply(req, &resp);   /* frees req */
        return;
    }
    s->unacked++;
    rpc_reply(req, &resp);
}

void body_stream_nil(struct rpc_req *req)
{
    Petrel__Chunk ch = PETREL__CHUNK__INIT;
    ch.nil = true;
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.result_case = PETREL__RESPONSE__RESULT_CHUNK;
    resp.chunk = &ch;
    free_state(req);
    rpc_reply(req, &resp);
}

bool body_stream_landed(struct rpc_req *req)
{
    stream_of(req)->querying = false;
    if (!req->cancelled)
        return false;
    free_state(req);
    rpc_done(req);
    return true;
}

void body_stream_fail(struct rpc_req *req, Petrel__Status status, const char *text)
{
    free_state(req);
    rpc_fail(req, status, text);
}

void body_stream_fail_db(struct rpc_req *req, const struct db_result *r)
{
    free_state(req);
    rpc_fail_db(req, r);
}

bool body_stream_load_failed(struct rpc_req *req, enum mime_load result, const struct db_result *failed)
{
    switch (result) {
    case MIME_DB_FAILED:
        body_stream_fail_db(req, failed);
        return true;
    case MIME_PARSE_FAILED:
        body_stream_fail(req, PETREL__STATUS__TEMPFAIL, "Cannot parse the message now");
        return true;
    case MIME_GONE:
        body_stream_fail(req, PETREL__STATUS__NONEXISTENT, "Message has been expunged");
        return true;
    case MIME_UNREADABLE:
        body_stream_fail(req, PETREL__STATUS__TEMPFAIL, "Stored message structure is unreadable");
        return true;
    case MIME_LOADED:
        break;
    }
    return false;
}
