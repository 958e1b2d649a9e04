/* Reading the PROXY header before a session starts (see proxy_gate.h). */
#include "proxy_gate.h"

#include "auth_policy.h"
#include "frontend.h"
#include "log.h"
#include "net.h"
#include "proxy_header.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct gate {
    ev_io io;
    ev_timer timer;
    int fd;
    void *listener;
    const char *name;
    proxy_admit_fn *admit;
    char peer[64];
    struct proxy_parser parser;
};

static long pending;

long proxy_gate_pending(void) { return pending; }

static void gate_end(struct gate *g, const char *why)
{
    ev_io_stop(frontend->loop, &g->io);
    ev_timer_stop(frontend->loop, &g->timer);
    if (why) {
        log_warn("\"connection closed: PROXY header\" listener=%s peer=%s reason=\"%s\"", g->name,
                 g->peer, why);
        close(g->fd);
    }
    pending--;
    free(g);
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    gate_end(t->data, "no PROXY header in time");
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct gate *g = w->data;
    unsigned char tmp[16 + PROXY_V2_MAX_LEN];
    ssize_t n = recv(g->fd, tmp, sizeof tmp, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        gate_end(g, n == 0 ? "closed before the PROXY header" : strerror(errno));
        return;
    }
    size_t used;
    struct proxy_info info;
    const char *err = NULL;
    enum proxy_result r = proxy_parser_feed(&g->parser, tmp, (size_t)n, &used, &info, &err);
    if (r == PROXY_ERROR) {
        gate_end(g, err);
        return;
    }
    /* Take exactly the header's bytes off the socket; they are there. */
    if (used > 0 && recv(g->fd, tmp, used, 0) != (ssize_t)used) {
        gate_end(g, "read error");
        return;
    }
    if (r == PROXY_MORE)
        return;
    const char *ip = g->peer;
    if (!info.local && info.family != 0)
        ip = info.src;
    log_debug("\"PROXY header\" listener=%s peer=%s client=%s version=%d local=%d", g->name, g->peer,
              ip, info.version, info.local);
    int fd = g->fd;
    void *listener = g->listener;
    proxy_admit_fn *admit = g->admit;
    char client[64];
    snprintf(client, sizeof client, "%s", ip);
    bool secured = info.ssl && !info.local;
    gate_end(g, NULL);
    admit(listener, fd, client, secured);
}

void proxy_gate_start(void *listener, const char *name, int fd, proxy_admit_fn *admit)
{
    struct gate *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    g->fd = fd;
    g->listener = listener;
    g->name = name;
    g->admit = admit;
    net_peer_ip(fd, g->peer, sizeof g->peer);
    pending++;
    ev_io_init(&g->io, on_readable, fd, EV_READ);
    g->io.data = g;
    ev_timer_init(&g->timer, on_timeout, (double)frontend->cfg->proxy_timeout, 0);
    g->timer.data = g;
    if (!cidr_match(&security.proxy_trusted, g->peer)) {
        gate_end(g, "peer not in proxy_trusted");
        return;
    }
    proxy_parser_init(&g->parser);
    ev_io_start(frontend->loop, &g->io);
    ev_timer_start(frontend->loop, &g->timer);
}
