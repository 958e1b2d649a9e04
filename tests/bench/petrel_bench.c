/* petrel-bench: command line, the run (its window, its budget, its end)
 * and the workloads, each a state machine over whole responses.
 *
 * Every run stops by itself: no new iteration starts after --duration or
 * once --count iterations have begun; iterations in flight get one more
 * operation timeout to finish, then every connection is closed. Every
 * operation has a timeout (--timeout), so a server that stops answering
 * shows up as timeouts and errors, never as a hang. */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct config cfg;
struct ev_loop *loop;

/* ---------------------------------------------------------------- the run */

struct workload {
    const char *name;
    enum proto proto;
    const char *what;                 /* what one iteration is */
    int default_min, default_max;     /* message sizes, bytes */
    int (*prepare)(void);             /* 0: go; 1: SKIP (R.skip_reason) */
    void (*start)(struct client *c);  /* (re)start a client */
    void (*after_login)(struct client *c);
    void (*response)(struct client *c, const struct resp *r);
    void (*failed)(struct client *c); /* a client's connection was lost */
    void (*summary)(void);
    void (*stop)(void);               /* the deadline has come */
};

static struct {
    const struct workload *w;
    struct client *cl;
    int ncl;
    double t_start, deadline;
    bool stopping;           /* no new iteration starts */
    long iters_started;
    int active;              /* clients not yet done */
    unsigned next_user;
    ev_timer stop_timer;     /* the deadline */
    ev_timer hard_timer;     /* the deadline plus one timeout: close all */
    ev_signal sigint, sigterm;
    bool skipped;
    char skip_reason[160];
    long failures_logged;
    long aborted;
    /* ops shared by the workloads */
    int op_connect, op_login, op_capa, op_iter, op_logout, op_select;
    /* imap-idle-fanout and imap-idle-memory */
    int ready, expect, got;
    int gate;                /* logins in flight, at most cfg.ramp */
    bool event_active;
    double event_t0;
    double ok_t;             /* when the event's APPEND got its tagged OK */
    int idlers;              /* idling when the first event started */
    ev_timer setup_timer;    /* imap-idle-fanout: --setup is spent */
    ev_timer event_timer;
    bool measured;
    int measured_clients;
    struct mem mem0, mem1;
    /* imap-big-mailbox: what the last counted iteration saw */
    uint32_t big_exists;
    int big_unseen;
    long big_from;
} R;

static void finish(struct client *c);

/* The idle workloads open hundreds of sessions; at most --ramp of them
 * log in at a time, so that a slow password hash queues here rather than
 * in the server, where it would turn into LOGIN timeouts. Returns false
 * (and retries c later) when no slot is free. */
static bool gate_enter(struct client *c)
{
    if (c->gated)
        return true;
    if (R.gate >= cfg.ramp) {
        client_later(c, 0.005);
        return false;
    }
    R.gate++;
    c->gated = true;
    return true;
}

static void gate_leave(struct client *c)
{
    if (c->gated) {
        c->gated = false;
        R.gate--;
    }
}

static void stop_starting(void)
{
    R.stopping = true;
}

/* Begins an iteration for c, or returns false when the budget (time or
 * count) is spent. */
static bool may_begin(struct client *c)
{
    if (R.stopping || now_s() >= R.deadline)
        return false;
    if (cfg.count > 0 && R.iters_started >= cfg.count)
        return false;
    R.iters_started++;
    c->in_iter = true;
    c->iter_t0 = now_s();
    c->bytes = 0;
    return true;
}

static void iter_end(struct client *c, uint64_t bytes)
{
    if (!c->in_iter)
        return;
    c->in_iter = false;
    c->fails = 0;
    stat_ok(R.op_iter, now_s() - c->iter_t0, bytes);
}

static void op_begin(struct client *c, int op)
{
    c->op = op;
    c->op_t0 = now_s();
    client_arm(c, cfg.timeout);
}

static void op_end(struct client *c, uint64_t bytes)
{
    if (c->op >= 0)
        stat_ok(c->op, now_s() - c->op_t0, bytes);
    c->op = -1;
    client_arm(c, 0);
}

static void log_failure(struct client *c, const char *why)
{
    if (R.failures_logged++ < 10 && !cfg.quiet)
        fprintf(stderr, "petrel-bench: client %d (user %d): %s\n", c->id, c->user, why);
}

/* A failed operation that the session cannot go on from: counted against
 * the operation and the iteration; the connection is closed and the client
 * starts over after a backoff. */
static void op_fail(struct client *c, const char *why)
{
    client_close(c);
    work_failed(c, why, false);
}

void work_failed(struct client *c, const char *why, bool timeout)
{
    if (c->state == C_DONE)
        return;
    if (c->op >= 0) {
        if (timeout)
            stat_timeout(c->op);
        else
            stat_err(c->op);
    }
    c->op = -1;
    if (c->in_iter) {
        c->in_iter = false;
        if (timeout)
            stat_timeout(R.op_iter);
        else
            stat_err(R.op_iter);
    }
    log_failure(c, why);
    client_close(c);
    gate_leave(c);
    if (R.w->failed)
        R.w->failed(c);
    if (R.stopping || now_s() >= R.deadline) {
        finish(c);
        return;
    }
    /* Backoff 50 ms doubling to 1 s, so a dead server is not spun on. */
    double d = 0.05;
    for (int i = 0; i < c->fails && d < 1.0; i++)
        d *= 2;
    c->fails++;
    client_later(c, d > 1.0 ? 1.0 : d);
}

static void dispatch_later(struct client *c);

void work_later(struct client *c)
{
    if (c->state == C_DONE)
        return;
    if (c->fd < 0 && (R.stopping || now_s() >= R.deadline)) {
        finish(c);
        return;
    }
    dispatch_later(c);
}

/* The client leaves the run for good. */
static void finish(struct client *c)
{
    if (c->state == C_DONE)
        return;
    client_close(c);
    ev_timer_stop(loop, &c->delay);
    c->state = C_DONE;
    if (--R.active == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void on_stop(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l, (void)w, (void)revents;
    stop_starting();
    if (R.w->stop)
        R.w->stop();
    /* Clients waiting to reconnect have nothing in flight. */
    for (int i = 0; i < R.ncl; i++)
        if (R.cl[i].fd < 0 && R.cl[i].state != C_DONE)
            finish(&R.cl[i]);
}

static void on_hard_stop(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l, (void)w, (void)revents;
    for (int i = 0; i < R.ncl; i++) {
        struct client *c = &R.cl[i];
        if (c->state == C_DONE)
            continue;
        if (c->op >= 0 || c->in_iter)
            R.aborted++;
        finish(c);
    }
    ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *l, ev_signal *w, int revents)
{
    (void)w, (void)revents;
    if (R.stopping) {
        on_hard_stop(l, 0, 0);
        return;
    }
    fprintf(stderr, "petrel-bench: interrupted, finishing what is in flight (again to abort)\n");
    R.deadline = now_s();
    on_stop(l, 0, 0);
}

static int next_user(void)
{
    return (int)(R.next_user++ % (unsigned)cfg.users) + 1;
}

static void start_connect(struct client *c)
{
    c->step = 0;
    c->op = R.op_connect;
    c->op_t0 = now_s();
    c->cap_known = c->cap_idle = c->cap_literal_plus = false;
    c->ready = false;
    client_connect(c);
}

void work_connected(struct client *c)
{
    (void)c; /* the greeting ends the connect operation */
}

/* ------------------------------------------------------------------ IMAP */

enum { S_GREET, S_LOGIN, S_CAPA, S_LOGOUT, S_MAIN };

static void imap_cmd(struct client *c, int op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends "A<n> <command>\r\n" and starts timing op. */
static void imap_cmd(struct client *c, int op, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        abort();
    c->tag = c->next_tag++;
    op_begin(c, op);
    client_sendf(c, "A%u %s\r\n", c->tag, line);
}

static bool token_in(const char *s, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++)
        if ((i == 0 || s[i - 1] == ' ' || s[i - 1] == '[') && strncasecmp(s + i, tok, tl) == 0 &&
            (i + tl == n || s[i + tl] == ' ' || s[i + tl] == ']'))
            return true;
    return false;
}

/* Reads a capability list from "CAPABILITY ..." or "OK [CAPABILITY ...]". */
static void parse_caps(struct client *c, const char *s, size_t n)
{
    const char *k = 0;
    for (size_t i = 0; i + 11 <= n && !k; i++)
        if (strncasecmp(s + i, "CAPABILITY ", 11) == 0)
            k = s + i + 11;
    if (!k)
        return;
    size_t rest = n - (size_t)(k - s);
    const char *close = memchr(k, ']', rest);
    if (close)
        rest = (size_t)(close - k);
    c->cap_known = true;
    c->cap_idle = token_in(k, rest, "IDLE");
    c->cap_literal_plus = token_in(k, rest, "LITERAL+");
}

static void imap_login(struct client *c)
{
    char user[256];
    user_name(c->user, user, sizeof user);
    c->step = S_LOGIN;
    imap_cmd(c, R.op_login, "LOGIN \"%s\" \"%s\"", user, cfg.password);
}

static void imap_logout(struct client *c)
{
    c->step = S_LOGOUT;
    imap_cmd(c, R.op_logout, "LOGOUT");
}

/* Handles what every IMAP workload shares: the greeting, LOGIN, the
 * capability list, EXISTS, LOGOUT. Returns true when r was consumed. */
static bool imap_common(struct client *c, const struct resp *r)
{
    if (r->kind == R_UNTAGGED) {
        if (c->step == S_GREET) {
            if (r->status != ST_OK) {
                op_fail(c, "greeting is not OK");
                return true;
            }
            op_end(c, 0);
            parse_caps(c, r->text, r->len);
            imap_login(c);
            return true;
        }
        if (r->len > 11 && strncasecmp(r->text, "CAPABILITY ", 11) == 0) {
            parse_caps(c, r->text, r->len);
            return true;
        }
        char *end;
        unsigned long v = strtoul(r->text, &end, 10);
        if (end != r->text && strncasecmp(end, " EXISTS", 7) == 0)
            c->exists = (uint32_t)v;
        return false;
    }
    if (r->kind != R_TAGGED)
        return false;
    if (r->tag != c->tag) {
        op_fail(c, "tagged response with an unexpected tag");
        return true;
    }
    switch (c->step) {
    case S_LOGIN:
        if (r->status != ST_OK) {
            op_fail(c, "LOGIN refused");
            return true;
        }
        op_end(c, 0);
        c->cap_known = false;
        parse_caps(c, r->text, r->len);
        if (!c->cap_known) {
            c->step = S_CAPA;
            imap_cmd(c, R.op_capa, "CAPABILITY");
            return true;
        }
        c->step = S_MAIN;
        R.w->after_login(c);
        return true;
    case S_CAPA:
        if (r->status != ST_OK) {
            op_fail(c, "CAPABILITY failed");
            return true;
        }
        op_end(c, 0);
        c->step = S_MAIN;
        R.w->after_login(c);
        return true;
    case S_LOGOUT:
        op_end(c, 0);
        return false;   /* the workload decides what comes next */
    default:
        if (r->status != ST_OK) {
            char why[160];
            snprintf(why, sizeof why, "%.*s", (int)(r->len > 120 ? 120 : r->len), r->text);
            op_fail(c, why);
            return true;
        }
        return false;
    }
}

/* Sends APPEND of c->msg to mailbox, with a non-synchronizing literal when
 * the server has LITERAL+, else waiting for the continuation (the workload
 * calls imap_append_cont on R_CONT). */
static void imap_append(struct client *c, int op, const char *mailbox)
{
    size_t n = c->msg.len;
    c->tag = c->next_tag++;
    op_begin(c, op);
    if (c->cap_literal_plus) {
        client_sendf(c, "A%u APPEND %s {%zu+}\r\n", c->tag, mailbox, n);
        client_send(c, c->msg.p, n);
        client_send(c, "\r\n", 2);
    } else {
        client_sendf(c, "A%u APPEND %s {%zu}\r\n", c->tag, mailbox, n);
    }
}

static void imap_append_cont(struct client *c, const struct resp *r)
{
    (void)r;
    if (c->cap_literal_plus)
        return;
    client_send(c, c->msg.p, c->msg.len);
    client_send(c, "\r\n", 2);
}

/* Parses "N FETCH (... UID u ...)"; returns 0 when there is none. */
static uint32_t fetch_uid(const struct resp *r)
{
    const char *s = r->text;
    size_t n = r->len;
    for (size_t i = 0; i + 4 < n; i++)
        if ((i == 0 || s[i - 1] == '(' || s[i - 1] == ' ') && strncasecmp(s + i, "UID ", 4) == 0)
            return (uint32_t)strtoul(s + i + 4, 0, 10);
    return 0;
}

static bool is_fetch(const struct resp *r)
{
    const char *sp = memchr(r->text, ' ', r->len);
    return sp && (size_t)(r->text + r->len - sp) > 6 && strncasecmp(sp + 1, "FETCH", 5) == 0;
}

/* The size of message number n of user u when filling, the same on every
 * run with the same seed. */
static int fill_size(int user, long n)
{
    uint64_t s = cfg.seed * 1000003u + (uint64_t)user * 7919u + (uint64_t)n;
    uint64_t span = (uint64_t)(cfg.msg_max - cfg.msg_min) + 1;
    return cfg.msg_min + (int)(rng_next(&s) % span);
}

static void make_message(struct client *c, int user, long n, int size)
{
    char to[256];
    user_name(user, to, sizeof to);
    bbuf_reset(&c->msg);
    msg_make(&c->msg, cfg.seed, to, n, size);
}

static int random_size(struct client *c)
{
    return cfg.msg_min + (int)(rng_next(&c->rng) % (uint64_t)(cfg.msg_max - cfg.msg_min + 1));
}

/* ---- imap-sync: one iteration is a whole client session. */

enum { SY_LIST = S_MAIN, SY_SELECT, SY_UIDS, SY_HEADERS, SY_BODY, SY_STORE, SY_IDLE, SY_DONE };
static int op_list, op_uids, op_headers, op_body, op_store, op_idle, op_done;

static int sync_prepare(void)
{
    op_list = stat_op("LIST");
    op_uids = stat_op("UID-FETCH-FLAGS");
    op_headers = stat_op("FETCH-HEADERS");
    op_body = stat_op("FETCH-BODY");
    op_store = stat_op("STORE");
    op_idle = stat_op("IDLE");
    op_done = stat_op("IDLE-DONE");
    return 0;
}

static void sync_start(struct client *c)
{
    if (!may_begin(c)) {
        finish(c);
        return;
    }
    c->user = next_user();
    start_connect(c);
}

static void sync_after_login(struct client *c)
{
    c->step = SY_LIST;
    imap_cmd(c, op_list, "LIST \"\" \"*\"");
}

static void sync_next_body(struct client *c)
{
    uint32_t uid = c->uids[rng_next(&c->rng) % c->nuids];
    c->step = SY_BODY;
    c->cur = 0;
    imap_cmd(c, op_body, "UID FETCH %u (BODY.PEEK[])", uid);
}

static void sync_idle_or_logout(struct client *c)
{
    if (c->cap_idle) {
        c->step = SY_IDLE;
        imap_cmd(c, op_idle, "IDLE");
    } else {
        imap_logout(c);
    }
}

static void sync_done(struct client *c)
{
    c->step = SY_DONE;
    op_begin(c, op_done);
    client_send(c, "DONE\r\n", 6);
}

static void sync_response(struct client *c, const struct resp *r)
{
    if (imap_common(c, r))
        return;
    if (r->kind == R_UNTAGGED) {
        if (c->step == SY_UIDS && is_fetch(r)) {
            uint32_t uid = fetch_uid(r);
            if (uid) {
                if (c->nuids == c->cap_uids) {
                    c->cap_uids = c->cap_uids ? c->cap_uids * 2 : 256;
                    c->uids = realloc(c->uids, c->cap_uids * sizeof *c->uids);
                }
                c->uids[c->nuids++] = uid;
            }
        }
        c->cur += (long)r->lit_bytes;
        return;
    }
    if (r->kind == R_CONT) {
        if (c->step == SY_IDLE) {
            op_end(c, 0);
            if (cfg.idle_ms > 0) {
                client_later(c, cfg.idle_ms / 1000.0);
                return;
            }
            sync_done(c);
        }
        return;
    }
    /* tagged OK */
    switch (c->step) {
    case SY_LIST:
        op_end(c, 0);
        c->step = SY_SELECT;
        c->exists = 0;
        imap_cmd(c, R.op_select, "SELECT INBOX");
        break;
    case SY_SELECT:
        op_end(c, 0);
        if (c->exists == 0) {
            sync_idle_or_logout(c);
            break;
        }
        c->step = SY_UIDS;
        c->nuids = 0;
        imap_cmd(c, op_uids, "UID FETCH 1:* (UID FLAGS)");
        break;
    case SY_UIDS: {
        op_end(c, 0);
        if (c->nuids == 0) {
            op_fail(c, "UID FETCH 1:* returned no UIDs");
            break;
        }
        uint32_t lo = c->exists > (uint32_t)cfg.headers ? c->exists - (uint32_t)cfg.headers + 1 : 1;
        c->step = SY_HEADERS;
        c->cur = 0;
        imap_cmd(c, op_headers, "FETCH %u:%u (UID BODY.PEEK[HEADER])", lo, c->exists);
        break;
    }
    case SY_HEADERS:
        op_end(c, (uint64_t)c->cur);
        c->bytes += (uint64_t)c->cur;
        c->left = cfg.bodies;
        if (c->left > 0) {
            sync_next_body(c);
            break;
        }
        /* fall through */
    case SY_BODY:
        if (c->step == SY_BODY) {
            op_end(c, (uint64_t)c->cur);
            c->bytes += (uint64_t)c->cur;
            if (--c->left > 0) {
                sync_next_body(c);
                break;
            }
        }
        c->step = SY_STORE;
        imap_cmd(c, op_store, "UID STORE %u +FLAGS (\\Seen)",
                 c->uids[rng_next(&c->rng) % c->nuids]);
        break;
    case SY_STORE:
        op_end(c, 0);
        sync_idle_or_logout(c);
        break;
    case SY_DONE:
        op_end(c, 0);
        imap_logout(c);
        break;
    case S_LOGOUT:
        iter_end(c, c->bytes);
        client_close(c);
        sync_start(c);
        break;
    default:
        op_fail(c, "unexpected tagged response");
    }
}

/* The IDLE pause is over (client_later from SY_IDLE), or a reconnect. */
static void sync_later(struct client *c)
{
    if (c->fd >= 0 && c->step == SY_IDLE)
        sync_done(c);
    else
        sync_start(c);
}

/* ---- imap-append: persistent sessions, one iteration per APPEND. */

enum { AP_CREATE = S_MAIN, AP_APPEND };
static int op_create;

static int append_prepare(void)
{
    op_create = stat_op("CREATE");
    R.op_iter = stat_op("APPEND");
    return 0;
}

static void append_start(struct client *c)
{
    if (R.stopping || now_s() >= R.deadline) {
        finish(c);
        return;
    }
    c->user = c->id % cfg.users + 1;
    start_connect(c);
}

static void append_next(struct client *c)
{
    if (!may_begin(c)) {
        imap_logout(c);
        return;
    }
    make_message(c, c->user, (long)(rng_next(&c->rng) % 1000000), random_size(c));
    c->step = AP_APPEND;
    imap_append(c, -1, "Bench");   /* timed as the iteration */
}

static void append_after_login(struct client *c)
{
    c->step = AP_CREATE;
    imap_cmd(c, op_create, "CREATE Bench");
}

static void append_response(struct client *c, const struct resp *r)
{
    /* CREATE of an existing mailbox says NO: that is fine. */
    if (r->kind == R_TAGGED && c->step == AP_CREATE && r->tag == c->tag) {
        op_end(c, 0);
        append_next(c);
        return;
    }
    if (imap_common(c, r))
        return;
    if (r->kind == R_CONT && c->step == AP_APPEND) {
        imap_append_cont(c, r);
        return;
    }
    if (r->kind != R_TAGGED)
        return;
    if (c->step == AP_APPEND) {
        client_arm(c, 0);
        iter_end(c, c->msg.len);
        append_next(c);
    } else if (c->step == S_LOGOUT) {
        finish(c);
    }
}

/* ---- imap-fetch-bodies: persistent sessions, one iteration per FETCH. */

enum { FB_SELECT = S_MAIN, FB_FETCH };

static int fetch_prepare(void)
{
    R.op_iter = stat_op("FETCH-BODY");
    return 0;
}

static void fetch_next(struct client *c)
{
    if (!may_begin(c)) {
        imap_logout(c);
        return;
    }
    c->step = FB_FETCH;
    c->cur = 0;
    uint32_t seq = 1 + (uint32_t)(rng_next(&c->rng) % c->exists);
    c->tag = c->next_tag++;
    c->op = -1;
    client_arm(c, cfg.timeout);
    client_sendf(c, "A%u FETCH %u (BODY.PEEK[])\r\n", c->tag, seq);
}

static void fetch_after_login(struct client *c)
{
    c->step = FB_SELECT;
    c->exists = 0;
    imap_cmd(c, R.op_select, "SELECT INBOX");
}

static void fetch_response(struct client *c, const struct resp *r)
{
    if (imap_common(c, r))
        return;
    if (r->kind == R_UNTAGGED) {
        c->cur += (long)r->lit_bytes;
        return;
    }
    if (r->kind != R_TAGGED)
        return;
    switch (c->step) {
    case FB_SELECT:
        op_end(c, 0);
        if (c->exists == 0) {
            op_fail(c, "INBOX is empty (fill it first)");
            return;
        }
        fetch_next(c);
        break;
    case FB_FETCH:
        client_arm(c, 0);
        if (c->cur == 0) {
            stat_err(R.op_iter);
            c->in_iter = false;
            log_failure(c, "FETCH returned no body");
        } else {
            iter_end(c, (uint64_t)c->cur);
        }
        fetch_next(c);
        break;
    case S_LOGOUT:
        finish(c);
        break;
    }
}

/* ---- fill: each client takes the next account, tops its INBOX up to
 * --messages with deterministic messages, and moves on. */

enum { FI_SELECT = S_MAIN, FI_APPEND };

static int fill_prepare(void)
{
    R.op_iter = stat_op("APPEND");
    return 0;
}

static void fill_start(struct client *c)
{
    if (R.stopping || now_s() >= R.deadline) {
        finish(c);
        return;
    }
    if (c->user == 0) {
        if (R.next_user >= (unsigned)cfg.users) {
            finish(c);
            return;
        }
        c->user = (int)++R.next_user;
    }
    start_connect(c);
}

static void fill_next(struct client *c)
{
    if (c->cur > cfg.messages) {
        c->user = 0;   /* this account is full */
        imap_logout(c);
        return;
    }
    if (!may_begin(c)) {
        imap_logout(c);
        return;
    }
    make_message(c, c->user, c->cur, fill_size(c->user, c->cur));
    c->step = FI_APPEND;
    imap_append(c, -1, "INBOX");
}

static void fill_after_login(struct client *c)
{
    c->step = FI_SELECT;
    c->exists = 0;
    imap_cmd(c, R.op_select, "SELECT INBOX");
}

static void fill_response(struct client *c, const struct resp *r)
{
    if (imap_common(c, r))
        return;
    if (r->kind == R_CONT && c->step == FI_APPEND) {
        imap_append_cont(c, r);
        return;
    }
    if (r->kind != R_TAGGED)
        return;
    switch (c->step) {
    case FI_SELECT:
        op_end(c, 0);
        c->cur = (long)c->exists + 1;
        fill_next(c);
        break;
    case FI_APPEND:
        client_arm(c, 0);
        iter_end(c, c->msg.len);
        c->cur++;
        fill_next(c);
        break;
    case S_LOGOUT:
        client_close(c);
        fill_start(c);
        break;
    }
}

/* ---- imap-idle-fanout: client 0 appends to INBOX of account 1 while
 * every other client idles on it; the latency is from sending APPEND to
 * each idler's EXISTS. One event at a time; an iteration is one event. */

enum { IF_SELECT = S_MAIN, IF_IDLE, IF_IDLING, IF_DONE, IF_APPENDING, IF_WAIT };
static int op_exists, op_exists_ok, op_fan_append;

static int fanout_prepare(void)
{
    if (R.ncl < 2) {
        fprintf(stderr, "petrel-bench: imap-idle-fanout needs --clients 2 or more\n");
        exit(2);
    }
    op_exists = stat_op("EXISTS-latency");
    op_exists_ok = stat_op("EXISTS-after-OK");
    op_fan_append = stat_op("APPEND");
    op_idle = stat_op("IDLE");
    op_done = stat_op("IDLE-DONE");
    R.op_iter = stat_op("event");
    return 0;
}

static void fanout_start(struct client *c)
{
    if (R.stopping || now_s() >= R.deadline) {
        finish(c);
        return;
    }
    c->role = c->id == 0;   /* 1: the appender */
    /* The appender and every --fanout-accounts'th idler use account 1; the
     * other idlers sit on accounts 2.. as the background load. */
    c->user = c->role ? 1 : (c->id - 1) % cfg.fanout_accounts + 1;
    c->alt = c->role == 0;  /* idlers on --idle-port when given */
    if (c->role == 0 && !gate_enter(c))
        return;
    /* got: nothing awaited from this client until an event starts with
     * it idling (else one joining mid-event would count as a timeout). */
    c->got = true;
    c->in_iter = false;
    start_connect(c);
}

static void fanout_event_end(void);

/* The end: every idler ends its IDLE and logs out, and so does the
 * appender; those still on their way there see R.stopping. */
static void fanout_release(void)
{
    stop_starting();
    for (int i = 1; i < R.ncl; i++) {
        struct client *c = &R.cl[i];
        if (c->state == C_DONE)
            continue;
        if (c->fd >= 0 && c->step == IF_IDLING) {
            c->step = IF_DONE;
            op_begin(c, op_done);
            client_send(c, "DONE\r\n", 6);
        } else if (c->fd < 0) {
            finish(c);
        }
    }
    struct client *a = &R.cl[0];
    if (a->fd >= 0 && a->step == IF_WAIT)
        imap_logout(a);
    else if (a->fd < 0)
        finish(a);
}

static void fanout_stop(void)
{
    if (!R.event_active)
        fanout_release();
}

static void fanout_event_start(void)
{
    struct client *a = &R.cl[0];
    if (a->fd < 0 || a->step != IF_WAIT)
        return;
    if (!may_begin(a)) {
        fanout_release();
        return;
    }
    if (R.iters_started == 1) {
        /* The first event: the measuring window starts now, after every
         * idler has logged in (which --ramp paces). */
        double now = now_s();
        R.t_start = now;
        R.deadline = now + cfg.duration;
        stat_window(now, R.deadline);
        ev_timer_stop(loop, &R.stop_timer);
        ev_timer_set(&R.stop_timer, cfg.duration, 0);
        ev_timer_start(loop, &R.stop_timer);
        ev_timer_stop(loop, &R.hard_timer);
        ev_timer_set(&R.hard_timer, cfg.duration + cfg.timeout + 2, 0);
        ev_timer_start(loop, &R.hard_timer);
    }
    R.expect = R.got = 0;
    R.ok_t = 0;
    if (R.iters_started == 1) {
        ev_timer_stop(loop, &R.setup_timer);
        for (int i = 1; i < R.ncl; i++)
            R.idlers += R.cl[i].fd >= 0 && R.cl[i].step == IF_IDLING;
    }
    for (int i = 1; i < R.ncl; i++) {
        struct client *c = &R.cl[i];
        c->got = true;
        c->got_t = 0;
        if (c->fd >= 0 && c->step == IF_IDLING && c->user == 1) {
            c->got = false;
            R.expect++;
        }
    }
    make_message(a, 1, (long)(rng_next(&a->rng) % 1000000), random_size(a));
    a->step = IF_APPENDING;
    R.event_active = true;
    R.event_t0 = now_s();
    imap_append(a, op_fan_append, "INBOX");
    ev_timer_set(&R.event_timer, cfg.timeout, 0);
    ev_timer_start(loop, &R.event_timer);
}

static void fanout_event_end(void)
{
    if (!R.event_active)
        return;
    R.event_active = false;
    ev_timer_stop(loop, &R.event_timer);
    struct client *a = &R.cl[0];
    for (int i = 1; i < R.ncl; i++) {
        struct client *c = &R.cl[i];
        if (!c->got) {
            stat_timeout(op_exists);
            c->got = true;
        }
        /* From the APPEND's tagged OK (the definition): an EXISTS
         * that came first counts as 0. */
        if (c->got_t > 0 && R.ok_t > 0)
            stat_ok(op_exists_ok, c->got_t > R.ok_t ? c->got_t - R.ok_t : 0, 0);
        c->got_t = 0;
    }
    if (R.got == R.expect)
        iter_end(a, 0);
    else {
        a->in_iter = false;
        stat_timeout(R.op_iter);
    }
    if (R.stopping)
        fanout_release();
    else if (a->step == IF_WAIT)
        client_later(a, 0.01);
}

static void on_event_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l, (void)w, (void)revents;
    fanout_event_end();
}

static void fanout_maybe_begin(void)
{
    struct client *a = &R.cl[0];
    if (R.event_active || a->fd < 0 || a->step != IF_WAIT)
        return;
    int idling = 0, pending = 0;
    for (int i = 1; i < R.ncl; i++) {
        if (R.cl[i].state == C_DONE)
            continue;
        if (R.cl[i].fd >= 0 && R.cl[i].step == IF_IDLING)
            idling++;
        else
            pending++;
    }
    /* Start once every idler idles (logging thousands in loads the
     * server, which must not overlap the measurement), or when --setup is
     * spent; after the first event, go on with whoever idles (a
     * reconnecting idler joins the next event). */
    if (idling > 0 && (pending == 0 || R.iters_started > 0 || now_s() - R.t_start > cfg.setup))
        client_later(a, 0.01);
}

static void on_setup_spent(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l, (void)w, (void)revents;
    fanout_maybe_begin();
}

static void fanout_summary(void)
{
    printf("RESULT server=%s workload=%s op=idlers idling=%d of=%d\n", cfg.label, cfg.name,
           R.idlers, R.ncl - 1);
}

static void fanout_after_login(struct client *c)
{
    if (!c->cap_idle) {
        R.skipped = true;
        snprintf(R.skip_reason, sizeof R.skip_reason, "server does not advertise IDLE");
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (c->role == 1) {
        c->step = IF_WAIT;
        /* The idlers log in once the appender knows IDLE is there. */
        if (R.ready == 0) {
            R.ready = 1;
            for (int i = 1; i < R.ncl; i++)
                fanout_start(&R.cl[i]);
        }
        fanout_maybe_begin();
        return;
    }
    c->step = IF_SELECT;
    imap_cmd(c, R.op_select, "SELECT INBOX");
}

static void fanout_response(struct client *c, const struct resp *r)
{
    uint32_t before = c->exists;
    if (imap_common(c, r))
        return;
    if (r->kind == R_UNTAGGED) {
        if (c->role == 0 && c->exists > before && c->step == IF_IDLING && !c->got &&
            R.event_active) {
            c->got = true;
            c->got_t = now_s();
            stat_ok(op_exists, c->got_t - R.event_t0, 0);
            if (++R.got >= R.expect && R.cl[0].step == IF_WAIT)
                fanout_event_end();
        }
        return;
    }
    if (r->kind == R_CONT) {
        if (c->role == 1) {
            imap_append_cont(c, r);
        } else if (c->step == IF_IDLE) {
            op_end(c, 0);
            gate_leave(c);
            c->step = IF_IDLING;
            client_arm(c, 0);
            if (R.stopping) {
                c->step = IF_DONE;
                op_begin(c, op_done);
                client_send(c, "DONE\r\n", 6);
                return;
            }
            fanout_maybe_begin();
        }
        return;
    }
    if (r->kind != R_TAGGED)
        return;
    switch (c->step) {
    case IF_SELECT:
        op_end(c, 0);
        if (R.stopping) {
            imap_logout(c);
            break;
        }
        c->step = IF_IDLE;
        imap_cmd(c, op_idle, "IDLE");
        break;
    case IF_APPENDING:
        op_end(c, 0);
        R.ok_t = now_s();
        c->step = IF_WAIT;
        if (R.got >= R.expect)
            fanout_event_end();
        break;
    case IF_DONE:
        op_end(c, 0);
        imap_logout(c);
        break;
    case S_LOGOUT:
        finish(c);
        break;
    }
}

static void fanout_failed(struct client *c)
{
    if (c->role == 0 && R.event_active && !c->got) {
        c->got = true;
        stat_err(op_exists);
        if (++R.got >= R.expect && R.cl[0].step == IF_WAIT)
            fanout_event_end();
    }
    if (c->role == 1 && R.event_active) {
        R.event_active = false;
        ev_timer_stop(loop, &R.event_timer);
        for (int i = 1; i < R.ncl; i++)
            R.cl[i].got = true;
    }
    if (c->role == 0)
        fanout_maybe_begin();
}

static void fanout_later(struct client *c)
{
    if (c->role == 1 && c->fd >= 0 && c->step == IF_WAIT)
        fanout_event_start();
    else if (c->fd < 0)
        fanout_start(c);
}

/* ---- imap-idle-memory: every client logs in and selects INBOX (and
 * IDLEs with --use-idle when offered) and stays; the servers' memory is read
 * before the first connects and after all are settled. */

enum { IM_SELECT = S_MAIN, IM_IDLE, IM_READY, IM_DONE };
static ev_timer settle_timer;

static int memory_prepare(void)
{
    if (!cfg.pids) {
        fprintf(stderr, "petrel-bench: imap-idle-memory needs --pids PID[,PID...]\n");
        exit(2);
    }
    if (mem_read(cfg.pids, &R.mem0) < 0) {
        fprintf(stderr, "petrel-bench: --pids %s: no such process\n", cfg.pids);
        exit(2);
    }
    op_idle = stat_op("IDLE");
    op_done = stat_op("IDLE-DONE");
    R.op_iter = stat_op("session-ready");
    return 0;
}

static void memory_start(struct client *c)
{
    if (R.stopping || now_s() >= R.deadline) {
        finish(c);
        return;
    }
    if (c->user == 0)
        c->user = c->id % cfg.users + 1;
    if (!gate_enter(c))
        return;
    if (!c->in_iter && !may_begin(c)) {
        finish(c);
        return;
    }
    start_connect(c);
}

static void memory_release(void)
{
    stop_starting();
    for (int i = 0; i < R.ncl; i++) {
        struct client *c = &R.cl[i];
        if (c->state == C_DONE)
            continue;
        if (c->fd < 0) {
            finish(c);
        } else if (c->step == IM_READY && c->cap_idle && cfg.use_idle) {
            c->step = IM_DONE;
            op_begin(c, op_done);
            client_send(c, "DONE\r\n", 6);
        } else if (c->step == IM_READY) {
            imap_logout(c);
        }
        /* others finish what they are doing and see R.stopping */
    }
}

static void memory_measure(void)
{
    if (R.measured)
        return;
    mem_read(cfg.pids, &R.mem1);
    R.measured = true;
    R.measured_clients = R.ready;
}

static void on_settled(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l, (void)w, (void)revents;
    memory_measure();
    memory_release();
}

/* The deadline came before every client was ready: measure what is. */
/* --procs: a child's pipes to its parent, which reads the memory. */
static struct {
    int status_fd;           /* "READY n\n" goes here once; -1: not a child */
    int release_fd;          /* EOF here: the parent has measured */
    ev_io release;
    bool reported;
} child = { -1, -1 };

static void on_release(struct ev_loop *l, ev_io *w, int revents)
{
    (void)revents;
    ev_io_stop(l, w);
    memory_release();
}

/* Tells the parent how many sessions are ready, then waits for its word
 * (or the hard stop) before letting them go. */
static void child_report(void)
{
    if (child.reported)
        return;
    child.reported = true;
    R.measured = true;
    dprintf(child.status_fd, "READY %d\n", R.ready);
    close(child.status_fd);
    ev_io_init(&child.release, on_release, child.release_fd, EV_READ);
    ev_io_start(loop, &child.release);
}

static void memory_stop(void)
{
    ev_timer_stop(loop, &settle_timer);
    if (child.status_fd >= 0) {
        stop_starting();
        child_report();
        return;
    }
    memory_measure();
    memory_release();
}

static void memory_check(void)
{
    if (R.ready == R.ncl && child.status_fd >= 0) {
        child_report();
        return;
    }
    if (R.ready == R.ncl && !ev_is_active(&settle_timer) && !R.measured) {
        ev_timer_set(&settle_timer, cfg.settle, 0);
        ev_timer_start(loop, &settle_timer);
    }
}

static void memory_ready(struct client *c)
{
    gate_leave(c);
    c->step = IM_READY;
    client_arm(c, 0);
    iter_end(c, 0);
    if (R.stopping) {
        if (c->cap_idle && cfg.use_idle) {
            c->step = IM_DONE;
            op_begin(c, op_done);
            client_send(c, "DONE\r\n", 6);
        } else {
            imap_logout(c);
        }
        return;
    }
    R.ready++;
    memory_check();
}

static void memory_after_login(struct client *c)
{
    c->step = IM_SELECT;
    imap_cmd(c, R.op_select, "SELECT INBOX");
}

static void memory_response(struct client *c, const struct resp *r)
{
    if (imap_common(c, r))
        return;
    if (r->kind == R_CONT && c->step == IM_IDLE) {
        op_end(c, 0);
        memory_ready(c);
        return;
    }
    if (r->kind != R_TAGGED)
        return;
    switch (c->step) {
    case IM_SELECT:
        op_end(c, 0);
        if (R.stopping) {
            imap_logout(c);
        } else if (cfg.use_idle && c->cap_idle) {
            c->step = IM_IDLE;
            imap_cmd(c, op_idle, "IDLE");
        } else {
            memory_ready(c);
        }
        break;
    case IM_DONE:
        op_end(c, 0);
        imap_logout(c);
        break;
    case S_LOGOUT:
        finish(c);
        break;
    }
}

static void memory_failed(struct client *c)
{
    if (c->step == IM_READY || c->step == IM_DONE)
        R.ready--;
    c->in_iter = false;
}

static void memory_summary(void)
{
    if (child.status_fd >= 0)
        return;   /* the parent prints the memory */
    memory_measure();
    int n = R.measured_clients > 0 ? R.measured_clients : 1;
    const struct mem *a = &R.mem0, *b = &R.mem1;
    double rss = (double)(b->rss - a->rss) / n, pss = (double)(b->pss - a->pss) / n;
    double uss = (double)(b->uss - a->uss) / n;
    printf("RESULT server=%s workload=%s op=memory clients=%d "
           "rss_before_kib=%ld rss_after_kib=%ld pss_before_kib=%ld pss_after_kib=%ld "
           "uss_before_kib=%ld uss_after_kib=%ld procs_before=%d procs_after=%d "
           "kib_per_client_uss=%.1f kib_per_client_pss=%.1f kib_per_client_rss=%.1f\n",
           cfg.label, cfg.name, n, a->rss, b->rss, a->pss, b->pss, a->uss, b->uss, a->procs,
           b->procs, uss, pss, rss);
    /* USS (private pages) is the memory one more session really costs;
     * PSS also moves shared library pages around, RSS counts them again
     * in every process. No session ready: no figure. */
    if (R.measured_clients <= 0)
        return;
    printf("SUMMARY server=%s workload=%s metric=kib_per_client_uss value=%.1f "
           "better=lower\n", cfg.label, cfg.name, uss);
    printf("SUMMARY server=%s workload=%s metric=kib_per_client_pss value=%.1f "
           "better=lower\n", cfg.label, cfg.name, pss);
    printf("SUMMARY server=%s workload=%s metric=kib_per_client_rss value=%.1f "
           "better=lower\n", cfg.label, cfg.name, rss);
    if (!cfg.quiet)
        printf("memory: %d sessions, %d -> %d processes; per session: USS %.1f KiB, PSS %.1f KiB, "
               "RSS %.1f KiB\n", n, a->procs, b->procs, uss, pss, rss);
}

/* ---- imap-big-mailbox: one session on a large INBOX (run.sh grows
 * account 1 to 100,000 messages); an iteration is SELECT INBOX, UID FETCH
 * 1:* (UID FLAGS), SEARCH UNSEEN, SEARCH FROM --search-from, UNSELECT, each
 * timed from the command's first byte sent to its tagged OK. The first
 * --warmup iterations are not counted: they measure cold caches (Dovecot
 * builds its index of a new Maildir there), not the steady state. */

enum { BM_SELECT = S_MAIN, BM_UIDS, BM_UNSEEN, BM_FROM, BM_UNSELECT };
static int op_unseen, op_from, op_unselect;

static int big_prepare(void)
{
    if (cfg.clients != 1) {
        fprintf(stderr, "petrel-bench: imap-big-mailbox runs one session (--clients 1)\n");
        exit(2);
    }
    op_uids = stat_op("UID-FETCH-FLAGS");
    op_unseen = stat_op("SEARCH-UNSEEN");
    op_from = stat_op("SEARCH-FROM");
    op_unselect = stat_op("UNSELECT");
    R.op_iter = stat_op("iteration");
    return 0;
}

/* The op to time, or -1 during the warm-up. */
static int big_op(struct client *c, int op)
{
    return c->left > 0 ? -1 : op;
}

static void big_next(struct client *c)
{
    if (c->left <= 0 && !may_begin(c)) {
        imap_logout(c);
        return;
    }
    c->step = BM_SELECT;
    c->exists = 0;
    imap_cmd(c, big_op(c, R.op_select), "SELECT INBOX");
}

static void big_after_login(struct client *c)
{
    c->left = cfg.warmup;
    big_next(c);
}

/* Counts the numbers of "* SEARCH n n n ..." (or an ESEARCH COUNT). */
static long search_hits(const struct resp *r)
{
    if (r->len < 6 || strncasecmp(r->text, "SEARCH", 6) != 0)
        return -1;
    long n = 0;
    for (size_t i = 6; i < r->len; i++)
        if (r->text[i] == ' ' && i + 1 < r->len && r->text[i + 1] >= '0' && r->text[i + 1] <= '9')
            n++;
    return n;
}

static void big_response(struct client *c, const struct resp *r)
{
    if (imap_common(c, r))
        return;
    if (r->kind == R_UNTAGGED) {
        if (c->step == BM_UIDS && is_fetch(r))
            c->cur++;
        long hits = search_hits(r);
        if (hits >= 0)
            c->cur = hits;
        return;
    }
    if (r->kind != R_TAGGED)
        return;
    switch (c->step) {
    case BM_SELECT:
        op_end(c, 0);
        if (c->exists == 0) {
            op_fail(c, "INBOX is empty (fill it first)");
            return;
        }
        c->step = BM_UIDS;
        c->cur = 0;
        imap_cmd(c, big_op(c, op_uids), "UID FETCH 1:* (UID FLAGS)");
        break;
    case BM_UIDS:
        op_end(c, 0);
        if (c->cur != (long)c->exists) {
            char why[128];
            snprintf(why, sizeof why, "UID FETCH 1:* gave %ld FETCH responses for %u EXISTS",
                     c->cur, c->exists);
            op_fail(c, why);
            return;
        }
        c->step = BM_UNSEEN;
        c->cur = -1;
        imap_cmd(c, big_op(c, op_unseen), "SEARCH UNSEEN");
        break;
    case BM_UNSEEN:
        op_end(c, 0);
        if (c->cur < 0) {
            op_fail(c, "SEARCH UNSEEN without a SEARCH response");
            return;
        }
        c->rcpts = (int)c->cur;
        c->step = BM_FROM;
        c->cur = -1;
        imap_cmd(c, big_op(c, op_from), "SEARCH FROM \"%s\"", cfg.search_from);
        break;
    case BM_FROM:
        op_end(c, 0);
        if (c->cur < 0) {
            op_fail(c, "SEARCH FROM without a SEARCH response");
            return;
        }
        c->bytes = (uint64_t)c->cur;
        c->step = BM_UNSELECT;
        imap_cmd(c, big_op(c, op_unselect), "UNSELECT");
        break;
    case BM_UNSELECT:
        op_end(c, 0);
        if (c->left > 0) {
            c->left--;
        } else {
            iter_end(c, 0);
            R.big_exists = c->exists;
            R.big_unseen = c->rcpts;
            R.big_from = (long)c->bytes;
        }
        big_next(c);
        break;
    case S_LOGOUT:
        finish(c);
        break;
    }
}

static void big_summary(void)
{
    printf("RESULT server=%s workload=%s op=mailbox messages=%u unseen_hits=%d from_hits=%ld "
           "search_from=%s\n", cfg.label, cfg.name, R.big_exists, R.big_unseen, R.big_from,
           cfg.search_from);
}

/* ------------------------------------------------------------------ POP3 */

enum { P_GREET, P_USER, P_PASS, P_STAT, P_UIDL, P_RETR, P_QUIT };
static unsigned char *pop3_busy;   /* per account: 1 while downloaded */
static int op_pass, op_stat, op_uidl, op_retr, op_quit;

static int pop3_prepare(void)
{
    op_pass = stat_op("USER+PASS");
    op_stat = stat_op("STAT");
    op_uidl = stat_op("UIDL");
    op_retr = stat_op("RETR");
    op_quit = stat_op("QUIT");
    R.op_iter = stat_op("mailbox");
    pop3_busy = calloc((size_t)cfg.users, 1);
    if (cfg.clients > cfg.users && !cfg.quiet)
        fprintf(stderr, "petrel-bench: pop3-download: %d clients share %d accounts, so some "
                        "wait for an account to be free\n", cfg.clients, cfg.users);
    return 0;
}

/* POP3 locks a maildrop for the whole session (RFC 1939 8), so two
 * clients never download the same account at once: each takes the next
 * account nobody is downloading, or waits for one. */

static void pop3_release(struct client *c)
{
    if (c->user > 0)
        pop3_busy[c->user - 1] = 0;
    c->user = 0;
}

static void pop3_start(struct client *c)
{
    pop3_release(c);
    int u = 0;
    for (int i = 0; i < cfg.users && !u; i++) {
        int cand = next_user();
        if (!pop3_busy[cand - 1])
            u = cand;
    }
    if (!u) {
        if (R.stopping || now_s() >= R.deadline)
            finish(c);
        else
            client_later(c, 0.01);
        return;
    }
    if (!may_begin(c)) {
        finish(c);
        return;
    }
    c->user = u;
    pop3_busy[u - 1] = 1;
    c->multiline = false;
    start_connect(c);
}

static void pop3_response(struct client *c, const struct resp *r)
{
    if (r->status != ST_OK) {
        char why[160];
        snprintf(why, sizeof why, "%.*s", (int)(r->len > 120 ? 120 : r->len), r->text);
        op_fail(c, why);
        return;
    }
    char user[256];
    switch (c->step) {
    case P_GREET:
        op_end(c, 0);
        user_name(c->user, user, sizeof user);
        c->step = P_USER;
        op_begin(c, op_pass);
        client_sendf(c, "USER %s\r\n", user);
        break;
    case P_USER:
        c->step = P_PASS;
        client_sendf(c, "PASS %s\r\n", cfg.password);
        break;
    case P_PASS:
        op_end(c, 0);
        c->step = P_STAT;
        op_begin(c, op_stat);
        client_sendf(c, "STAT\r\n");
        break;
    case P_STAT:
        op_end(c, 0);
        c->left = strtol(r->text + 3, 0, 10);
        c->step = P_UIDL;
        c->multiline = true;
        op_begin(c, op_uidl);
        client_sendf(c, "UIDL\r\n");
        break;
    case P_UIDL:
        op_end(c, 0);
        if (r->lines != c->left) {
            op_fail(c, "UIDL and STAT disagree");
            return;
        }
        c->cur = 0;
        /* fall through */
    case P_RETR:
        if (c->step == P_RETR) {
            op_end(c, r->lit_bytes);
            c->bytes += r->lit_bytes;
        }
        if (c->cur < c->left) {
            c->step = P_RETR;
            op_begin(c, op_retr);
            client_sendf(c, "RETR %ld\r\n", ++c->cur);
            break;
        }
        c->multiline = false;
        c->step = P_QUIT;
        op_begin(c, op_quit);
        client_sendf(c, "QUIT\r\n");
        break;
    case P_QUIT:
        op_end(c, 0);
        iter_end(c, c->bytes);
        client_close(c);
        pop3_release(c);
        pop3_start(c);
        break;
    }
}

/* ------------------------------------------------------------------ LMTP */

enum { L_GREET, L_LHLO, L_MAIL, L_RCPT, L_DATA, L_SENT, L_QUIT };

static int lmtp_prepare(void)
{
    if (!cfg.lmtp_port) {
        R.skipped = true;
        snprintf(R.skip_reason, sizeof R.skip_reason, "no --lmtp-port given");
        return 1;
    }
    R.op_iter = stat_op("delivery");
    op_quit = stat_op("QUIT");
    return 0;
}

static void lmtp_start(struct client *c)
{
    if (R.stopping || now_s() >= R.deadline) {
        finish(c);
        return;
    }
    start_connect(c);
}

static void lmtp_next(struct client *c)
{
    if (!may_begin(c)) {
        c->step = L_QUIT;
        op_begin(c, op_quit);
        client_sendf(c, "QUIT\r\n");
        return;
    }
    c->user = next_user();
    c->step = L_MAIL;
    client_arm(c, cfg.timeout);
    client_sendf(c, "MAIL FROM:<bench-sender@example.org>\r\n");
}

/* Sends c->msg as DATA: dot-stuffed (msg_make never starts a line with a
 * dot, but another generator might) and ended by ".". */
static void lmtp_send_data(struct client *c)
{
    const char *p = c->msg.p, *end = c->msg.p + c->msg.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl + 1 : end;
        if (*p == '.')
            client_send(c, ".", 1);
        client_send(c, p, (size_t)(stop - p));
        p = stop;
    }
    client_send(c, ".\r\n", 3);
}

static void lmtp_response(struct client *c, const struct resp *r)
{
    char user[256];
    switch (c->step) {
    case L_GREET:
        if (r->code != 220) {
            op_fail(c, "LMTP greeting is not 220");
            return;
        }
        op_end(c, 0);
        c->step = L_LHLO;
        client_arm(c, cfg.timeout);
        client_sendf(c, "LHLO bench.example.org\r\n");
        return;
    case L_LHLO:
        if (r->code != 250) {
            op_fail(c, "LHLO refused");
            return;
        }
        lmtp_next(c);
        return;
    case L_MAIL:
        if (r->code != 250) {
            op_fail(c, "MAIL FROM refused");
            return;
        }
        user_name(c->user, user, sizeof user);
        c->step = L_RCPT;
        client_sendf(c, "RCPT TO:<%s>\r\n", user);
        return;
    case L_RCPT:
        if (r->code != 250) {
            op_fail(c, "RCPT TO refused");
            return;
        }
        c->step = L_DATA;
        client_sendf(c, "DATA\r\n");
        return;
    case L_DATA:
        if (r->code != 354) {
            op_fail(c, "DATA refused");
            return;
        }
        user_name(c->user, user, sizeof user);
        bbuf_reset(&c->msg);
        msg_make(&c->msg, cfg.seed, user, (long)(rng_next(&c->rng) % 1000000), random_size(c));
        c->step = L_SENT;
        lmtp_send_data(c);
        return;
    case L_SENT:
        if (r->code != 250) {
            op_fail(c, "delivery refused");
            return;
        }
        client_arm(c, 0);
        iter_end(c, c->msg.len);
        lmtp_next(c);
        return;
    case L_QUIT:
        op_end(c, 0);
        finish(c);
        return;
    }
}

/* ------------------------------------------------------------ dispatch */

void work_response(struct client *c, const struct resp *r)
{
    if (c->state == C_DONE)
        return;
    if (c->proto == PROTO_POP3) {
        pop3_response(c, r);
        return;
    }
    if (c->proto == PROTO_LMTP) {
        lmtp_response(c, r);
        return;
    }
    if (r->kind == R_UNTAGGED && r->status == ST_BYE && c->step != S_LOGOUT && c->step != S_GREET) {
        char why[160];
        snprintf(why, sizeof why, "server said BYE: %.*s", (int)(r->len > 100 ? 100 : r->len),
                 r->text);
        op_fail(c, why);
        return;
    }
    R.w->response(c, r);
}

static void generic_later(struct client *c)
{
    R.w->start(c);
}

static const struct workload workloads[] = {
    { "imap-sync", PROTO_IMAP, "client session", 0, 0, sync_prepare, sync_start,
      sync_after_login, sync_response, 0, 0 },
    { "imap-append", PROTO_IMAP, "APPEND", 10000, 50000, append_prepare, append_start,
      append_after_login, append_response, 0, 0 },
    { "imap-fetch-bodies", PROTO_IMAP, "FETCH BODY.PEEK[]", 0, 0, fetch_prepare,
      append_start /* same: persistent session per client */, fetch_after_login,
      fetch_response, 0, 0 },
    { "imap-idle-fanout", PROTO_IMAP, "notification event", 2000, 6000, fanout_prepare,
      fanout_start, fanout_after_login, fanout_response, fanout_failed, fanout_summary,
      fanout_stop },
    { "imap-idle-memory", PROTO_IMAP, "idle session", 0, 0, memory_prepare, memory_start,
      memory_after_login, memory_response, memory_failed, memory_summary, memory_stop },
    { "pop3-download", PROTO_POP3, "mailbox download", 0, 0, pop3_prepare, pop3_start, 0,
      0, pop3_release, 0 },
    { "lmtp-deliver", PROTO_LMTP, "delivery", 8000, 12000, lmtp_prepare, lmtp_start, 0, 0,
      0, 0 },
    { "fill", PROTO_IMAP, "APPEND", 5000, 50000, fill_prepare, fill_start, fill_after_login,
      fill_response, 0, 0 },
    { "imap-big-mailbox", PROTO_IMAP, "SELECT+UID FETCH+2 SEARCH+UNSELECT", 0, 0, big_prepare,
      append_start /* one persistent session */, big_after_login, big_response, 0,
      big_summary },
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/* Overrides of work_later per workload: timers a workload uses itself. */
static void dispatch_later(struct client *c)
{
    if (R.w->start == sync_start)
        sync_later(c);
    else if (R.w->start == fanout_start)
        fanout_later(c);
    else
        generic_later(c);
}

/* ------------------------------------------------------------- summary */

/* A latency of an operation that never succeeded is no figure at all (a
 * dead server would otherwise show 0 ms and "win"): it is left out, and
 * the table shows n/a beside the errors. A rate of 0 is the truth. */
static void summary(const char *metric, int op, double value, const char *better)
{
    if (strcmp(better, "lower") == 0 && stat_count(op) == 0)
        return;
    printf("SUMMARY server=%s workload=%s metric=%s value=%.3f better=%s\n", cfg.label,
           cfg.name, metric, value, better);
}

static void print_summaries(void)
{
    const char *n = R.w->name;
    int it = R.op_iter;
    if (strcmp(n, "imap-sync") == 0) {
        summary("sessions_per_s", it, stat_rate_of(it), "higher");
        summary("session_p99_ms", it, stat_pct_of(it, 99), "lower");
    } else if (strcmp(n, "imap-append") == 0) {
        summary("appends_per_s", it, stat_rate_of(it), "higher");
        summary("append_p99_ms", it, stat_pct_of(it, 99), "lower");
    } else if (strcmp(n, "imap-fetch-bodies") == 0) {
        summary("fetches_per_s", it, stat_rate_of(it), "higher");
        summary("fetch_p99_ms", it, stat_pct_of(it, 99), "lower");
    } else if (strcmp(n, "imap-idle-fanout") == 0) {
        summary("exists_p50_ms", op_exists, stat_pct_of(op_exists, 50), "lower");
        summary("exists_p99_ms", op_exists, stat_pct_of(op_exists, 99), "lower");
        summary("after_ok_p50_ms", op_exists_ok, stat_pct_of(op_exists_ok, 50), "lower");
        summary("after_ok_p99_ms", op_exists_ok, stat_pct_of(op_exists_ok, 99), "lower");
    } else if (strcmp(n, "pop3-download") == 0) {
        summary("mailboxes_per_s", it, stat_rate_of(it), "higher");
        summary("retr_mb_per_s", op_retr, stat_mbps_of(op_retr), "higher");
        summary("retr_p99_ms", op_retr, stat_pct_of(op_retr, 99), "lower");
    } else if (strcmp(n, "lmtp-deliver") == 0) {
        summary("deliveries_per_s", it, stat_rate_of(it), "higher");
        summary("delivery_p99_ms", it, stat_pct_of(it, 99), "lower");
    } else if (strcmp(n, "imap-big-mailbox") == 0) {
        summary("select_p50_ms", R.op_select, stat_pct_of(R.op_select, 50), "lower");
        summary("select_max_ms", R.op_select, stat_max_of(R.op_select), "lower");
        summary("uid_fetch_p50_ms", op_uids, stat_pct_of(op_uids, 50), "lower");
        summary("uid_fetch_max_ms", op_uids, stat_max_of(op_uids), "lower");
        summary("unseen_p50_ms", op_unseen, stat_pct_of(op_unseen, 50), "lower");
        summary("unseen_max_ms", op_unseen, stat_max_of(op_unseen), "lower");
        summary("from_p50_ms", op_from, stat_pct_of(op_from, 50), "lower");
        summary("from_max_ms", op_from, stat_max_of(op_from), "lower");
    } else if (strcmp(n, "fill") == 0) {
        summary("appends_per_s", it, stat_rate_of(it), "higher");
    }
}

/* ------------------------------------------------------------ arguments */

static void usage(FILE *f)
{
    fprintf(f,
"usage: petrel-bench --workload NAME [options]\n"
"\n"
"Opens many concurrent IMAP, POP3 or LMTP sessions against a server and\n"
"prints per-operation throughput and latency percentiles, as a table and as\n"
"'RESULT key=value ...' and 'SUMMARY ...' lines. Every run is bounded by\n"
"--duration and --count and stops by itself; every operation by --timeout.\n"
"\n"
"workloads:\n"
"  imap-sync          LOGIN, LIST, SELECT INBOX, UID FETCH 1:* (UID FLAGS), FETCH\n"
"                     headers of the newest --headers, --bodies x BODY.PEEK[], STORE\n"
"                     +FLAGS \\Seen, IDLE/DONE (if offered), LOGOUT; per iteration\n"
"  imap-append        APPEND of --min-size..--max-size messages to 'Bench'\n"
"  imap-fetch-bodies  FETCH BODY.PEEK[] of random messages of INBOX\n"
"  imap-idle-fanout   one appender on account 1, the other clients IDLE (see\n"
"                     --fanout-accounts, --idle-port); latency from the APPEND sent\n"
"                     and from its tagged OK to each EXISTS (SKIP without IDLE)\n"
"  imap-idle-memory   --clients sessions selected and idle; memory of --pids (and\n"
"                     descendants) before and after, KiB per session\n"
"  pop3-download      USER/PASS, STAT, UIDL, RETR all, QUIT; per iteration\n"
"  lmtp-deliver       LHLO, then MAIL/RCPT/DATA of ~10 KB messages to round-robin\n"
"                     accounts (SKIP without --lmtp-port)\n"
"  fill               top every account's INBOX up to --messages messages\n"
"                     (deterministic content: two servers get the same mail)\n"
"  imap-big-mailbox   one session on account 1's (large) INBOX: SELECT, UID FETCH\n"
"                     1:* (UID FLAGS), SEARCH UNSEEN, SEARCH FROM, UNSELECT, each\n"
"                     timed to its tagged OK; --warmup rounds first, uncounted\n"
"\n"
"options:\n"
"  --host H             server address (default 127.0.0.1; loopback only\n"
"                       unless --allow-remote)\n"
"  --imap-port P --pop3-port P --lmtp-port P\n"
"  --user-pattern PAT   account names, one %%d numbered from 1 (bench%%d@example.com)\n"
"  --users N            accounts 1..N (default 20)\n"
"  --password P         the password of every account (default bench)\n"
"  --clients N          concurrent connections (default 8)\n"
"  --duration S         seconds before no new iteration starts (default 10)\n"
"  --count N            stop after N iterations (default 0: no limit)\n"
"  --timeout S          seconds per operation (default 10)\n"
"  --messages N         fill: messages per INBOX (default 500)\n"
"  --min-size B --max-size B  message sizes in bytes (default per workload)\n"
"  --headers N          imap-sync: newest N headers (default 50)\n"
"  --bodies N           imap-sync: bodies fetched (default 3)\n"
"  --idle-ms MS         imap-sync: time in IDLE before DONE (default 0)\n"
"  --pids P1,P2         imap-idle-memory: supervisor PIDs to measure\n"
"  --settle S           imap-idle-memory: wait before reading memory (default 2)\n"
"  --use-idle           imap-idle-memory: IDLE when the server offers it\n"
"  --ramp N             idle workloads: at most N logins in flight (default 16)\n"
"  --seed N             random seed (default 1)\n"
"  --label NAME         server=NAME in RESULT lines (default: server)\n"
"  --name NAME          workload=NAME in RESULT/SUMMARY lines (default: the workload)\n"
"  --search-from S      imap-big-mailbox: SEARCH FROM \"S\" (default sender1@example.org)\n"
"  --warmup N           imap-big-mailbox: uncounted rounds first (default 1)\n"
"  --idle-port P        imap-idle-fanout: the idlers' IMAP port, e.g. another\n"
"                       frontend's (default: --imap-port, which the appender uses)\n"
"  --fanout-accounts N  imap-idle-fanout: idlers spread over accounts 1..N; only\n"
"                       account 1's see the APPENDs, the rest are load (default 1)\n"
"  --setup S            imap-idle-fanout: seconds to log the idlers in (default 60)\n"
"  --source-addrs N     connect from 127.0.0.2..127.0.0.N+1 (loopback IPv4 only):\n"
"                       one source address has only ~28,000 ephemeral ports\n"
"  --procs K            imap-idle-memory: K processes share the sessions (one\n"
"                       process holds at most RLIMIT_NOFILE descriptors)\n"
"  --tls                implicit TLS (point --imap-port at an IMAPS port)\n"
"  --tls-ca FILE        verify the server's certificate against FILE\n"
"  --allow-remote       permit a non-loopback --host\n"
"  --quiet              only RESULT/SUMMARY/SKIP lines\n");
}

static long parse_long(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "petrel-bench: %s: '%s' is not a whole number in %ld..%ld\n", opt, s, lo,
                hi);
        exit(2);
    }
    return v;
}

static double parse_double(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "petrel-bench: %s: '%s' is not a number in %g..%g\n", opt, s, lo, hi);
        exit(2);
    }
    return v;
}

static void check_pattern(const char *p)
{
    int d = 0;
    for (const char *q = p; *q; q++) {
        if (*q == '%') {
            if (q[1] == 'd')
                d++;
            else if (q[1] != '%') {
                fprintf(stderr, "petrel-bench: --user-pattern: only %%d and %%%% are allowed\n");
                exit(2);
            }
            q++;
        } else if ((unsigned char)*q <= ' ' || *q == '"' || *q == '\\' || *q == '<' || *q == '>') {
            fprintf(stderr, "petrel-bench: --user-pattern: no spaces, quotes, backslashes or <>\n");
            exit(2);
        }
    }
    if (d != 1 || strlen(p) > 200) {
        fprintf(stderr, "petrel-bench: --user-pattern needs exactly one %%d (and < 200 bytes)\n");
        exit(2);
    }
}

static void parse_args(int argc, char **argv)
{
    enum { O_HOST = 256, O_IMAP, O_POP3, O_LMTP, O_PATTERN, O_USERS, O_PASSWORD, O_CLIENTS,
           O_DURATION, O_COUNT, O_TIMEOUT, O_WORKLOAD, O_PIDS, O_MESSAGES, O_MIN, O_MAX,
           O_HEADERS, O_BODIES, O_IDLE_MS, O_SETTLE, O_USE_IDLE, O_RAMP, O_SEED, O_LABEL, O_REMOTE,
           O_QUIET, O_HELP, O_NAME, O_SEARCH_FROM, O_WARMUP, O_IDLE_PORT, O_FANOUT_ACCOUNTS,
           O_SETUP, O_SOURCE_ADDRS, O_PROCS, O_TLS, O_TLS_CA };
    static const struct option opts[] = {
        { "host", 1, 0, O_HOST }, { "imap-port", 1, 0, O_IMAP }, { "pop3-port", 1, 0, O_POP3 },
        { "lmtp-port", 1, 0, O_LMTP }, { "user-pattern", 1, 0, O_PATTERN },
        { "users", 1, 0, O_USERS }, { "password", 1, 0, O_PASSWORD },
        { "clients", 1, 0, O_CLIENTS }, { "duration", 1, 0, O_DURATION },
        { "count", 1, 0, O_COUNT }, { "timeout", 1, 0, O_TIMEOUT },
        { "workload", 1, 0, O_WORKLOAD }, { "pids", 1, 0, O_PIDS },
        { "messages", 1, 0, O_MESSAGES }, { "min-size", 1, 0, O_MIN },
        { "max-size", 1, 0, O_MAX }, { "headers", 1, 0, O_HEADERS },
        { "bodies", 1, 0, O_BODIES }, { "idle-ms", 1, 0, O_IDLE_MS },
        { "settle", 1, 0, O_SETTLE }, { "use-idle", 0, 0, O_USE_IDLE },
        { "ramp", 1, 0, O_RAMP },
        { "seed", 1, 0, O_SEED }, { "label", 1, 0, O_LABEL },
        { "allow-remote", 0, 0, O_REMOTE }, { "quiet", 0, 0, O_QUIET },
        { "help", 0, 0, O_HELP }, { "name", 1, 0, O_NAME },
        { "search-from", 1, 0, O_SEARCH_FROM }, { "warmup", 1, 0, O_WARMUP },
        { "idle-port", 1, 0, O_IDLE_PORT }, { "fanout-accounts", 1, 0, O_FANOUT_ACCOUNTS },
        { "setup", 1, 0, O_SETUP }, { "source-addrs", 1, 0, O_SOURCE_ADDRS },
        { "procs", 1, 0, O_PROCS }, { "tls", 0, 0, O_TLS }, { "tls-ca", 1, 0, O_TLS_CA },
        { 0, 0, 0, 0 },
    };
    cfg = (struct config){ .host = "127.0.0.1", .user_pattern = "bench%d@example.com",
                           .users = 20, .password = "bench", .clients = 8, .duration = 10,
                           .timeout = 10, .messages = 500, .headers = 50, .bodies = 3,
                           .settle = 2, .ramp = 16, .seed = 1, .label = "server",
                           .search_from = "sender1@example.org", .warmup = 1,
                           .fanout_accounts = 1, .setup = 60, .procs = 1 };
    long min = -1, max = -1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, 0)) != -1) {
        switch (o) {
        case O_HOST: cfg.host = optarg; break;
        case O_IMAP: cfg.imap_port = (int)parse_long("--imap-port", optarg, 1, 65535); break;
        case O_POP3: cfg.pop3_port = (int)parse_long("--pop3-port", optarg, 1, 65535); break;
        case O_LMTP: cfg.lmtp_port = (int)parse_long("--lmtp-port", optarg, 1, 65535); break;
        case O_PATTERN: cfg.user_pattern = optarg; break;
        case O_USERS: cfg.users = (int)parse_long("--users", optarg, 1, 10000000); break;
        case O_PASSWORD: cfg.password = optarg; break;
        case O_CLIENTS: cfg.clients = (int)parse_long("--clients", optarg, 1, 200000); break;
        case O_DURATION: cfg.duration = parse_double("--duration", optarg, 0.1, 86400); break;
        case O_COUNT: cfg.count = parse_long("--count", optarg, 0, 1000000000000L); break;
        case O_TIMEOUT: cfg.timeout = parse_double("--timeout", optarg, 0.05, 3600); break;
        case O_WORKLOAD: cfg.workload = optarg; break;
        case O_PIDS: cfg.pids = optarg; break;
        case O_MESSAGES: cfg.messages = (int)parse_long("--messages", optarg, 1, 10000000); break;
        case O_MIN: min = parse_long("--min-size", optarg, 200, 50L << 20); break;
        case O_MAX: max = parse_long("--max-size", optarg, 200, 50L << 20); break;
        case O_HEADERS: cfg.headers = (int)parse_long("--headers", optarg, 1, 100000); break;
        case O_BODIES: cfg.bodies = (int)parse_long("--bodies", optarg, 0, 10000); break;
        case O_IDLE_MS: cfg.idle_ms = parse_double("--idle-ms", optarg, 0, 3600e3); break;
        case O_SETTLE: cfg.settle = parse_double("--settle", optarg, 0, 600); break;
        case O_USE_IDLE: cfg.use_idle = true; break;
        case O_RAMP: cfg.ramp = (int)parse_long("--ramp", optarg, 1, 100000); break;
        case O_SEED: cfg.seed = (unsigned long)parse_long("--seed", optarg, 0, LONG_MAX); break;
        case O_LABEL: cfg.label = optarg; break;
        case O_REMOTE: cfg.allow_remote = true; break;
        case O_QUIET: cfg.quiet = true; break;
        case O_HELP: usage(stdout); exit(0);
        case O_NAME: cfg.name = optarg; break;
        case O_SEARCH_FROM: cfg.search_from = optarg; break;
        case O_WARMUP: cfg.warmup = (int)parse_long("--warmup", optarg, 0, 1000); break;
        case O_IDLE_PORT: cfg.idle_port = (int)parse_long("--idle-port", optarg, 1, 65535); break;
        case O_FANOUT_ACCOUNTS:
            cfg.fanout_accounts = (int)parse_long("--fanout-accounts", optarg, 1, 10000000);
            break;
        case O_SETUP: cfg.setup = parse_double("--setup", optarg, 1, 3600); break;
        case O_SOURCE_ADDRS:
            cfg.source_addrs = (int)parse_long("--source-addrs", optarg, 0, 250);
            break;
        case O_PROCS: cfg.procs = (int)parse_long("--procs", optarg, 1, 64); break;
        case O_TLS: cfg.tls = true; break;
        case O_TLS_CA: cfg.tls_ca = optarg; break;
        default: usage(stderr); exit(2);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "petrel-bench: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (!cfg.workload) {
        fprintf(stderr, "petrel-bench: --workload is required\n");
        usage(stderr);
        exit(2);
    }
    for (size_t i = 0; i < NWORKLOADS; i++)
        if (strcmp(workloads[i].name, cfg.workload) == 0)
            R.w = &workloads[i];
    if (!R.w) {
        fprintf(stderr, "petrel-bench: unknown workload '%s' (see --help)\n", cfg.workload);
        exit(2);
    }
    check_pattern(cfg.user_pattern);
    if (!cfg.name)
        cfg.name = R.w->name;
    for (const char *p = cfg.name; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '=') {
            fprintf(stderr, "petrel-bench: --name: no spaces or '='\n");
            exit(2);
        }
    for (const char *p = cfg.search_from; *p; p++)
        if ((unsigned char)*p < ' ' || *p == '"' || *p == '\\' || *p == 127) {
            fprintf(stderr, "petrel-bench: --search-from: no control characters, quotes or "
                            "backslashes\n");
            exit(2);
        }
    if (cfg.procs > 1 && strcmp(R.w->name, "imap-idle-memory") != 0) {
        fprintf(stderr, "petrel-bench: --procs is for imap-idle-memory\n");
        exit(2);
    }
    if (cfg.procs > cfg.clients)
        cfg.procs = cfg.clients;
    for (const char *p = cfg.password; *p; p++)
        if ((unsigned char)*p < ' ' || *p == '"' || *p == '\\' || *p == 127) {
            fprintf(stderr, "petrel-bench: --password: no control characters, quotes or "
                            "backslashes\n");
            exit(2);
        }
    if (!cfg.password[0] || strlen(cfg.password) > 200) {
        fprintf(stderr, "petrel-bench: --password must be 1..200 bytes\n");
        exit(2);
    }
    for (const char *p = cfg.label; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '=') {
            fprintf(stderr, "petrel-bench: --label: no spaces or '='\n");
            exit(2);
        }
    if (cfg.pids)
        for (const char *p = cfg.pids; *p; p++)
            if (!(*p >= '0' && *p <= '9') && *p != ',') {
                fprintf(stderr, "petrel-bench: --pids takes PIDs separated by commas\n");
                exit(2);
            }
    cfg.msg_min = min >= 0 ? (int)min : R.w->default_min ? R.w->default_min : 5000;
    cfg.msg_max = max >= 0 ? (int)max : R.w->default_max ? R.w->default_max : 50000;
    if (min >= 0 && max < 0 && cfg.msg_max < cfg.msg_min)
        cfg.msg_max = cfg.msg_min;
    if (max >= 0 && min < 0 && cfg.msg_min > cfg.msg_max)
        cfg.msg_min = cfg.msg_max;
    if (cfg.msg_min > cfg.msg_max) {
        fprintf(stderr, "petrel-bench: --min-size is larger than --max-size\n");
        exit(2);
    }
}

/* Resolves the port the workload needs (and checks that it was given). */
static void resolve(void)
{
    int port = R.w->proto == PROTO_IMAP ? cfg.imap_port
             : R.w->proto == PROTO_POP3 ? cfg.pop3_port : cfg.lmtp_port;
    const char *flag = R.w->proto == PROTO_IMAP ? "--imap-port"
                     : R.w->proto == PROTO_POP3 ? "--pop3-port" : "--lmtp-port";
    if (!port) {
        if (R.w->proto == PROTO_LMTP)
            return;   /* SKIP, said by lmtp_prepare */
        fprintf(stderr, "petrel-bench: %s needs %s\n", R.w->name, flag);
        exit(2);
    }
    char err[256];
    if (!resolve_host(cfg.host, port, &cfg.addr[R.w->proto], &cfg.addrlen[R.w->proto],
                      cfg.allow_remote, err, sizeof err) ||
        (cfg.idle_port && !resolve_host(cfg.host, cfg.idle_port, &cfg.alt_addr, &cfg.alt_addrlen,
                                        cfg.allow_remote, err, sizeof err))) {
        fprintf(stderr, "petrel-bench: %s\n", err);
        exit(2);
    }
    const struct sockaddr_in *in = (const void *)&cfg.addr[R.w->proto];
    if (cfg.source_addrs > 0 &&
        (in->sin_family != AF_INET || (ntohl(in->sin_addr.s_addr) >> 24) != 127)) {
        fprintf(stderr, "petrel-bench: --source-addrs needs an IPv4 loopback --host\n");
        exit(2);
    }
    if (cfg.tls && !tls_init())
        exit(2);
}

/* --procs K: the sessions of imap-idle-memory are shared by K child
 * processes, because one process may not hold more descriptors than its
 * hard limit (RLIMIT_NOFILE, which only a privileged process can raise).
 * The parent reads the memory before forking, waits for every child to
 * report its sessions ready (or for the deadline), lets them settle, reads
 * the memory again, then releases them. Returns -1 in a child (which runs
 * its share as usual), else the exit status. */
static int run_procs(void)
{
    memory_prepare();
    int k = cfg.procs;
    pid_t *pids = calloc((size_t)k, sizeof *pids);
    int *status = calloc((size_t)k, sizeof *status), *release = calloc((size_t)k, sizeof *release);
    int base = 0;
    for (int i = 0; i < k; i++) {
        int share = cfg.clients / k + (i < cfg.clients % k ? 1 : 0);
        int sp[2], rp[2];
        if (pipe2(sp, O_CLOEXEC) < 0 || pipe2(rp, O_CLOEXEC) < 0) {
            perror("petrel-bench: pipe");
            exit(1);
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("petrel-bench: fork");
            exit(1);
        }
        if (pid == 0) {
            for (int j = 0; j < i; j++)
                close(status[j]), close(release[j]);
            close(sp[0]);
            close(rp[1]);
            child.status_fd = sp[1];
            child.release_fd = rp[0];
            cfg.clients = share;
            cfg.id_base = base;
            cfg.procs = 1;
            free(pids), free(status), free(release);
            return -1;
        }
        close(sp[1]);
        close(rp[0]);
        pids[i] = pid;
        status[i] = sp[0];
        release[i] = rp[1];
        base += share;
    }
    /* Each child reports at the latest at its own deadline. */
    double until = now_s() + cfg.duration + 5;
    int ready = 0, reported = 0;
    char line[64];
    while (reported < k && now_s() < until) {
        struct pollfd pf[k];
        for (int i = 0; i < k; i++)
            pf[i] = (struct pollfd){ .fd = status[i], .events = status[i] >= 0 ? POLLIN : 0 };
        if (poll(pf, (nfds_t)k, 200) <= 0)
            continue;
        for (int i = 0; i < k; i++) {
            if (status[i] < 0 || !(pf[i].revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t n = read(status[i], line, sizeof line - 1);
            int v = 0;
            if (n > 0) {
                line[n] = 0;
                if (sscanf(line, "READY %d", &v) == 1)
                    ready += v;
            }
            close(status[i]);
            status[i] = -1;
            reported++;
        }
    }
    struct timespec ts = { (time_t)cfg.settle, (long)((cfg.settle - (double)(time_t)cfg.settle) * 1e9) };
    nanosleep(&ts, 0);
    mem_read(cfg.pids, &R.mem1);
    R.measured = true;
    R.measured_clients = ready;
    for (int i = 0; i < k; i++) {
        if (status[i] >= 0)
            close(status[i]);
        close(release[i]);
    }
    int rc = 0;
    for (int i = 0; i < k; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
    }
    fflush(stdout);
    if (!cfg.quiet)
        fprintf(stderr, "petrel-bench: %d of %d sessions were ready in %d processes\n", ready,
                cfg.clients, k);
    memory_summary();
    free(pids), free(status), free(release);
    return ready > 0 ? rc : 1;
}

/* Enough descriptors for every client (and a few for /proc). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = (rlim_t)cfg.clients + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        fprintf(stderr, "petrel-bench: --clients %d needs %lu file descriptors, the limit is %lu\n",
                cfg.clients, (unsigned long)want, (unsigned long)rl.rlim_cur);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    parse_args(argc, argv);
    resolve();
    if (cfg.procs > 1) {
        int rc = run_procs();
        if (rc >= 0)
            return rc;
    }
    raise_fd_limit();
    loop = EV_DEFAULT;

    R.op_connect = stat_op("connect");
    if (R.w->proto == PROTO_IMAP) {
        R.op_login = stat_op("LOGIN");
        R.op_capa = stat_op("CAPABILITY");
        R.op_select = stat_op("SELECT");
        R.op_logout = stat_op("LOGOUT");
    }
    R.op_iter = -1;
    R.ncl = cfg.clients + (R.w->start == fanout_start ? 1 : 0);
    R.cl = calloc((size_t)R.ncl, sizeof *R.cl);
    for (int i = 0; i < R.ncl; i++)
        client_init(&R.cl[i], cfg.id_base + i, R.w->proto);
    ev_init(&R.event_timer, on_event_timeout);
    ev_init(&settle_timer, on_settled);

    int prep = R.w->prepare();
    if (R.op_iter < 0)
        R.op_iter = stat_op("session");
    if (prep != 0 || R.skipped) {
        printf("SKIP server=%s workload=%s reason=\"%s\"\n", cfg.label, cfg.name, R.skip_reason);
        return 0;
    }
    if (!cfg.quiet)
        fprintf(stderr,
                "petrel-bench: %s against %s (%s port %d), %d clients, %d accounts, %gs%s\n",
                R.w->name, cfg.host,
                R.w->proto == PROTO_IMAP ? "IMAP" : R.w->proto == PROTO_POP3 ? "POP3" : "LMTP",
                R.w->proto == PROTO_IMAP ? cfg.imap_port
                : R.w->proto == PROTO_POP3 ? cfg.pop3_port : cfg.lmtp_port,
                cfg.clients, cfg.users, cfg.duration, cfg.count ? ", count-bounded" : "");

    R.t_start = now_s();
    /* imap-idle-fanout measures from its first event on; logging its
     * idlers in may take up to SETUP_TIME more. */
    double setup = R.w->start == fanout_start ? cfg.setup : 0;
    R.deadline = R.t_start + cfg.duration + setup;
    stat_window(R.t_start, R.deadline);
    R.active = R.ncl;
    ev_timer_init(&R.stop_timer, on_stop, cfg.duration + setup, 0);
    ev_timer_start(loop, &R.stop_timer);
    ev_timer_init(&R.hard_timer, on_hard_stop, cfg.duration + setup + cfg.timeout + 2, 0);
    ev_timer_start(loop, &R.hard_timer);
    ev_signal_init(&R.sigint, on_signal, SIGINT);
    ev_signal_start(loop, &R.sigint);
    ev_signal_init(&R.sigterm, on_signal, SIGTERM);
    ev_signal_start(loop, &R.sigterm);

    if (R.w->start == fanout_start) {
        ev_timer_init(&R.setup_timer, on_setup_spent, cfg.setup, 0);
        ev_timer_start(loop, &R.setup_timer);
        /* The appender first: it finds out whether IDLE is there. */
        fanout_start(&R.cl[0]);
    } else {
        for (int i = 0; i < R.ncl; i++)
            R.w->start(&R.cl[i]);
    }
    if (R.active > 0)
        ev_run(loop, 0);

    if (R.skipped) {
        printf("SKIP server=%s workload=%s reason=\"%s\"\n", cfg.label, cfg.name, R.skip_reason);
        return 0;
    }
    for (int i = 0; i < R.ncl; i++)
        client_close(&R.cl[i]);
    if (R.aborted && !cfg.quiet)
        fprintf(stderr, "petrel-bench: %ld operations were still in flight at the hard stop\n",
                R.aborted);
    if (R.failures_logged > 10 && !cfg.quiet)
        fprintf(stderr, "petrel-bench: %ld more failures not shown\n", R.failures_logged - 10);
    if (!cfg.quiet)
        printf("# %s: %s per iteration\n", cfg.name, R.w->what);
    stat_print(cfg.name);
    if (R.w->summary)
        R.w->summary();
    print_summaries();
    return stat_count(R.op_iter) > 0 ? 0 : 1;
}
