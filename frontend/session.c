/* The session core shared by every protocol: accepting, per-connection
 * limits, the idle timer, and tearing a session down only once nothing can
 * call back into it. */
#include "frontend.h"

#include "log.h"
#include "net.h"

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

static void on_idle(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct session *s = t->data;
    s->proto->on_timeout(s);
}

static void on_read(struct conn *c)
{
    struct session *s = c->ctx;
    session_touch(s);
    s->proto->on_read(s);
}

static void on_drain(struct conn *c)
{
    struct session *s = c->ctx;
    if (s->proto->on_drain)
        s->proto->on_drain(s);
}

static void on_close(struct conn *c, const char *reason)
{
    struct session *s = c->ctx;
    log_info("\"session closed\" session=%s proto=%s user=%s reason=\"%s\" in=%llu out=%llu", s->id,
             s->proto->name, s->user ? s->user : "-", reason, c->bytes_in, c->bytes_out);
    rpc_cancel_all(&s->calls);
    ev_timer_stop(frontend->loop, &s->idle);
    conn_release(c);
    free(s->user);
    frontend->connections--;
    s->proto->destroy(s);
}

static const struct conn_handler session_handler = {
    .on_read = on_read, .on_drain = on_drain, .on_close = on_close,
};

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct listener *ls = (struct listener *)w;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("\"accept failed\" error=\"%s\"", strerror(errno));
            return;
        }
        if (frontend->connections >= frontend->cfg->max_connections) {
            log_warn("\"connection refused: max_connections reached\" limit=%ld",
                     frontend->cfg->max_connections);
            close(fd);
            continue;
        }
        struct session *s = ls->proto->create();
        s->proto = ls->proto;
        snprintf(s->id, sizeof s->id, "%s-%d-%llu", frontend->cfg->node, frontend->worker,
                 ++frontend->session_counter);
        net_peer_ip(fd, s->client_ip, sizeof s->client_ip);
        conn_init(&s->conn, loop, fd, &session_handler, s);
        ev_init(&s->idle, on_idle);
        s->idle.data = s;
        frontend->connections++;
        log_info("\"session started\" session=%s proto=%s client=%s", s->id, s->proto->name,
                 s->client_ip);
        s->proto->start(s);
    }
}

int listener_start(const char *spec, const struct protocol *proto)
{
    if (!spec || !*spec)
        return 0;
    if (nlisteners == MAX_LISTENERS)
        return -1;
    int fd = net_listen(spec, 1024);
    if (fd < 0) {
        log_error("\"cannot listen\" proto=%s addr=%s error=\"%s\"", proto->name, spec, strerror(errno));
        return -1;
    }
    struct listener *ls = &listeners[nlisteners++];
    ls->proto = proto;
    ev_io_init(&ls->io, on_accept, fd, EV_READ);
    ev_io_start(frontend->loop, &ls->io);
    return 0;
}

void listeners_stop(void)
{
    for (int i = 0; i < nlisteners; i++) {
        ev_io_stop(frontend->loop, &listeners[i].io);
        close(listeners[i].io.fd);
    }
    nlisteners = 0;
}
