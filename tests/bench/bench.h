/* petrel-bench: a load generator for IMAP, POP3 and LMTP servers.
 *
 * One libev loop, no threads. Every connection is a `struct client` with a
 * non-blocking socket, an input and an output buffer, a per-operation
 * timeout and a resumable response reader for its protocol. A workload is a
 * state machine that the client's reader drives one complete response at a
 * time (bench_work.c); statistics and /proc memory readings are in
 * bench_stats.c, synthetic messages in bench_msg.c. */
#ifndef PETREL_BENCH_H
#define PETREL_BENCH_H

#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---------------------------------------------------------------- buffers */

struct bbuf {
    char *p;     /* owned; NUL-terminated past len when text */
    size_t off;  /* bytes already consumed from the front */
    size_t len;  /* bytes stored, off included */
    size_t cap;
};

void bbuf_reserve(struct bbuf *b, size_t more);
void bbuf_add(struct bbuf *b, const void *data, size_t n);
void bbuf_addf(struct bbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bbuf_consume(struct bbuf *b, size_t n);
void bbuf_reset(struct bbuf *b);
void bbuf_free(struct bbuf *b);
static inline size_t bbuf_avail(const struct bbuf *b) { return b->len - b->off; }
static inline char *bbuf_data(const struct bbuf *b) { return b->p + b->off; }

/* ------------------------------------------------------------- settings */

enum proto { PROTO_IMAP, PROTO_POP3, PROTO_LMTP };

struct config {
    const char *host;
    int imap_port, pop3_port, lmtp_port;  /* 0: not given */
    const char *user_pattern;             /* one %d, numbered from 1 */
    int users;
    const char *password;
    int clients;
    double duration;                      /* seconds, the measuring window */
    long count;                           /* iterations; 0: until duration */
    double timeout;                       /* seconds per operation */
    const char *workload;
    const char *pids;                     /* imap-idle-memory: supervisor PIDs */
    int messages;                         /* fill: messages per INBOX */
    int msg_min, msg_max;                 /* message size bounds, bytes */
    int headers;                          /* imap-sync: newest N headers */
    int bodies;                           /* imap-sync: bodies fetched */
    double idle_ms;                       /* imap-sync: time spent in IDLE */
    double settle;                        /* imap-idle-memory: wait before reading */
    bool use_idle;                        /* imap-idle-memory: IDLE if offered */
    int ramp;                             /* idle workloads: logins in flight */
    bool allow_remote;
    bool quiet;
    unsigned long seed;
    const char *label;                    /* printed as server=LABEL */
    const char *name;                     /* printed as workload=NAME */
    const char *search_from;              /* imap-big-mailbox: SEARCH FROM this */
    int warmup;                           /* imap-big-mailbox: uncounted iterations */
    int idle_port;                        /* idlers' IMAP port (0: --imap-port) */
    int fanout_accounts;                  /* imap-idle-fanout: idlers spread over */
    double setup;                         /* imap-idle-fanout: seconds to log idlers in */
    int source_addrs;                     /* bind to 127.0.0.2.. (0: no bind) */
    int procs;                            /* imap-idle-memory: processes sharing clients */
    bool tls;                             /* implicit TLS on every connection */
    const char *tls_ca;                   /* verify the server against this CA */
    int id_base;                          /* first client id (--procs children) */
    struct sockaddr_storage addr[3];      /* resolved, by enum proto */
    socklen_t addrlen[3];
    struct sockaddr_storage alt_addr;     /* --idle-port resolved */
    socklen_t alt_addrlen;
};

extern struct config cfg;
extern struct ev_loop *loop;

/* --------------------------------------------------------------- clients */

enum rkind { R_UNTAGGED, R_CONT, R_TAGGED, R_LINE, R_BLOCK };
enum rstatus { ST_OK, ST_NO, ST_BAD, ST_BYE, ST_ERR, ST_OTHER };

/* One complete response as the reader hands it to a workload. `text` is a
 * view into the client's text buffer, valid until the next response: the
 * lines of the response joined, literals left out (their sizes summed in
 * lit_bytes, and in IMAP their place marked by the "{N}" that announced
 * them). */
struct resp {
    enum rkind kind;
    enum rstatus status;   /* tagged IMAP, POP3 +OK/-ERR, LMTP 2xx/4xx/5xx */
    const char *text;      /* after the tag (IMAP) or the whole line */
    size_t len;
    uint64_t lit_bytes;    /* IMAP literals, POP3 multi-line body bytes */
    long lines;            /* POP3 multi-line: lines before the "." */
    int code;              /* LMTP reply code */
    unsigned tag;          /* tagged IMAP: the number in "A<n>" */
};

enum cstate { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DONE };

struct client {
    int id;
    int role;               /* workload-defined (idler, appender, ...) */
    enum proto proto;
    enum cstate state;
    int fd;
    void *ssl;              /* OpenSSL's SSL with --tls, else NULL */
    bool alt;               /* connects to cfg.alt_addr when that is set */
    unsigned gen;           /* changes with every connect and close */
    ev_io rio, wio;
    ev_timer tmo;           /* per-operation timeout */
    ev_timer delay;         /* reconnects and pauses */
    struct bbuf in, out;
    /* response reader */
    int rd_state;           /* 0: in a line, 1: in a literal */
    uint64_t lit_left;
    struct bbuf text;
    uint64_t lit_bytes;
    bool multiline;         /* POP3: the next +OK starts a block */
    long block_lines;
    bool block_started;
    /* the operation in flight */
    int op;                 /* stats index; -1: none */
    double op_t0;
    unsigned tag, next_tag;
    double iter_t0;
    bool in_iter;
    int fails;              /* consecutive failures, for backoff */
    /* workload state */
    int step;
    int user;               /* 1-based account number */
    uint64_t rng;
    bool cap_idle, cap_literal_plus, cap_known;
    uint32_t exists;
    uint32_t *uids;
    size_t nuids, cap_uids;
    long left;              /* items still to do in this iteration */
    long cur;
    uint64_t bytes;
    bool got;               /* idle-fanout: saw this event's EXISTS */
    double got_t;           /* idle-fanout: when (0: not in this event) */
    bool ready;
    bool gated;             /* holds one of the --ramp login slots */
    int rcpts;
    struct bbuf msg;        /* message being sent */
};

/* bench_io.c */
double now_s(void);
void client_init(struct client *c, int id, enum proto p);
void client_connect(struct client *c);
void client_close(struct client *c);
void client_send(struct client *c, const void *data, size_t n);
void client_sendf(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void client_arm(struct client *c, double seconds);  /* 0: disarm */
void client_later(struct client *c, double seconds);
/* --tls: the client context, made once; false with a reason on stderr. */
bool tls_init(void);
bool resolve_host(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len,
                  bool allow_remote, char *err, size_t errlen);

/* Called by bench_io for each event; implemented by bench_work.c. */
void work_connected(struct client *c);   /* TCP connected, greeting not read */
void work_response(struct client *c, const struct resp *r);
void work_failed(struct client *c, const char *why, bool timeout);
void work_later(struct client *c);       /* client_later() fired */

/* ------------------------------------------------------------ statistics */

int stat_op(const char *name);          /* index of an op, created on first use */
void stat_ok(int op, double seconds, uint64_t bytes);
void stat_err(int op);
void stat_timeout(int op);
void stat_window(double start, double end);
void stat_print(const char *workload);
long stat_count(int op);
double stat_rate_of(int op);            /* after stat_print */
double stat_pct_of(int op, double p);
double stat_mbps_of(int op);
double stat_max_of(int op);             /* milliseconds */

/* Memory of the PIDs in a comma-separated list and all their descendants,
 * summed, in KiB: resident (VmRSS), proportional (Pss) and unique (USS:
 * Private_Clean + Private_Dirty). Returns -1 when a PID is missing. */
struct mem { long rss, pss, uss; int procs; };
int mem_read(const char *pids, struct mem *m);

/* ------------------------------------------------------------- messages */

/* Appends to b a complete RFC 5322 message (CRLF lines, no bare CR or LF,
 * no line beginning with '.') of about `size` bytes, the same bytes for the
 * same (seed, to, n, size). */
void msg_make(struct bbuf *b, uint64_t seed, const char *to, long n, int size);
uint64_t rng_next(uint64_t *s);
void user_name(int n, char *out, size_t outlen);

#endif
