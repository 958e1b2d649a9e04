/* The session core shared by every protocol: accepting, per-connection
 * limits, the idle timer, and tearing a session down only once nothing can
 * call back into it. */
#include "frontend.h"

#include "auth_policy.h"
#include "cluster_state.h"
#include "conn_limits.h"
#include "frontend_metrics.h"
#include "log.h"
#include "net.h"
#include "proxy_gate.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTENERS 8

struct listener {
    ev_io io;
    const struct protocol *proto;
    bool tls;                     /* implicit TLS: handshake before the greeting */
    bool proxy;                   /* a PROXY header comes first (proxy_gate.h) */
    char name[8];                 /* imap, imaps, pop3, pop3s, lmtp */
};
static struct listener listeners[MAX_LISTENERS];
static int nlisteners;

void session_request(struct session *s, Petrel__Request *req)
{
    req->session = s->id;
    req->account_id = s->account_id;
}

void session_touch(struct session *s)
{
    if (s->drain_scheduled)
        return;   /* the timer now holds the moment to say goodbye */
    if (s->idle_timeout > 0) {
        s->idle.repeat = s->idle_timeout;
        ev_timer_again(frontend->loop, &s->idle);
    }
}

void session_set_idle_timeout(struct session *s, double seconds)
{
    s->idle_timeout = seconds;
    session_touch(s);
}

void session_end(struct session *s, const char *reason)
{
    s->closing = true;
    conn_close_after_flush(&s->conn, reason);
}

/* ---- metrics and draining ---- */

static struct session *all_sessions;

/* Client bytes since the last call go to the byte counters. */
static void account_bytes(struct session *s)
{
    const struct conn *c = &s->conn;
    if (c->bytes_in > s->m_in) {
        metrics_add(FM_BYTES_RECEIVED, (int[]){ s->m_proto }, (int64_t)(c->bytes_in - s->m_in));
        s->m_in = c->bytes_in;
    }
    if (c->bytes_out > s->m_out) {
        metrics_add(FM_BYTES_SENT, (int[]){ s->m_proto }, (int64_t)(c->bytes_out - s->m_out));
        s->m_out = c->bytes_out;
    }
}

void session_set_state(struct session *s, int state)
{
    if (state == s->m_state)
        return;
    metrics_add(FM_CONNECTIONS, (int[]){ s->m_proto, s->m_state }, -1);
    metrics_add(FM_CONNECTIONS, (int[]){ s->m_proto, state }, 1);
    s->m_state = state;
}

void session_auth_result(struct session *s, int result)
{
    metrics_inc(FM_AUTH, (int[]){ s->m_proto, result });
}

void sessions_drain(double window)
{
    frontend->draining = true;
    srand48((long)getpid() ^ (long)ev_time());
    long n = 0;
    for (struct session *s = all_sessions; s; s = s->next) {
        if (s->closing || s->conn.closed)
            continue;
        /* The idle timer becomes the goodbye timer, at a random moment in
         * the window so clients do not all reconnect at once. */
        s->drain_scheduled = true;
        ev_timer_stop(frontend->loop, &s->idle);
        ev_timer_set(&s->idle, window > 0 ? window * drand48() : 0, 0);
        ev_timer_start(frontend->loop, &s->idle);
        n++;
    }
    log_info("\"draining sessions\" sessions=%ld window=%.1f", n, window);
}

void sessions_close_all(const char *reason)
{
    for (struct session *s = all_sessions; s; s = s->next)
        conn_close(&s->conn, reason);
}

static void on_idle(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct session *s = t->data;
    if (s->drain_scheduled) {
        if (s->closing || s->conn.closed)
            return;
        if (s->proto->shutdown)
            s->proto->shutdown(s);
        else
            session_end(s, "server shutting down");
        return;
    }
    s->proto->on_timeout(s);
}

static void on_read(struct conn *c)
{
    struct session *s = c->ctx;
    account_bytes(s);
    session_touch(s);
    s->proto->on_read(s);
}

static void on_drain(struct conn *c)
{
    struct session *s = c->ctx;
    account_bytes(s);
    if (s->proto->on_drain)
        s->proto->on_drain(s);
}

static void on_close(struct conn *c, const char *reason)
{
    struct session *s = c->ctx;
    log_info("\"session closed\" session=%s proto=%s user=%s reason=\"%s\" in=%llu out=%llu", s->id,
             s->proto->name, s->user ? s->user : "-", reason, c->bytes_in, c->bytes_out);
    cluster_session_closed(s);
    auth_session_closed(s);
    conn_limits_closed(s);
    rpc_cancel_all(&s->calls);
    ev_timer_stop(frontend->loop, &s->idle);
    conn_release(c);
    free(s->user);
    frontend->connections--;
    account_bytes(s);
    metrics_add(FM_CONNECTIONS, (int[]){ s->m_proto, s->m_state }, -1);
    *s->prev = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (frontend->draining && frontend->connections == 0)
        ev_break(frontend->loop, EVBREAK_ALL);   /* the last session is gone */
    s->proto->destroy(s);
}

static const struct conn_handler session_handler = {
    .on_read = on_read, .on_drain = on_drain, .on_close = on_close,
};

/* The connection limits let the session in: the greeting. */
static void session_admitted(struct session *s) { s->proto->start(s); }

/* A connection becomes a session: client_ip is the PROXY header's address
 * (NULL: the peer's), secured whether the proxy says the client used TLS. */
static void session_admit(void *listener, int fd, const char *client_ip, bool secured)
{
    struct listener *ls = listener;
    struct ev_loop *loop = frontend->loop;
    struct session *s = ls->proto->create();
    s->proto = ls->proto;
    s->listener = ls->name;
    s->secured = secured;
    snprintf(s->id, sizeof s->id, "%s-%d-%d-%llu", frontend->cfg->node, frontend->worker, (int)getpid(),
             ++frontend->session_counter);
    if (client_ip)
        snprintf(s->client_ip, sizeof s->client_ip, "%s", client_ip);
    else
        net_peer_ip(fd, s->client_ip, sizeof s->client_ip);
    conn_init(&s->conn, loop, fd, &session_handler, s);
    ev_init(&s->idle, on_idle);
    s->idle.data = s;
    frontend->connections++;
    s->m_proto = fm_proto(s->proto->name);
    s->m_state = MS_NOTAUTH;
    metrics_inc(FM_CONNECTIONS_ACCEPTED, (int[]){ s->m_proto });
    metrics_add(FM_CONNECTIONS, (int[]){ s->m_proto, s->m_state }, 1);
    s->next = all_sessions;
    if (all_sessions)
        all_sessions->prev = &s->next;
    s->prev = &all_sessions;
    all_sessions = s;
    log_info("\"session started\" session=%s proto=%s client=%s%s", s->id, s->proto->name,
             s->client_ip, ls->tls ? " tls=implicit" : "");
    if (ls->tls) {
        s->tls = true;
        conn_start_tls(&s->conn, frontend->tls);
        if (s->conn.closed)
            return;   /* on_close runs from the loop and frees s */
    }
    conn_limits_admit(s, session_admitted);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct listener *ls = (struct listener *)w;
    for (;;) {
        int fd = net_accept(w->fd);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("\"accept failed\" error=\"%s\"", strerror(errno));
            return;
        }
        if (ls->tls && !frontend->tls) {   /* cannot happen: checked at start */
            close(fd);
            continue;
        }
        if (frontend->connections + proxy_gate_pending() >= frontend->cfg->max_connections) {
            log_warn("\"connection refused: max_connections reached\" limit=%ld",
                     frontend->cfg->max_connections);
            metrics_inc(FM_CONNECTIONS_REFUSED, (int[]){ fm_proto(ls->proto->name) });
            close(fd);
            continue;
        }
        if (ls->proxy)
            proxy_gate_start(ls, ls->name, fd, session_admit);
        else
            session_admit(ls, fd, NULL, false);
    }
}

static int start_listener(const char *spec, const struct protocol *proto, bool tls)
{
    if (!spec || !*spec)
        return 0;
    if (tls && !frontend->tls) {
        log_error("\"TLS listener without tls_cert/tls_key\" proto=%s addr=%s", proto->name, spec);
        return -1;
    }
    if (nlisteners == MAX_LISTENERS)
        return -1;
    int fd = net_listen(spec, 1024);
    if (fd < 0) {
        log_error("\"cannot listen\" proto=%s addr=%s error=\"%s\"", proto->name, spec, strerror(errno));
        return -1;
    }
    struct listener *ls = &listeners[nlisteners++];
    ls->proto = proto;
    ls->tls = tls;
    snprintf(ls->name, sizeof ls->name, "%s%s", proto->name, tls ? "s" : "");
    ls->proxy = proxy_listener(ls->name);
    ev_io_init(&ls->io, on_accept, fd, EV_READ);
    ev_io_start(frontend->loop, &ls->io);
    return 0;
}

int listener_start(const char *spec, const struct protocol *proto)
{
    return start_listener(spec, proto, false);
}

int listener_start_tls(const char *spec, const struct protocol *proto)
{
    return start_listener(spec, proto, true);
}

void listeners_stop(void)
{
    for (int i = 0; i < nlisteners; i++) {
        ev_io_stop(frontend->loop, &listeners[i].io);
        close(listeners[i].io.fd);
    }
    nlisteners = 0;
}
