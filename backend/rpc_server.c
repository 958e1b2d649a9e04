/* The backend's side of the RPC: accepts frontend links, decodes frames,
 * starts one operation per request and routes follow-up frames (chunks,
 * acks, cancels) to the request they belong to. */
#include "backend.h"

#include "backend_metrics.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct rpc_link {
    struct conn conn;
    struct rpc_req *reqs;       /* in flight */
    int inflight;
    int closed;
    struct rpc_link *lnext, **lprev;   /* every link of the worker */
};

static ev_io accept_watcher;
static bool accepting;
static bool draining;
static struct rpc_link *all_links;

static void link_free_if_done(struct rpc_link *l)
{
    if (l->closed && l->reqs == NULL) {
        *l->lprev = l->lnext;
        if (l->lnext)
            l->lnext->lprev = l->lprev;
        metrics_add(BM_LINKS, NULL, -1);
        conn_release(&l->conn);
        free(l);
        if (draining && !all_links) {
            log_info("\"drained: every frontend link is closed\"");
            ev_break(backend->loop, EVBREAK_ALL);
        }
    }
}

static void unlink_req(struct rpc_req *req)
{
    struct rpc_link *l = req->link;
    if (!l)
        return;
    for (struct rpc_req **pp = &l->reqs; *pp; pp = &(*pp)->next)
        if (*pp == req) {
            *pp = req->next;
            break;
        }
    l->inflight--;
    req->link = NULL;
    link_free_if_done(l);
}

void rpc_done(struct rpc_req *req)
{
    int status = req->m_status >= 0 ? req->m_status : BM_STATUS_CANCELLED;
    int op = bm_op(req->op);
    metrics_inc(BM_REQUESTS, (int[]){ op, bm_status(status) });
    metrics_observe(BM_REQUEST_DURATION, (int[]){ op }, metrics_now() - req->t0);
    metrics_add(BM_REQUESTS_INFLIGHT, NULL, -1);
    unlink_req(req);
    free(req);
}

void rpc_reply(struct rpc_req *req, Petrel__Response *resp)
{
    resp->id = req->id;
    if (!resp->more)
        req->m_status = (int)resp->status;
    struct rpc_link *l = req->link;
    if (l && !l->closed) {
        frame_append(&l->conn.out, &resp->base);
        conn_wake_writer(&l->conn);
    }
    if (!resp->more)
        rpc_done(req);
}

void rpc_fail(struct rpc_req *req, Petrel__Status status, const char *text)
{
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    resp.status = status;
    resp.text = (char *)text;
    if (status == PETREL__STATUS__TEMPFAIL)
        log_warn("\"request failed\" session=%s op=%s error=\"%s\"", req->session, req->op, text);
    rpc_reply(req, &resp);
}

void rpc_fail_db(struct rpc_req *req, const struct db_result *r)
{
    if (r->status == DB_TEMPFAIL) {
        rpc_fail(req, PETREL__STATUS__TEMPFAIL, r->message);
        return;
    }
    /* SQLSTATEs raised by the petrel_* functions (backend/migrations). */
    if (strcmp(r->sqlstate, "23505") == 0)
        rpc_fail(req, PETREL__STATUS__ALREADYEXISTS, "Mailbox already exists");
    else if (strcmp(r->sqlstate, "P0002") == 0)
        rpc_fail(req, PETREL__STATUS__NONEXISTENT, "Mailbox does not exist");
    else if (strcmp(r->sqlstate, "22023") == 0)   /* invalid argument: the client's fault */
        rpc_fail(req, PETREL__STATUS__NO, r->message);
    else if (strcmp(r->sqlstate, "54000") == 0)
        rpc_fail(req, PETREL__STATUS__NO, "Mailbox has run out of UIDs");
    else {
        log_error("\"query failed\" session=%s op=%s sqlstate=%s error=\"%s\"", req->session,
                  req->op, r->sqlstate, r->message);
        rpc_fail(req, PETREL__STATUS__TEMPFAIL, "Internal error");
    }
}

static const struct rpc_op *find_op(Petrel__Request__OpCase c)
{
    for (int i = 0; i < rpc_ops_count; i++)
        if (rpc_ops[i].op == c)
            return &rpc_ops[i];
    return NULL;
}

static struct rpc_req *find_req(struct rpc_link *l, uint64_t id)
{
    for (struct rpc_req *r = l->reqs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static void cancel_req(struct rpc_req *r)
{
    r->cancelled = 1;
    if (r->on_cancel)
        r->on_cancel(r);
}

/* Frames that continue an existing request rather than start one. */
static int is_follow_up(Petrel__Request__OpCase c)
{
    return c == PETREL__REQUEST__OP_APPEND_CHUNK || c == PETREL__REQUEST__OP_ACK ||
           c == PETREL__REQUEST__OP_CANCEL || c == PETREL__REQUEST__OP_APPEND_NEXT ||
           c == PETREL__REQUEST__OP_APPEND_END;
}

static void handle(struct rpc_link *l, const Petrel__Request *msg)
{
    if (is_follow_up(msg->op_case)) {
        struct rpc_req *r = find_req(l, msg->id);
        if (!r)
            return;   /* already finished: a late ack or cancel is harmless */
        if (msg->op_case == PETREL__REQUEST__OP_CANCEL)
            cancel_req(r);
        else if (r->on_more)
            r->on_more(r, msg);
        return;
    }
    struct rpc_req *req = calloc(1, sizeof *req);
    req->t0 = metrics_now();
    req->m_status = -1;
    metrics_add(BM_REQUESTS_INFLIGHT, NULL, 1);
    req->link = l;
    req->id = msg->id;
    req->account_id = msg->account_id;
    snprintf(req->session, sizeof req->session, "%s", msg->session ? msg->session : "");
    req->next = l->reqs;
    l->reqs = req;
    l->inflight++;
    const struct rpc_op *op = find_op(msg->op_case);
    req->op = op ? op->name : "unknown";
    if (!op) {
        rpc_fail(req, PETREL__STATUS__BAD, "Unknown operation");
        return;
    }
    if (l->inflight > backend->cfg->rpc_max_inflight) {
        rpc_fail(req, PETREL__STATUS__TEMPFAIL, "Too many requests in flight");
        return;
    }
    log_debug("\"request\" session=%s op=%s id=%llu", req->session, req->op,
              (unsigned long long)req->id);
    op->start(req, msg);
}

static void on_read(struct conn *c)
{
    struct rpc_link *l = c->ctx;
    const uint8_t *payload;
    size_t len;
    int rc;
    while (!l->closed && (rc = frame_peek(&c->in, (size_t)backend->cfg->rpc_max_frame, &payload, &len)) != 0) {
        if (rc < 0) {
            log_error("\"rpc frame over the size limit, closing link\" limit=%ld",
                      backend->cfg->rpc_max_frame);
            conn_close(c, "frame too large");
            return;
        }
        Petrel__Request *msg = petrel__request__unpack(NULL, len, payload);
        frame_consume(&c->in, len);
        if (!msg) {
            log_error("\"malformed rpc frame, closing link\" bytes=%zu", len);
            conn_close(c, "malformed frame");
            return;
        }
        handle(l, msg);
        petrel__request__free_unpacked(msg, NULL);
    }
}

static void on_close(struct conn *c, const char *reason)
{
    struct rpc_link *l = c->ctx;
    log_info("\"frontend link closed\" reason=\"%s\"", reason);
    l->closed = 1;
    /* Each op finishes (rpc_done) when it can; the link is freed after the last. */
    struct rpc_req *r = l->reqs, *next;
    for (; r; r = next) {
        next = r->next;
        if (!r->cancelled)
            cancel_req(r);
    }
    link_free_if_done(l);
}

static const struct conn_handler link_handler = { .on_read = on_read, .on_close = on_close };

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    for (;;) {
        int fd = net_accept(w->fd);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("\"accept failed\" error=\"%s\"", strerror(errno));
            return;
        }
        struct rpc_link *l = calloc(1, sizeof *l);
        l->lnext = all_links;
        if (all_links)
            all_links->lprev = &l->lnext;
        l->lprev = &all_links;
        all_links = l;
        metrics_add(BM_LINKS, NULL, 1);
        conn_init(&l->conn, loop, fd, &link_handler, l);
        /* A link carries many sessions: let it buffer a few frames ahead. */
        l->conn.read_limit = (size_t)backend->cfg->rpc_max_frame + FRAME_HEADER_SIZE;
        log_info("\"frontend link accepted\"");
    }
}

int rpc_server_start(const char *spec)
{
    int fd = net_listen(spec, 1024);
    if (fd < 0) {
        log_error("\"cannot listen\" addr=%s error=\"%s\"", spec, strerror(errno));
        return -1;
    }
    ev_io_init(&accept_watcher, on_accept, fd, EV_READ);
    ev_io_start(backend->loop, &accept_watcher);
    accepting = true;
    return 0;
}

void rpc_server_stop(void)
{
    if (!accepting)
        return;
    accepting = false;
    ev_io_stop(backend->loop, &accept_watcher);
    close(accept_watcher.fd);
}

void rpc_server_drain(void)
{
    rpc_server_stop();
    draining = true;
    int n = 0;
    for (struct rpc_link *l = all_links; l; l = l->lnext) {
        if (l->closed)
            continue;
        /* Id 0 answers no request: "go away" (frontend/rpc_client.c). */
        Petrel__Response resp = PETREL__RESPONSE__INIT;
        resp.id = 0;
        resp.status = PETREL__STATUS__TEMPFAIL;
        resp.text = "shutting down";
        frame_append(&l->conn.out, &resp.base);
        conn_wake_writer(&l->conn);
        n++;
    }
    log_info("\"draining\" links=%d", n);
    if (!all_links)
        ev_break(backend->loop, EVBREAK_ALL);
}

bool rpc_server_draining(void) { return draining; }
