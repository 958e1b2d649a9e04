#include "conn.h"

#include "tls.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_READ_LIMIT (256 * 1024)
#define DEFAULT_LOW_WATER (64 * 1024)
#define READ_CHUNK 16384
/* Buffers keep their allocation up to this size once emptied, so ordinary
 * lines and responses reuse it; a larger one (a literal, a body, a big RPC
 * frame) is freed once sent or consumed. Without this every connection
 * kept the size of its largest burst: an idle session that once fetched a
 * 20 MB body, and each of a frontend worker's RPC links after a big FETCH
 * (imap-big-mailbox: 514 -> 591 KiB a session when links went from 1 to 4;
 * 505 with this). */
#define KEEP_BUF (64 * 1024)

/* ---- the plain socket transport ---- */

static ssize_t sock_read(struct conn *c, void *p, size_t n)
{
    ssize_t r = recv(c->fd, p, n, 0);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return CONN_IO_WANT_READ;
    c->error = "read error";
    return CONN_IO_ERROR;
}

static ssize_t sock_write(struct conn *c, const void *p, size_t n)
{
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    if (r > 0)
        return r;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return CONN_IO_WANT_WRITE;
    c->error = "write error";
    return CONN_IO_ERROR;
}

const struct conn_type conn_type_socket = {
    .name = "tcp", .read = sock_read, .write = sock_write,
};

/* ---- readiness ---- */

/* The owner wants input and the transport may deliver it. */
static bool wants_input(const struct conn *c)
{
    return !c->closed && !c->paused && !c->connecting && !c->peer_eof && !c->handshaking &&
           !c->tls_next && buf_len(&c->in) < c->read_limit;
}

static void set_watcher(struct conn *c, ev_io *w, bool on)
{
    if (on && !ev_is_active(w))
        ev_io_start(c->loop, w);
    else if (!on && ev_is_active(w))
        ev_io_stop(c->loop, w);
}

/* Starts exactly the watchers the current state needs. A read that needs
 * the socket writable (or a write that needs it readable) waits on the
 * other watcher. Decrypted bytes waiting inside TLS are announced by feeding
 * a read event: the socket itself may never become readable for them (the
 * role of Redis's list of connections with pending data). */
static void update_io(struct conn *c)
{
    bool r = false, w = false;
    if (c->closed) {
        /* both off */
    } else if (c->connecting) {
        w = true;
    } else if (c->handshaking) {
        w = c->hs_want_write;
        r = !c->hs_want_write;
    } else {
        if (wants_input(c)) {
            if (c->read_wants_write)
                w = true;
            else
                r = true;
        }
        size_t out = buf_len(&c->out);
        if (c->tls_next && out > c->plain_out)
            out = c->plain_out;
        if (out > 0 || (c->tls_next && c->plain_out == 0)) {
            if (c->write_wants_read)
                r = true;
            else
                w = true;
        }
    }
    set_watcher(c, &c->rio, r);
    set_watcher(c, &c->wio, w);
    /* Output queued by a callback goes out before the loop polls again: when
     * the socket takes it all (the usual case), the write watcher started
     * above is stopped again before libev tells the kernel, which saves two
     * epoll_ctl calls and a loop iteration per reply. */
    if (w && buf_len(&c->out) > 0 && !c->connecting && !c->handshaking && !c->write_wants_read &&
        !ev_is_active(&c->flush_w))
        ev_prepare_start(c->loop, &c->flush_w);
    if (r && !c->read_wants_write && wants_input(c) && c->type->pending &&
        c->type->pending(c) > 0 && !ev_is_pending(&c->rio))
        ev_feed_event(c->loop, &c->rio, EV_READ);
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
    ev_prepare_stop(c->loop, &c->flush_w);
    if (c->type->close)
        c->type->close(c);
    tls_ctx_unref(&c->tls_next);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    ev_timer_init(&c->close_timer, close_cb, 0, 0);
    c->close_timer.data = c;
    ev_timer_start(c->loop, &c->close_timer);
}

static void handshake(struct conn *c);

/* The cleartext part is out: switch to TLS and start the handshake. */
static void begin_tls(struct conn *c)
{
    struct tls_ctx *t = c->tls_next;
    c->tls_next = NULL;
    c->plain_out = 0;
    buf_reset(&c->in);   /* nothing received in cleartext survives */
    c->read_wants_write = c->write_wants_read = false;
    int rc = tls_conn_attach(c, t);
    tls_ctx_unref(&t);
    if (rc < 0) {
        conn_close(c, c->error);
        return;
    }
    c->handshaking = true;
    handshake(c);
}

static void flush(struct conn *c)
{
    c->write_wants_read = false;
    for (;;) {
        if (c->tls_next && c->plain_out == 0) {
            if (c->close_after_flush) {   /* ending: no handshake to start */
                conn_close(c, c->close_reason);
                return;
            }
            begin_tls(c);
            if (c->closed)
                return;
        }
        if (c->handshaking || buf_len(&c->out) == 0)
            break;
        size_t len = buf_len(&c->out);
        if (c->tls_next && len > c->plain_out)
            len = c->plain_out;
        ssize_t n = c->type->write(c, buf_head(&c->out), len);
        if (n == CONN_IO_WANT_WRITE)
            break;
        if (n == CONN_IO_WANT_READ) {
            c->write_wants_read = true;
            break;
        }
        if (n < 0) {
            conn_close(c, c->error ? c->error : "write error");
            return;
        }
        c->bytes_out += (unsigned long long)n;
        buf_consume(&c->out, (size_t)n);
        if (c->tls_next)
            c->plain_out -= (size_t)n;
    }
    if (buf_len(&c->out) == 0 && !c->handshaking && c->close_after_flush) {
        conn_close(c, c->close_reason);
        return;
    }
    buf_trim(&c->out, KEEP_BUF);
    update_io(c);
    if (c->h->on_drain && buf_len(&c->out) < c->low_water)
        c->h->on_drain(c);
}

/* Reads what the transport has, up to the read limit, then tells the owner.
 * Bytes TLS already decrypted are taken now too: no event would announce
 * them. What the limit leaves inside TLS is fed back by update_io(). */
static void fill(struct conn *c, bool notify)
{
    c->read_wants_write = false;
    while (wants_input(c)) {
        /* Never past read_limit: the rest waits in the socket, or decrypted
         * inside TLS (then `pending` brings it back). */
        size_t avail, room = c->read_limit - buf_len(&c->in);
        char *p = buf_tail(&c->in, room < READ_CHUNK ? room : READ_CHUNK, &avail);
        if (avail > room)
            avail = room;
        ssize_t n = c->type->read(c, p, avail);
        if (n == CONN_IO_WANT_READ)
            break;
        if (n == CONN_IO_WANT_WRITE) {
            c->read_wants_write = true;
            break;
        }
        if (n == 0) {
            c->peer_eof = true;
            conn_close(c, "connection closed by peer");
            return;
        }
        if (n < 0) {
            conn_close(c, c->error ? c->error : "read error");
            return;
        }
        c->bytes_in += (unsigned long long)n;
        buf_commit(&c->in, (size_t)n);
        notify = true;
        if (!c->type->pending || c->type->pending(c) == 0)
            break;
    }
    if (notify)
        c->h->on_read(c);
    if (!c->closed) {
        buf_trim(&c->in, KEEP_BUF);
        update_io(c);
    }
}

/* Drives the TLS handshake; once done, sends what waits and reads. */
static void handshake(struct conn *c)
{
    int rc = c->type->handshake ? c->type->handshake(c) : 0;
    if (rc == CONN_IO_WANT_READ || rc == CONN_IO_WANT_WRITE) {
        c->hs_want_write = rc == CONN_IO_WANT_WRITE;
        update_io(c);
        return;
    }
    if (rc < 0) {
        conn_close(c, c->error ? c->error : "TLS handshake failed");
        return;
    }
    c->handshaking = false;
    c->hs_want_write = false;
    flush(c);
    if (!c->closed)
        fill(c, false);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    if (c->closed)
        return;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_close(c, strerror(err));
            return;
        }
        c->connecting = false;
        update_io(c);
        if (c->h->on_connect)
            c->h->on_connect(c);
        if (c->closed)
            return;
    }
    if (c->handshaking) {
        handshake(c);
        return;
    }
    if (c->read_wants_write) {
        fill(c, false);
        if (c->closed)
            return;
    }
    if (!c->write_wants_read)
        flush(c);
    else
        update_io(c);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    if (c->closed)
        return;
    if (c->handshaking) {
        handshake(c);
        return;
    }
    if (c->write_wants_read) {
        flush(c);
        if (c->closed)
            return;
    }
    /* EV_CUSTOM (conn_resume): parse what is buffered, even if the
     * transport has nothing new. */
    if (!c->read_wants_write || (revents & EV_CUSTOM))
        fill(c, (revents & EV_CUSTOM) != 0);
    else
        update_io(c);
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct conn *c = w->data;
    ev_prepare_stop(loop, w);
    if (!c->closed && !c->connecting && !c->handshaking && !c->write_wants_read)
        flush(c);
}

static void setup(struct conn *c, struct ev_loop *loop, int fd, const struct conn_handler *h,
                  void *ctx)
{
    *c = (struct conn){ .loop = loop, .fd = fd, .h = h, .ctx = ctx, .type = &conn_type_socket,
                        .read_limit = DEFAULT_READ_LIMIT, .low_water = DEFAULT_LOW_WATER };
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
    ev_prepare_init(&c->flush_w, flush_cb);
    c->rio.data = c->wio.data = c->flush_w.data = c;
}

void conn_init(struct conn *c, struct ev_loop *loop, int fd, const struct conn_handler *h, void *ctx)
{
    setup(c, loop, fd, h, ctx);
    update_io(c);
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
    update_io(c);
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
    update_io(c);
}

void conn_wake_writer(struct conn *c)
{
    if (!c->closed && buf_len(&c->out) > 0)
        update_io(c);
}

void conn_pause(struct conn *c)
{
    c->paused = true;
    update_io(c);
}

void conn_resume(struct conn *c)
{
    c->paused = false;
    update_io(c);
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
    update_io(c);
    /* Nothing can reach the peer before the TLS handshake is done (and a
     * peer stalling it must not keep the connection): close now. */
    if ((buf_len(&c->out) == 0 && !c->tls_next) || c->handshaking)
        conn_close(c, reason);
}

void conn_release(struct conn *c)
{
    if (ev_is_active(&c->close_timer))
        ev_timer_stop(c->loop, &c->close_timer);
    buf_free(&c->in);
    buf_free(&c->out);
}

int conn_start_tls(struct conn *c, struct tls_ctx *t)
{
    if (c->closed)
        return 0;
    if (conn_is_tls(c) || !t)
        return -1;
    c->tls_next = tls_ctx_ref(t);
    c->plain_out = buf_len(&c->out);
    buf_reset(&c->in);
    if (c->plain_out == 0)
        begin_tls(c);   /* nothing to send in cleartext: handshake now */
    else
        update_io(c);
    return 0;
}

bool conn_is_tls(const struct conn *c) { return c->ssl || c->tls_next; }
