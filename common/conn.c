#include "conn.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_READ_LIMIT (256 * 1024)
#define DEFAULT_LOW_WATER (64 * 1024)
#define READ_CHUNK 16384

static void update_read(struct conn *c)
{
    bool want = !c->closed && !c->paused && !c->connecting && !c->peer_eof &&
                buf_len(&c->in) < c->read_limit;
    if (want && !ev_is_active(&c->rio))
        ev_io_start(c->loop, &c->rio);
    else if (!want && ev_is_active(&c->rio))
        ev_io_stop(c->loop, &c->rio);
}

static void close_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct conn *c = t->data;
    c->h->on_close(c, c->close_reason ? c->close_reason : "closed");
}

void conn_close(struct conn *c, const char *reason)
{
    if (c->closed)
        return;
    c->closed = true;
    c->close_reason = reason;
    ev_io_stop(c->loop, &c->rio);
    ev_io_stop(c->loop, &c->wio);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    ev_timer_init(&c->close_timer, close_cb, 0, 0);
    c->close_timer.data = c;
    ev_timer_start(c->loop, &c->close_timer);
}

static void flush(struct conn *c)
{
    while (buf_len(&c->out) > 0) {
        ssize_t n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c, "write error");
            return;
        }
        c->bytes_out += (unsigned long long)n;
        buf_consume(&c->out, (size_t)n);
    }
    if (buf_len(&c->out) == 0) {
        ev_io_stop(c->loop, &c->wio);
        if (c->close_after_flush) {
            conn_close(c, c->close_reason);
            return;
        }
    } else if (!ev_is_active(&c->wio)) {
        ev_io_start(c->loop, &c->wio);
    }
    if (c->h->on_drain && buf_len(&c->out) < c->low_water)
        c->h->on_drain(c);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_close(c, strerror(err));
            return;
        }
        c->connecting = false;
        update_read(c);
        if (c->h->on_connect)
            c->h->on_connect(c);
        if (c->closed)
            return;
    }
    flush(c);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    if (revents & EV_CUSTOM) {   /* conn_resume: parse what is buffered */
        c->h->on_read(c);
        if (!c->closed)
            update_read(c);
        return;
    }
    size_t avail;
    char *p = buf_tail(&c->in, READ_CHUNK, &avail);
    ssize_t n = recv(c->fd, p, avail, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_close(c, "read error");
        return;
    }
    if (n == 0) {
        c->peer_eof = true;
        update_read(c);
        conn_close(c, "connection closed by peer");
        return;
    }
    c->bytes_in += (unsigned long long)n;
    buf_commit(&c->in, (size_t)n);
    c->h->on_read(c);
    if (!c->closed)
        update_read(c);
}

static void setup(struct conn *c, struct ev_loop *loop, int fd, const struct conn_handler *h,
                  void *ctx)
{
    *c = (struct conn){ .loop = loop, .fd = fd, .h = h, .ctx = ctx,
                        .read_limit = DEFAULT_READ_LIMIT, .low_water = DEFAULT_LOW_WATER };
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
}

void conn_init(struct conn *c, struct ev_loop *loop, int fd, const struct conn_handler *h, void *ctx)
{
    setup(c, loop, fd, h, ctx);
    update_read(c);
}

void conn_init_connecting(struct conn *c, struct ev_loop *loop, int fd,
                          const struct conn_handler *h, void *ctx)
{
    setup(c, loop, fd, h, ctx);
    c->connecting = true;
    ev_io_start(loop, &c->wio);
}

void conn_write(struct conn *c, const void *p, size_t n)
{
    if (c->closed || n == 0)
        return;
    buf_append(&c->out, p, n);
    if (!ev_is_active(&c->wio))
        ev_io_start(c->loop, &c->wio);
}

void conn_puts(struct conn *c, const char *s) { conn_write(c, s, strlen(s)); }

void conn_printf(struct conn *c, const char *fmt, ...)
{
    if (c->closed)
        return;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&c->out, fmt, ap);
    va_end(ap);
    if (!ev_is_active(&c->wio))
        ev_io_start(c->loop, &c->wio);
}

void conn_wake_writer(struct conn *c)
{
    if (!c->closed && buf_len(&c->out) > 0 && !ev_is_active(&c->wio))
        ev_io_start(c->loop, &c->wio);
}

void conn_pause(struct conn *c)
{
    c->paused = true;
    update_read(c);
}

void conn_resume(struct conn *c)
{
    c->paused = false;
    update_read(c);
    /* Bytes may already wait in `in` from before the pause. */
    if (!c->closed && buf_len(&c->in) > 0)
        ev_feed_event(c->loop, &c->rio, EV_CUSTOM);
}

void conn_close_after_flush(struct conn *c, const char *reason)
{
    if (c->closed)
        return;
    c->close_reason = reason;
    c->close_after_flush = true;
    c->paused = true;
    update_read(c);
    if (buf_len(&c->out) == 0)
        conn_close(c, reason);
    else if (!ev_is_active(&c->wio))
        ev_io_start(c->loop, &c->wio);
}

void conn_release(struct conn *c)
{
    if (ev_is_active(&c->close_timer))
        ev_timer_stop(c->loop, &c->close_timer);
    buf_free(&c->in);
    buf_free(&c->out);
}
