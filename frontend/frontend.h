/* A frontend worker: settings, listeners, the RPC client to the backends and
 * the session core shared by IMAP, POP3 and LMTP. */
#ifndef PETREL_FRONTEND_H
#define PETREL_FRONTEND_H

#include "conn.h"
#include "petrel.pb-c.h"

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

struct frontend_settings {
    long workers;
    char *imap_listen;
    char *pop3_listen;
    char *backends;            /* comma-separated host:port list */
    char *redis_url;
    char *node;
    char *log_level;
    long imap_max_line_preauth;   /* bytes per command line before login */
    long imap_max_line;           /* bytes per command line after login */
    long imap_max_literal;        /* bytes of a literal kept in memory (not APPEND) */
    long imap_max_literals;       /* literals per command */
    long imap_max_nonsync_preauth; /* largest {n+} before login (LITERAL-) */
    long imap_max_depth;          /* parenthesis nesting */
    long imap_max_args;           /* argument nodes per command */
    long append_limit;            /* largest message APPEND accepts (APPENDLIMIT) */
    long imap_autologout_preauth; /* seconds idle before login */
    long imap_autologout;         /* seconds idle after login */
    long pop3_max_line;           /* bytes per POP3 command line */
    long pop3_idle_timeout;       /* seconds */
    long rpc_max_frame;           /* largest RPC frame accepted */
    long rpc_chunk;               /* bytes per streamed APPEND chunk */
    long max_connections;         /* client connections per worker */
    long shutdown_grace;
};

struct frontend {
    struct ev_loop *loop;
    struct frontend_settings *cfg;
    int worker;
    unsigned long long session_counter;
    long connections;
};
extern struct frontend *frontend;

/* ---- RPC client (rpc_client.c) ---- */

/* Called for every response to a call; resp->more says whether more follow.
 * After the last one (or a failure) the call is over and its handle invalid.
 * A failure that never reached a backend arrives as a synthetic TEMPFAIL. */
typedef void rpc_cb(const Petrel__Response *resp, void *ctx);
struct rpc_call;

enum {
    RPC_RETRYABLE = 1 << 0,   /* read-only: may be re-sent to another backend */
};

int rpc_client_start(const char *backends);
bool rpc_client_ready(void);
/* Sends req (its id is set here); returns a handle for follow-ups. The call is
 * kept on *owner (a session's list) until it ends, so an owner that goes away
 * can cancel everything it started with rpc_cancel_all(). */
struct rpc_call *rpc_call(Petrel__Request *req, unsigned flags, rpc_cb *cb, void *ctx,
                          struct rpc_call **owner);
void rpc_cancel_all(struct rpc_call **owner);
/* Sends a follow-up frame (Chunk, StreamAck) for an ongoing call. */
void rpc_follow(struct rpc_call *call, Petrel__Request *req);
/* Abandons a call: the backend is told, and cb is not called again. */
void rpc_cancel(struct rpc_call *call);

/* ---- sessions (session.c) ---- */

struct session;

struct protocol {
    const char *name;
    /* Allocates a session for an accepted socket; NULL to refuse it. */
    struct session *(*create)(void);
    void (*start)(struct session *s);           /* greeting */
    void (*on_read)(struct session *s);         /* bytes in s->conn.in */
    void (*on_drain)(struct session *s);        /* output drained */
    void (*on_timeout)(struct session *s);      /* idle too long */
    void (*destroy)(struct session *s);         /* free protocol state */
};

struct session {
    struct conn conn;
    const struct protocol *proto;
    char id[32];                  /* node-worker-counter, carried over RPC */
    char client_ip[64];
    int64_t account_id;           /* 0 until authenticated */
    char *user;                   /* canonical address once authenticated */
    ev_timer idle;
    double idle_timeout;          /* seconds; the protocol sets it */
    struct rpc_call *calls;       /* in flight for this session */
    bool closing;
};

/* Fills the common part of a request for this session. */
void session_request(struct session *s, Petrel__Request *req);
void session_touch(struct session *s);
void session_set_idle_timeout(struct session *s, double seconds);
/* Ends the session after queued output is written. */
void session_end(struct session *s, const char *reason);
int listener_start(const char *spec, const struct protocol *proto);

extern const struct protocol imap_protocol;
extern const struct protocol pop3_protocol;

#endif
