/* The flow control FETCH BODY (op_body.c) and FETCH BINARY (op_binary.c)
 * share when they stream a result as Chunk responses: at most
 * BODY_STREAM_WINDOW chunks go unacknowledged, so a client that reads
 * slowly holds at most that much in its frontend and nothing piles up here;
 * one database call is in flight at a time; a cancel waits for it.
 *
 * The op's state begins with a struct body_stream, and req->state points to
 * it. The op says how to read on (pump, called when an acknowledgement
 * makes room) and how to free its state; body_stream frees it when the
 * request ends: by the last chunk, a failure, or a cancel. */
#ifndef PETREL_BODY_STREAM_H
#define PETREL_BODY_STREAM_H

#include "backend.h"
#include "mime_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BODY_STREAM_WINDOW 2

struct body_stream {
    int unacked;                         /* chunks sent, not yet acknowledged */
    bool querying;                       /* a database call is in flight */
    bool first;                          /* no chunk sent yet */
    void (*pump)(struct rpc_req *req);   /* reads on while there is room */
    void (*free_state)(void *state);
};

/* Makes st (the op's state, beginning with s) req's state and takes over
 * its acknowledgements and cancel. */
void body_stream_start(struct rpc_req *req, struct body_stream *s, void *st,
                       void (*pump)(struct rpc_req *req), void (*free_fn)(void *state));
/* Whether another chunk may be read now. */
bool body_stream_room(const struct body_stream *s);
/* Sends a chunk; total (and binary) go with the first one only. last ends
 * the request and frees the state: data must not live in it. */
void body_stream_send(struct rpc_req *req, const char *data, size_t len, bool last,
                      uint64_t total, bool binary);
/* Ends the request with the NIL chunk (no such part). */
void body_stream_nil(struct rpc_req *req);
/* For a database callback: clears querying. True when the request was
 * cancelled meanwhile; it is then finished and must not be touched. */
bool body_stream_landed(struct rpc_req *req);
/* End the request with a failure. */
void body_stream_fail(struct rpc_req *req, Petrel__Status status, const char *text);
void body_stream_fail_db(struct rpc_req *req, const struct db_result *r);
/* For a section's tree load: ends the request with the failure and says
 * true, or says false when the tree loaded. */
bool body_stream_load_failed(struct rpc_req *req, enum mime_load result, const struct db_result *failed);

#endif
