/* A frontend worker: settings, listeners, the RPC client to the backends and
 * the session core shared by IMAP, POP3 and LMTP. */
#ifndef PETREL_FRONTEND_H
#define PETREL_FRONTEND_H

#include "config.h"
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
    long backend_links;        /* RPC links per backend address and worker */
    long backend_wait;         /* seconds a call waits for a link when none is up */
    long backends_refresh;     /* seconds between lookups of named backends */
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
    long imap_max_fetch_items;    /* items in one FETCH, macros expanded */
    long imap_max_search_keys;    /* keys in one SEARCH */
    long imap_max_search_string;  /* bytes of one SEARCH string */
    long imap_max_search_depth;   /* NOT/OR/parenthesis nesting in one SEARCH */
    long imap_max_set_ranges;     /* ranges in the sets of one command */
    long imap_max_bad_commands;   /* BAD answers in a row before BYE */
    long append_limit;            /* largest message APPEND accepts (APPENDLIMIT) */
    long imap_fetch_inline;       /* FETCH BODY[]: bodies up to this size come with the metadata */
    long imap_autologout_preauth; /* seconds idle before login */
    long imap_autologout;         /* seconds idle after login */
    long pop3_max_line;           /* bytes per POP3 command line */
    long pop3_idle_timeout;       /* seconds */
    long pop3_max_bad_commands;   /* client errors per session before the end */
    long pop3_max_auth_failures;  /* failed logins per session */
    long rpc_max_frame;           /* largest RPC frame accepted */
    long rpc_chunk;               /* bytes per streamed APPEND chunk */
    long max_connections;         /* client connections per worker */
    long shutdown_grace;
    long drain_window;            /* seconds over which idle sessions get BYE on SIGTERM */
    char *http_listen;            /* /metrics /healthz /readyz; empty: off */
    char *log_format;             /* logfmt or json */
    long session_ttl;             /* seconds a registry entry lives unrefreshed */
    long pop3_lock_ttl;           /* seconds the POP3 maildrop lock lives unrenewed */
    long imap_idle_keepalive;     /* seconds between "* OK Still here" in IDLE */
    long imap_idle_poll;          /* seconds between IDLE polls without push */
    char *imaps_listen;           /* implicit-TLS IMAP listener */
    char *pop3s_listen;           /* implicit-TLS POP3 listener */
    char *tls_cert;               /* PEM chain file; empty: no TLS, no STARTTLS */
    char *tls_key;                /* PEM key file */
    char *tls_certs;              /* extra CERT:KEY pairs chosen by SNI */
    char *tls_ciphers;            /* TLS 1.2 cipher list */
    char *tls_ciphersuites;       /* TLS 1.3 cipher suites */
    char *lmtp_listen;
    long lmtp_max_message_size;   /* bytes (SIZE) */
    long lmtp_max_recipients;     /* accepted RCPTs per transaction */
    long lmtp_max_line;           /* bytes per command or DATA line */
    long lmtp_max_bad_commands;   /* client errors per session before 421 */
    long lmtp_idle_timeout;       /* seconds */
    long lmtp_save_to_detail_mailbox;  /* 1: user+folder@ delivers to folder */
    /* Hostile clients (auth_policy.h, conn_limits.h, proxy_gate.h). */
    char *plaintext_auth;         /* loopback|always|never[,LISTENER=...] */
    char *secure_networks;        /* CIDRs where cleartext counts as secure */
    char *throttle_exempt;        /* CIDRs without per-address throttling/limits */
    long auth_failure_delay_ms;   /* first delay; doubles per failure */
    long auth_failure_delay_max_ms;
    long auth_failure_window;     /* seconds a failure counter lives after its last failure */
    long auth_lockout_account;    /* failures locking an account (0: off) */
    long auth_lockout_ip;         /* failures locking an address (0: off) */
    long max_connections_per_ip;  /* cluster-wide, IMAP and POP3 (0: off) */
    long max_connections_per_account;  /* IMAP, per account and address (0: off) */
    char *proxy_protocol;         /* listener names that read a PROXY header */
    char *proxy_trusted;          /* CIDRs allowed to send one */
    long proxy_timeout;           /* seconds to wait for the header */
};

struct frontend {
    struct ev_loop *loop;
    struct frontend_settings *cfg;
    int worker;
    unsigned long long session_counter;
    long connections;
    bool draining;                /* SIGTERM: no new sessions, goodbyes spread out */
    struct tls_ctx *tls;          /* for new TLS connections (SIGHUP swaps it); NULL: off */
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
    /* Frees protocol state. Every RPC call of the session has been
     * cancelled (and its handle freed) before this runs. */
    void (*destroy)(struct session *s);
    /* The worker is draining: say goodbye (IMAP BYE) and session_end() now
     * if no command runs, else set s->bye_pending and do it when the running
     * command has answered. NULL: the session just ends. */
    void (*shutdown)(struct session *s);
};

struct session {
    struct conn conn;
    const struct protocol *proto;
    char id[CONFIG_NODE_MAX + 40]; /* node-worker-pid-counter, carried over RPC */
    char client_ip[64];
    int64_t account_id;           /* 0 until authenticated */
    char *user;                   /* canonical address once authenticated */
    ev_timer idle;
    double idle_timeout;          /* seconds; the protocol sets it */
    struct rpc_call *calls;       /* in flight for this session */
    struct cs_entry *cluster;     /* cluster state (cluster_state.c) */
    bool closing;
    bool bye_pending;             /* draining: goodbye after the running command */
    bool drain_scheduled;         /* draining: the idle timer now means "say goodbye" */
    int m_proto, m_state;         /* metric labels (frontend_metrics.h) */
    unsigned long long m_in, m_out;   /* bytes already counted */
    struct session *next, **prev; /* every session of the worker */
    bool tls;                     /* implicit TLS, or STARTTLS/STLS accepted */
    bool secured;                 /* a PROXY v2 header says the client used TLS */
    const char *listener;         /* imap, imaps, pop3, pop3s or lmtp */
    struct auth_wait *auth_wait;  /* auth_policy.c */
    struct conn_slots *slots;     /* conn_limits.c */
};

/* Fills the common part of a request for this session. */
void session_request(struct session *s, Petrel__Request *req);
void session_touch(struct session *s);
void session_set_idle_timeout(struct session *s, double seconds);
/* Ends the session after queued output is written. */
void session_end(struct session *s, const char *reason);
/* The session's protocol state for the connections gauge (MS_* in
 * frontend_metrics.h). */
void session_set_state(struct session *s, int state);
/* A password check's outcome for the auth counter (MA_*). */
void session_auth_result(struct session *s, int result);
/* Draining (SIGTERM): every session is asked to shut down (protocol
 * shutdown hook) at a random moment within window seconds. */
void sessions_drain(double window);
/* Closes every session at once (end of the grace period). */
void sessions_close_all(const char *reason);
int listener_start(const char *spec, const struct protocol *proto);
/* The same for implicit TLS: the handshake comes first, then the greeting
 * (start() queues it; it goes out once the handshake is done). */
int listener_start_tls(const char *spec, const struct protocol *proto);

extern const struct protocol imap_protocol;
extern const struct protocol pop3_protocol;
extern const struct protocol lmtp_protocol;

#endif
