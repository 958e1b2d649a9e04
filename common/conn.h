/* A non-blocking byte-stream connection on a libev loop, used for client
 * sessions and RPC links alike.
 *
 * Reads land in `in` (the owner consumes what it parsed); writes are appended
 * to `out` and flushed when the socket is writable. Reading stops while `in`
 * holds read_limit bytes or the owner paused it, so a slow consumer pushes back
 * on its producer instead of buffering without bound (`in` never grows past
 * read_limit by a read). conn_close() never frees:
 * it stops the watchers, closes the socket and calls on_close from the loop
 * afterwards, outside any callback that may still hold the connection.
 *
 * The bytes travel through a transport (struct conn_type): the plain socket,
 * or TLS once conn_start_tls() was called (tls.h). */
#ifndef PETREL_CONN_H
#define PETREL_CONN_H

#include "buf.h"

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

struct conn;
struct ssl_st;
struct tls_ctx;

/* Results of a transport operation other than a byte count. */
enum {
    CONN_IO_ERROR = -1,        /* c->error says why */
    CONN_IO_WANT_READ = -2,    /* retry once the socket is readable */
    CONN_IO_WANT_WRITE = -3,   /* retry once the socket is writable */
};

/* A transport (Redis's connection type): plain socket or TLS (tls.c). Any
 * operation may need either readiness: a TLS read can need the socket
 * writable and a write readable. */
struct conn_type {
    const char *name;
    /* Returns bytes read (> 0), 0 at end of stream, or CONN_IO_*. */
    ssize_t (*read)(struct conn *c, void *p, size_t n);
    /* Returns bytes written (> 0) or CONN_IO_*. */
    ssize_t (*write)(struct conn *c, const void *p, size_t n);
    /* One step of a handshake: 0 when done, else CONN_IO_* (NULL: none). */
    int (*handshake)(struct conn *c);
    /* Bytes already decrypted inside the transport: the socket will not
     * signal them again, so conn reads them without waiting (NULL: none). */
    size_t (*pending)(const struct conn *c);
    /* Before the socket is closed: goodbye (close_notify), free state. */
    void (*close)(struct conn *c);
};
extern const struct conn_type conn_type_socket;

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
    ev_prepare flush_w;            /* sends what was queued before the loop next polls */
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
    const struct conn_type *type;  /* transport; conn_type_socket unless TLS */
    struct ssl_st *ssl;            /* TLS: OpenSSL's state (owned), else NULL */
    struct tls_ctx *tls;           /* TLS: context referenced while ssl lives */
    struct tls_ctx *tls_next;      /* conn_start_tls() waits for plain_out to go */
    size_t plain_out;              /* bytes of out still to send in cleartext */
    bool handshaking;              /* a TLS handshake is in progress */
    bool hs_want_write;            /* ... waiting for the socket to be writable */
    bool read_wants_write;         /* the last read needs the socket writable */
    bool write_wants_read;         /* the last write needs the socket readable */
    const char *error;             /* why the last transport operation failed */
    char error_buf[160];           /* storage when error is formatted */
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

/* Makes c a server-side TLS connection with context t (a reference is
 * taken). What c->out holds now is sent in cleartext first (STARTTLS's
 * "OK Begin TLS"); the handshake starts once that is written, and anything
 * written after this call goes inside TLS, after the handshake. Input received
 * in cleartext and not yet consumed is discarded and nothing more is read in
 * cleartext, so no command pipelined before the handshake can run inside TLS
 * (CVE-2011-0411); the owner must reset its parser as well. A failed
 * handshake closes c. Returns 0, or -1 if c is TLS already. */
int conn_start_tls(struct conn *c, struct tls_ctx *t);
/* True once conn_start_tls() was called (handshake done or not). */
bool conn_is_tls(const struct conn *c);

#endif
