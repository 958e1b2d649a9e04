/* A non-blocking byte-stream connection on a libev loop, used for client
 * sessions and RPC links alike.
 *
 * Reads land in `in` (the owner consumes what it parsed); writes are appended
 * to `out` and flushed when the socket is writable. Reading stops while `in`
 * holds read_limit bytes or the owner paused it, so a slow consumer pushes back
 * on its producer instead of buffering without bound. conn_close() never frees:
 * it stops the watchers, closes the socket and calls on_close from the loop
 * afterwards, outside any callback that may still hold the connection. */
#ifndef PETREL_CONN_H
#define PETREL_CONN_H

#include "buf.h"

#include <ev.h>
#include <stdbool.h>

struct conn;

struct conn_handler {
    /* New bytes are in c->in. */
    void (*on_read)(struct conn *c);
    /* c->out fell below the low watermark (may be NULL). */
    void (*on_drain)(struct conn *c);
    /* The connection is closed; the owner may free it now. */
    void (*on_close)(struct conn *c, const char *reason);
    /* An outgoing connect completed (may be NULL). */
    void (*on_connect)(struct conn *c);
};

struct conn {
    struct ev_loop *loop;
    int fd;
    ev_io rio, wio;
    ev_timer close_timer;          /* runs on_close outside callbacks */
    struct buf in, out;
    const struct conn_handler *h;
    void *ctx;                     /* owner's data */
    size_t read_limit;             /* stop reading while in holds this much */
    size_t low_water;              /* on_drain when out falls below this */
    bool paused;                   /* owner asked to stop reading */
    bool connecting;               /* waiting for a non-blocking connect */
    bool close_after_flush;        /* close once out is empty */
    bool closed;
    bool peer_eof;                 /* the peer half-closed its side */
    const char *close_reason;
    unsigned long long bytes_in, bytes_out;
};

void conn_init(struct conn *c, struct ev_loop *loop, int fd, const struct conn_handler *h,
               void *ctx);
/* For an fd from net_connect(): on_connect is called once connected. */
void conn_init_connecting(struct conn *c, struct ev_loop *loop, int fd,
                          const struct conn_handler *h, void *ctx);
void conn_write(struct conn *c, const void *p, size_t n);
void conn_puts(struct conn *c, const char *s);
void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After appending to c->out directly (e.g. a frame encoded in place). */
void conn_wake_writer(struct conn *c);
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
/* Closes once everything queued has been written (or the peer is gone). */
void conn_close_after_flush(struct conn *c, const char *reason);
void conn_close(struct conn *c, const char *reason);
/* Buffers released; call from on_close or after it. */
void conn_release(struct conn *c);

#endif
