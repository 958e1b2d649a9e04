/* The frontend's side of the RPC: backend_links persistent links to every
 * configured backend per worker, requests spread over the links that are up,
 * responses matched to calls by id, reconnection with backoff, and a retry on
 * another backend for read-only requests that a dying link left unanswered.
 *
 * Several links per backend because a backend's workers each listen on the
 * port with SO_REUSEPORT and the kernel hands each new link to one of them by
 * a hash: with one link per frontend worker, two frontend workers had both
 * links on the same backend worker about half the time, and that worker's
 * database connections carried all the load while the other's sat idle
 * (imap-append: 16 sessions queued on 4 PostgreSQL connections).
 *
 * A configured name (a Kubernetes headless Service) gets backend_links links
 * per address it resolves to, looked up again every backends_refresh seconds
 * (backend_addrs.c): new addresses get links, and the links of an address
 * that disappeared are retired: no new calls, closed and freed once their
 * calls end. */
#include "frontend.h"

#include "backend_addrs.h"

#include "frame.h"
#include "frontend_metrics.h"
#include "log.h"
#include "net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINKS 1024                      /* links, retiring ones included */
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 5.0
#define BACKOFF_WAITING 0.5                 /* the most while calls wait for a link */
#define CALL_BUCKETS 1024   /* calls hashed by id, per link */

struct link;

struct rpc_call {
    uint64_t id;
    unsigned flags;
    rpc_cb *cb;
    void *ctx;
    struct link *link;                       /* sent on; NULL while it waits for one */
    /* In one list at most: its link's hash bucket (sent), the waiting
     * list (unsent), or a list a function is failing or resending. Unlinked
     * in O(1) by call_free, so a callback may free any other call. */
    struct rpc_call *next, **prev;
    struct rpc_call **owner;                 /* the owner's list */
    struct rpc_call *onext, **oprev;         /* in the owner's list */
    bool answered;                           /* a response arrived */
    bool fail_now;                           /* waiting, and must not wait any more */
    uint8_t *saved;                          /* packed request, for a retry */
    size_t saved_len;
    double t0;                               /* sent at (metrics) */
    int m_op;                                /* op label (metrics) */
};

struct link {
    char *addr;
    struct conn conn;
    bool up;
    bool in_use;                             /* conn initialised */
    double backoff;
    ev_timer retry;
    struct rpc_call *calls[CALL_BUCKETS];
    long inflight;
    bool going_away;                         /* the backend drains: no new calls */
    int target;                              /* its entry in the backends setting */
    bool retired;                            /* left DNS: no new calls, freed once idle */
};

static struct link *links[MAX_LINKS];
static int nlinks;
static struct backend_target *targets;
static int ntargets;
static struct backend_resolver *resolver;
static ev_timer refresh_timer;
static unsigned rr;
static uint64_t next_id = 1;
static struct rpc_call *unsent;              /* calls waiting for a link, newest first */
static ev_timer unsent_timer;

static void link_connect(struct link *l);
static void link_free(struct link *l);

static struct rpc_call **bucket(struct link *l, uint64_t id) { return &l->calls[id % CALL_BUCKETS]; }

static void list_push(struct rpc_call **head, struct rpc_call *c)
{
    c->next = *head;
    if (c->next)
        c->next->prev = &c->next;
    c->prev = head;
    *head = c;
}

static void list_unlink(struct rpc_call *c)
{
    if (!c->prev)
        return;
    *c->prev = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = NULL;
    c->prev = NULL;
}

static void hash_remove(struct rpc_call *c)
{
    if (!c->link)
        return;
    list_unlink(c);
    c->link->inflight--;
    metrics_add(FM_RPC_INFLIGHT, NULL, -1);
    if ((c->link->going_away || c->link->retired) && c->link->inflight == 0)
        conn_close(&c->link->conn, c->link->retired ? "backend address gone"
                                                    : "backend shutting down");
    c->link = NULL;
}

static void owner_remove(struct rpc_call *c)
{
    if (!c->oprev)
        return;
    *c->oprev = c->onext;
    if (c->onext)
        c->onext->oprev = c->oprev;
    c->oprev = NULL;
}

static void call_free(struct rpc_call *c)
{
    hash_remove(c);
    list_unlink(c);
    owner_remove(c);
    free(c->saved);
    free(c);
}

/* The usable link with the fewest calls in flight, the first such after the
 * last pick on a tie. Links do not say which backend worker holds them, and
 * the hash can give one worker more of them than another; a worker that
 * falls behind keeps calls longer, so fewest-in-flight sends it less.
 * Round-robin alone had the worker with 6 of 8 links take 3/4 of the
 * APPENDs and queue them for its 4 database connections. */
static struct link *pick_link(struct link *avoid)
{
    struct link *best = NULL;
    unsigned best_k = 0;
    for (int i = 0; i < nlinks; i++) {
        unsigned k = (rr + (unsigned)i) % (unsigned)nlinks;
        struct link *l = links[k];
        if (l->up && !l->going_away && !l->retired && l != avoid &&
            (!best || l->inflight < best->inflight)) {
            best = l;
            best_k = k;
        }
    }
    if (best)
        rr = best_k + 1;
    return best;
}

static void send_saved(struct link *l, struct rpc_call *c)
{
    uint8_t hdr[FRAME_HEADER_SIZE] = { (uint8_t)(c->saved_len >> 24), (uint8_t)(c->saved_len >> 16),
                                       (uint8_t)(c->saved_len >> 8), (uint8_t)c->saved_len };
    conn_write(&l->conn, hdr, sizeof hdr);
    conn_write(&l->conn, c->saved, c->saved_len);
    c->link = l;
    list_push(bucket(l, c->id), c);
    l->inflight++;
    metrics_add(FM_RPC_INFLIGHT, NULL, 1);
}

/* A call's final answer (or failure), for the metrics. */
static void call_finished(const struct rpc_call *c, int status)
{
    metrics_inc(FM_RPC_REQUESTS, (int[]){ c->m_op, fm_status(status) });
    metrics_observe(FM_RPC_DURATION, (int[]){ c->m_op }, metrics_now() - c->t0);
}

static void fail_call(struct rpc_call *c, const char *why)
{
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.id = c->id;
    resp.status = PETREL__STATUS__TEMPFAIL;
    resp.text = (char *)why;
    rpc_cb *cb = c->cb;
    void *ctx = c->ctx;
    call_finished(c, PETREL__STATUS__TEMPFAIL);
    call_free(c);
    cb(&resp, ctx);
}

/* A call's first send; only a retryable call keeps its bytes after it. */
static void dispatch(struct link *l, struct rpc_call *c)
{
    send_saved(l, c);
    if (!(c->flags & RPC_RETRYABLE)) {
        free(c->saved);
        c->saved = NULL;
    }
}

/* Calls wait up to backend_wait for a link: a backend restarting, or a
 * worker whose links are still in their reconnect backoff when another
 * worker's are up (the frontend is ready then, and a client's LOGIN landing
 * on this worker failed). A link that comes up takes them (on_connect). */
static void arm_unsent_timer(double after)
{
    ev_timer_stop(frontend->loop, &unsent_timer);
    ev_timer_set(&unsent_timer, after > 0 ? after : 0, 0);
    ev_timer_start(frontend->loop, &unsent_timer);
}

/* Links sleeping out a reconnect backoff (up to BACKOFF_MAX) try now and
 * back off from BACKOFF_MIN again: when a call starts to wait (once per
 * waiting period, not per call), so a backend that comes back during the
 * wait is found within it, and when a backend drains (link_going_away). */
static void kick_links(void)
{
    for (int i = 0; i < nlinks; i++) {
        struct link *l = links[i];
        if (!l->in_use && !l->retired && ev_is_active(&l->retry)) {
            ev_timer_stop(frontend->loop, &l->retry);
            l->backoff = BACKOFF_MIN;
            link_connect(l);
        }
    }
}

static void fail_unsent(struct ev_loop *loop, ev_timer *t, int revents)
{
    double wait = (double)frontend->cfg->backend_wait, now = metrics_now(), next = -1;
    struct rpc_call *due = NULL, *c, *after;
    for (c = unsent; c; c = after) {
        after = c->next;
        double left = c->t0 + wait - now;
        if (c->fail_now || left <= 0) {
            list_unlink(c);
            list_push(&due, c);
        } else if (next < 0 || left < next) {
            next = left;
        }
    }
    while (due)   /* fail_call frees (unlinks) it; its callback may free others */
        fail_call(due, "No backend available");
    if (next >= 0)
        arm_unsent_timer(next);
}

/* Sends the waiting calls on l, oldest first. Those that must fail stay
 * for the timer: no callback runs from here. */
static void send_unsent(struct link *l)
{
    struct rpc_call *oldest_first = NULL, *c, *after;
    for (c = unsent; c; c = after) {   /* the list is newest first */
        after = c->next;
        if (!c->fail_now) {
            list_unlink(c);
            list_push(&oldest_first, c);
        }
    }
    while (oldest_first) {
        c = oldest_first;
        list_unlink(c);
        dispatch(l, c);
    }
    if (!unsent)
        ev_timer_stop(frontend->loop, &unsent_timer);
}

struct rpc_call *rpc_call(Petrel__Request *req, unsigned flags, rpc_cb *cb, void *ctx,
                          struct rpc_call **owner)
{
    struct rpc_call *c = calloc(1, sizeof *c);
    c->id = next_id++;
    c->flags = flags;
    c->cb = cb;
    c->ctx = ctx;
    c->t0 = metrics_now();
    c->m_op = fm_op((int)req->op_case);
    req->id = c->id;
    c->saved_len = protobuf_c_message_get_packed_size(&req->base);
    c->saved = malloc(c->saved_len + 1);
    protobuf_c_message_pack(&req->base, c->saved);
    c->owner = owner;
    c->onext = *owner;
    if (c->onext)
        c->onext->oprev = &c->onext;
    c->oprev = owner;
    *owner = c;
    struct link *l = pick_link(NULL);
    if (!l) {
        /* Failed from the loop, never from inside rpc_call itself, so
         * callers need not handle a re-entrant callback. */
        list_push(&unsent, c);
        if (!ev_is_active(&unsent_timer)) {
            arm_unsent_timer((double)frontend->cfg->backend_wait);
            kick_links();
        }
        return c;
    }
    dispatch(l, c);
    return c;
}

void rpc_follow(struct rpc_call *c, Petrel__Request *req)
{
    if (c && !c->link) {
        /* A stream's next frame with nowhere to go: end the call rather
         * than send its start later without this frame. */
        c->fail_now = true;
        arm_unsent_timer(0);
        return;
    }
    if (!c)
        return;
    req->id = c->id;
    frame_append(&c->link->conn.out, &req->base);
    conn_wake_writer(&c->link->conn);
}

void rpc_cancel(struct rpc_call *c)
{
    if (!c)
        return;
    if (c->link && c->link->up) {
        Petrel__Request req = PETREL__REQUEST__INIT;
        Petrel__Cancel cancel = PETREL__CANCEL__INIT;
        req.op_case = PETREL__REQUEST__OP_CANCEL;
        req.cancel = &cancel;
        rpc_follow(c, &req);
    }
    call_free(c);
}

void rpc_cancel_all(struct rpc_call **owner)
{
    while (*owner)
        rpc_cancel(*owner);
}

/* Id 0 answers no call: the backend is draining ("go away"). It finishes what
 * it has; new calls go elsewhere, and the link closes once it carries none,
 * so no request can be in transit when it goes. */
static void link_going_away(struct link *l)
{
    if (l->going_away)
        return;
    l->going_away = true;
    log_info("\"backend draining, moving off its link\" backend=%s inflight=%ld", l->addr,
             l->inflight);
    if (l->inflight == 0)
        conn_close(&l->conn, "backend shutting down");
    /* In a rolling restart the backend restarted just before this one may be
     * back already while our link to it sits in its backoff: the capacity
     * left must not wait for that, so every waiting link tries now (and
     * names are looked up again: a replacement pod has a new address). */
    kick_links();
    if (resolver)
        backend_resolver_kick(resolver);
}

static void on_response(struct link *l, const Petrel__Response *resp)
{
    if (resp->id == 0) {
        link_going_away(l);
        return;
    }
    struct rpc_call *c = *bucket(l, resp->id);
    while (c && c->id != resp->id)
        c = c->next;
    if (!c)
        return;   /* a cancelled call's late answer */
    c->answered = true;
    rpc_cb *cb = c->cb;
    void *ctx = c->ctx;
    if (!resp->more) {
        call_finished(c, resp->status);
        call_free(c);
    }
    cb(resp, ctx);
}

static void on_read(struct conn *cn)
{
    struct link *l = cn->ctx;
    const uint8_t *payload;
    size_t len;
    int rc;
    while (!cn->closed && (rc = frame_peek(&cn->in, (size_t)frontend->cfg->rpc_max_frame, &payload, &len)) != 0) {
        if (rc < 0) {
            log_error("\"rpc frame over the size limit, closing link\" backend=%s", l->addr);
            conn_close(cn, "frame too large");
            return;
        }
        Petrel__Response *resp = petrel__response__unpack(NULL, len, payload);
        frame_consume(&cn->in, len);
        if (!resp) {
            log_error("\"malformed rpc frame, closing link\" backend=%s", l->addr);
            conn_close(cn, "malformed frame");
            return;
        }
        on_response(l, resp);
        petrel__response__free_unpacked(resp, NULL);
    }
}

static void on_connect(struct conn *cn)
{
    struct link *l = cn->ctx;
    l->up = true;
    l->going_away = false;
    l->backoff = BACKOFF_MIN;
    metrics_add(FM_BACKEND_LINKS_UP, NULL, 1);
    log_info("\"backend link up\" backend=%s", l->addr);
    send_unsent(l);
}

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents) { link_connect(t->data); }

/* Every call on a lost link is retried elsewhere when it is read-only and
 * unanswered, else failed: its side effects may or may not have happened. */
static void on_close(struct conn *cn, const char *reason)
{
    struct link *l = cn->ctx;
    if (l->up)
        metrics_add(FM_BACKEND_LINKS_UP, NULL, -1);
    if (l->up && l->retired)
        log_info("\"backend link closed: address gone\" backend=%s", l->addr);
    else if (l->up && l->going_away)
        log_info("\"backend link closed: backend draining\" backend=%s", l->addr);
    else if (l->up)
        log_warn("\"backend link lost\" backend=%s reason=\"%s\"", l->addr, reason);
    if (l->going_away)
        l->backoff = BACKOFF_MIN;   /* its replacement may be up soon */
    l->going_away = false;
    l->up = false;
    l->in_use = false;
    conn_release(cn);
    struct rpc_call *orphans = NULL;
    for (int b = 0; b < CALL_BUCKETS; b++)
        while (l->calls[b]) {
            struct rpc_call *c = l->calls[b];
            list_unlink(c);
            c->link = NULL;
            list_push(&orphans, c);
        }
    metrics_add(FM_RPC_INFLIGHT, NULL, -l->inflight);
    l->inflight = 0;
    while (orphans) {   /* a failed call's callback may free others of them */
        struct rpc_call *c = orphans;
        list_unlink(c);
        struct link *other = (c->flags & RPC_RETRYABLE) && !c->answered ? pick_link(l) : NULL;
        if (other)
            send_saved(other, c);
        else
            fail_call(c, "Backend connection lost");
    }
    if (l->retired) {
        link_free(l);
        return;
    }
    /* While calls wait for a link, retry often enough to find a backend
     * that came back before their wait runs out. */
    double delay = unsent && l->backoff > BACKOFF_WAITING ? BACKOFF_WAITING : l->backoff;
    ev_timer_set(&l->retry, delay, 0);
    ev_timer_start(frontend->loop, &l->retry);
    l->backoff = l->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : l->backoff * 2;
}

static const struct conn_handler link_handler = {
    .on_read = on_read, .on_close = on_close, .on_connect = on_connect,
};

static void link_connect(struct link *l)
{
    int fd = net_connect(l->addr);
    if (fd < 0) {
        log_warn("\"cannot connect to backend\" backend=%s error=\"%s\"", l->addr, strerror(errno));
        ev_timer_set(&l->retry, l->backoff, 0);
        ev_timer_start(frontend->loop, &l->retry);
        return;
    }
    conn_init_connecting(&l->conn, frontend->loop, fd, &link_handler, l);
    l->conn.read_limit = (size_t)frontend->cfg->rpc_max_frame + FRAME_HEADER_SIZE;
    l->in_use = true;
}

static void link_add(const char *addr, int target)
{
    if (nlinks == MAX_LINKS) {
        log_error("\"too many backend links, ignoring an address\" backend=%s", addr);
        return;
    }
    struct link *l = calloc(1, sizeof *l);
    l->addr = strdup(addr);
    l->target = target;
    l->backoff = BACKOFF_MIN;
    ev_timer_init(&l->retry, retry_cb, 0, 0);
    l->retry.data = l;
    links[nlinks++] = l;
    link_connect(l);
}

static void links_add(const char *addr, int target)
{
    for (long i = 0; i < frontend->cfg->backend_links; i++)
        link_add(addr, target);
}

static void link_free(struct link *l)
{
    ev_timer_stop(frontend->loop, &l->retry);
    for (int i = 0; i < nlinks; i++)
        if (links[i] == l) {
            links[i] = links[--nlinks];
            break;
        }
    free(l->addr);
    free(l);
}

/* Its address left DNS: calls in flight finish, then the link goes. */
static void link_retire(struct link *l)
{
    l->retired = true;
    log_info("\"backend address gone, retiring its link\" backend=%s inflight=%ld", l->addr,
             l->inflight);
    if (!l->in_use)
        link_free(l);   /* waiting to reconnect: nothing to finish */
    else if (l->inflight == 0)
        conn_close(&l->conn, "backend address gone");   /* on_close frees it */
}

/* A new answer for a named entry of the backends setting. */
static void on_resolved(int target, char **addrs, int n, const char *err, void *ctx)
{
    if (n < 0) {
        /* A failed lookup is no reason to drop links that work. */
        log_warn("\"cannot resolve backends, keeping the current links\" name=%s error=\"%s\"",
                 targets[target].spec, err);
        return;
    }
    struct link *cur[MAX_LINKS] = {0};
    char *cur_addr[MAX_LINKS] = {0};
    int ncur = 0;
    for (int i = 0; i < nlinks; i++)
        if (links[i]->target == target && !links[i]->retired) {
            cur[ncur] = links[i];
            cur_addr[ncur++] = links[i]->addr;
        }
    bool keep[MAX_LINKS], *fresh = calloc((size_t)n + 1, sizeof *fresh);
    backend_addrs_diff(cur_addr, ncur, addrs, n, keep, fresh);
    for (int j = 0; j < n; j++)
        if (fresh[j]) {
            log_info("\"backend address added\" name=%s backend=%s", targets[target].spec, addrs[j]);
            links_add(addrs[j], target);
        }
    for (int i = 0; i < ncur; i++)
        if (!keep[i])
            link_retire(cur[i]);
    free(fresh);
    backend_addrs_free(addrs, n);
}

static void refresh_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    backend_resolver_kick(resolver);
}

int rpc_client_start(const char *spec)
{
    ev_timer_init(&unsent_timer, fail_unsent, 0, 0);
    char err[256];
    ntargets = backend_targets_parse(spec, &targets, err, sizeof err);
    if (ntargets < 0) {
        log_error("\"%s\"", err);
        return -1;
    }
    bool named = false;
    for (int i = 0; i < ntargets; i++) {
        if (targets[i].numeric)
            links_add(targets[i].spec, i);
        else
            named = true;
    }
    if (named) {
        /* Names are looked up off the loop; their links come once answered. */
        resolver = backend_resolver_new(frontend->loop, targets, ntargets, on_resolved, NULL);
        backend_resolver_kick(resolver);
        double every = (double)frontend->cfg->backends_refresh;
        ev_timer_init(&refresh_timer, refresh_cb, every, every);
        ev_timer_start(frontend->loop, &refresh_timer);
    }
    return 0;
}

bool rpc_client_ready(void) { return pick_link(NULL) != NULL; }
