#include "http.h"

#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct http_conn {
    struct conn conn;
    ev_timer timer;
    bool answered;
    bool shut;                 /* our side shut down after the answer */
    struct http_conn *next, **prev;
};

static struct ev_loop *http_loop;
static ev_io accept_io;
static bool listening;
static http_ready_fn *ready_fn;
static struct http_conn *conns;
static int nconns;

static void respond(struct http_conn *h, int status, const char *reason, const char *ctype,
                    const char *body, size_t len, bool head_only)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, ctype, len);
    h->answered = true;
    conn_write(&h->conn, hdr, (size_t)n);
    if (!head_only)
        conn_write(&h->conn, body, len);
    /* A lingering close: once the answer is out, shut down our side and read
     * (and drop) until the client closes, so unread request bytes cannot turn
     * our close into a reset that destroys the answer. Bounded by the timer. */
    ev_timer_stop(http_loop, &h->timer);
    ev_timer_set(&h->timer, HTTP_LINGER, 0);
    ev_timer_start(http_loop, &h->timer);
}

static void on_drain(struct conn *c)
{
    struct http_conn *h = c->ctx;
    if (h->answered && !h->shut && buf_len(&c->out) == 0 && c->fd >= 0) {
        h->shut = true;
        shutdown(c->fd, SHUT_WR);
    }
}

static void respond_text(struct http_conn *h, int status, const char *reason, const char *text,
                         bool head_only)
{
    respond(h, status, reason, "text/plain; charset=utf-8", text, strlen(text), head_only);
}

static void serve(struct http_conn *h, const char *method, const char *path)
{
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond_text(h, 405, "Method Not Allowed", "only GET and HEAD\n", false);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        struct buf body = { 0 };
        metrics_render(&body);
        respond(h, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", buf_head(&body),
                buf_len(&body), head);
        buf_free(&body);
    } else if (strcmp(path, "/healthz") == 0) {
        respond_text(h, 200, "OK", "ok\n", head);
    } else if (strcmp(path, "/readyz") == 0) {
        const char *why = "not ready";
        if (!ready_fn || ready_fn(&why)) {
            respond_text(h, 200, "OK", "ready\n", head);
        } else {
            char text[160];
            snprintf(text, sizeof text, "not ready: %s\n", why);
            respond_text(h, 503, "Service Unavailable", text, head);
        }
    } else {
        respond_text(h, 404, "Not Found", "not found\n", head);
    }
}

/* Parses the request line once the whole head is in. */
static void on_read(struct conn *c)
{
    struct http_conn *h = c->ctx;
    if (h->answered) {
        buf_consume(&c->in, buf_len(&c->in));
        return;
    }
    const char *p = buf_head(&c->in);
    size_t len = buf_len(&c->in);
    const char *end = memmem(p, len, "\r\n\r\n", 4);
    if (!end)
        end = memmem(p, len, "\n\n", 2);
    if (!end) {
        if (len >= HTTP_MAX_REQUEST)
            respond_text(h, 431, "Request Header Fields Too Large", "request too large\n", false);
        return;
    }
    const char *eol = memchr(p, '\n', len);   /* there is one: the head ends in one */
    char line[1024], method[16], target[1000], version[16];
    size_t ll = (size_t)(eol - p);
    if (ll > 0 && p[ll - 1] == '\r')
        ll--;
    if (ll >= sizeof line) {
        respond_text(h, 414, "URI Too Long", "request line too long\n", false);
        return;
    }
    memcpy(line, p, ll);
    line[ll] = '\0';
    if (sscanf(line, "%15s %999s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        respond_text(h, 400, "Bad Request", "bad request\n", false);
        return;
    }
    char *q = strchr(target, '?');
    if (q)
        *q = '\0';
    log_debug("\"http request\" method=%s path=%s", method, target);
    serve(h, method, target);
    buf_consume(&c->in, buf_len(&c->in));
}

static void on_close(struct conn *c, const char *reason)
{
    struct http_conn *h = c->ctx;
    ev_timer_stop(http_loop, &h->timer);
    *h->prev = h->next;
    if (h->next)
        h->next->prev = h->prev;
    nconns--;
    conn_release(c);
    free(h);
}

static const struct conn_handler handler = { .on_read = on_read, .on_drain = on_drain,
                                             .on_close = on_close };

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct http_conn *h = t->data;
    conn_close(&h->conn, "http timeout");
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("\"http accept failed\" error=\"%s\"", strerror(errno));
            return;
        }
        if (nconns >= HTTP_MAX_CONNECTIONS) {
            close(fd);
            continue;
        }
        struct http_conn *h = calloc(1, sizeof *h);
        if (!h)
            abort();
        h->next = conns;
        if (conns)
            conns->prev = &h->next;
        h->prev = &conns;
        conns = h;
        nconns++;
        conn_init(&h->conn, loop, fd, &handler, h);
        h->conn.read_limit = HTTP_MAX_REQUEST;
        ev_timer_init(&h->timer, on_timeout, HTTP_TIMEOUT, 0);
        h->timer.data = h;
        ev_timer_start(loop, &h->timer);
    }
}

int http_start(struct ev_loop *loop, const char *spec, http_ready_fn *ready)
{
    if (!spec || !*spec)
        return 0;
    int fd = net_listen(spec, 128);
    if (fd < 0) {
        log_error("\"cannot listen\" proto=http addr=%s error=\"%s\"", spec, strerror(errno));
        return -1;
    }
    http_loop = loop;
    ready_fn = ready;
    ev_io_init(&accept_io, on_accept, fd, EV_READ);
    ev_io_start(loop, &accept_io);
    listening = true;
    return 0;
}

void http_stop(void)
{
    if (listening) {
        ev_io_stop(http_loop, &accept_io);
        close(accept_io.fd);
        listening = false;
    }
    for (struct http_conn *h = conns; h; h = h->next)
        conn_close(&h->conn, "shutting down");
}
