/* Connections of petrel-bench: buffers, non-blocking connect/read/write on
 * libev, the per-operation timeout, and the resumable response readers of
 * IMAP, POP3 and LMTP that hand whole responses to the workload. */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* A response line longer than this is a broken server, not a slow one. */
#define MAX_LINE (4u << 20)
/* Bytes read per wake-up, so one busy connection cannot starve the rest. */
#define READ_BUDGET (512u << 10)

/* ---------------------------------------------------------------- buffers */

void bbuf_reserve(struct bbuf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    if (b->off > 0 && b->off >= b->len / 2) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more + 1 <= b->cap)
            return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "petrel-bench: out of memory\n");
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

void bbuf_add(struct bbuf *b, const void *data, size_t n)
{
    bbuf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
}

void bbuf_addf(struct bbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        bbuf_add(b, tmp, (size_t)n);
        return;
    }
    bbuf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bbuf_consume(struct bbuf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void bbuf_reset(struct bbuf *b)
{
    b->off = b->len = 0;
    if (b->p)
        b->p[0] = 0;
}

void bbuf_free(struct bbuf *b)
{
    free(b->p);
    *b = (struct bbuf){ 0 };
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ addresses */

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

/* Resolves host:port to its first address. Refuses every non-loopback
 * address unless allow_remote: a load generator pointed at someone else's
 * server by a typo is an attack. Returns false with a reason in err. */
bool resolve_host(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len,
                  bool allow_remote, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
    struct addrinfo *res = 0;
    char ports[16];
    err[0] = 0;
    snprintf(ports, sizeof ports, "%d", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return false;
    }
    bool ok = false;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        if (!allow_remote && !is_loopback(a->ai_addr)) {
            snprintf(err, errlen,
                     "%s is not a loopback address (use --allow-remote to load a remote server)",
                     host);
            ok = false;
            break;
        }
        if (!ok && a->ai_addrlen <= sizeof *ss) {
            memcpy(ss, a->ai_addr, a->ai_addrlen);
            *len = (socklen_t)a->ai_addrlen;
            ok = true;
        }
    }
    if (!ok && !err[0])
        snprintf(err, errlen, "no usable address for %s", host);
    freeaddrinfo(res);
    return ok;
}

/* ------------------------------------------------------------------ TLS */

static SSL_CTX *tls_ctx;

/* Without --tls-ca the server is not verified: the bench only ever talks
 * to loopback (or --allow-remote) servers it was pointed at, and measures
 * the cost of the session, not of trust. */
bool tls_init(void)
{
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx || !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION)) {
        fprintf(stderr, "petrel-bench: cannot make a TLS context\n");
        return false;
    }
    if (cfg.tls_ca) {
        if (SSL_CTX_load_verify_locations(tls_ctx, cfg.tls_ca, 0) != 1) {
            fprintf(stderr, "petrel-bench: --tls-ca %s: cannot load it\n", cfg.tls_ca);
            return false;
        }
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, 0);
    }
    /* The output buffer may grow (and move) while a write waits to be
     * retried; idle connections give their buffers back. */
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    return true;
}

/* Reads or writes through TLS when the client has it. Returns what
 * read(2)/write(2) would, with EAGAIN when OpenSSL needs the socket to be
 * readable or writable first (*want_write says which). */
/* What an SSL_read/SSL_write result k <= 0 means as read(2)/write(2) would
 * say it. */
static ssize_t ssl_failed(struct client *c, int k, bool *want_write)
{
    int e = SSL_get_error(c->ssl, k);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want_write = e == SSL_ERROR_WANT_WRITE;
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = EPROTO;
    return -1;
}

static ssize_t io_read(struct client *c, void *buf, size_t n, bool *want_write)
{
    *want_write = false;
    if (!c->ssl)
        return read(c->fd, buf, n);
    int k = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    return k > 0 ? k : ssl_failed(c, k, want_write);
}

static ssize_t io_write(struct client *c, const void *buf, size_t n)
{
    if (!c->ssl)
        return write(c->fd, buf, n);
    int k = SSL_write(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    bool want_write;
    ssize_t r = k > 0 ? k : ssl_failed(c, k, &want_write);
    /* A write that meets a closed TLS session is an error, not EOF. */
    if (r == 0) {
        errno = EPROTO;
        return -1;
    }
    return r;
}

/* ---------------------------------------------------------- connections */

static void on_read(struct ev_loop *l, ev_io *w, int revents);
static void on_write(struct ev_loop *l, ev_io *w, int revents);
static void on_timeout(struct ev_loop *l, ev_timer *w, int revents);
static void on_delay(struct ev_loop *l, ev_timer *w, int revents);

void client_init(struct client *c, int id, enum proto p)
{
    memset(c, 0, sizeof *c);
    c->id = id;
    c->proto = p;
    c->fd = -1;
    c->op = -1;
    c->state = C_IDLE;
    c->rng = cfg.seed * 0x9e3779b97f4a7c15ull + (uint64_t)id * 0xbf58476d1ce4e5b9ull + 1;
    ev_init(&c->tmo, on_timeout);
    c->tmo.data = c;
    ev_init(&c->delay, on_delay);
    c->delay.data = c;
}

static void fail(struct client *c, const char *why, bool timeout)
{
    client_close(c);
    work_failed(c, why, timeout);
}

/* --source-addrs N: client i connects from 127.0.0.(2 + i % N), so that
 * more connections than one address has ephemeral ports (~28,000) can be
 * open to one server port. IP_BIND_ADDRESS_NO_PORT leaves the port to
 * connect(), which then only needs the 4-tuple to be unique. */
static bool bind_source(struct client *c, int fd)
{
    if (cfg.source_addrs <= 0)
        return true;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(c->id % cfg.source_addrs));
    return bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
}

/* Starts a non-blocking connect to the client's protocol port (or the
 * idlers' --idle-port); the workload hears work_connected() once it (and
 * with --tls the handshake) completes, work_failed() if it does not. */
void client_connect(struct client *c)
{
    client_close(c);
    bool alt = c->alt && cfg.alt_addrlen > 0;
    const struct sockaddr_storage *to = alt ? &cfg.alt_addr : &cfg.addr[c->proto];
    socklen_t tolen = alt ? cfg.alt_addrlen : cfg.addrlen[c->proto];
    int fam = to->ss_family;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        work_failed(c, strerror(errno), false);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    if (fam == AF_INET && !bind_source(c, fd)) {
        fail(c, strerror(errno), false);
        return;
    }
    c->gen++;
    c->state = C_CONNECTING;
    bbuf_reset(&c->in);
    bbuf_reset(&c->out);
    bbuf_reset(&c->text);
    c->rd_state = 0;
    c->lit_left = c->lit_bytes = 0;
    c->multiline = c->block_started = false;
    c->block_lines = 0;
    c->next_tag = 1;
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    client_arm(c, cfg.timeout);
    if (connect(fd, (const struct sockaddr *)to, tolen) < 0 &&
        errno != EINPROGRESS) {
        fail(c, strerror(errno), false);
        return;
    }
    ev_io_start(loop, &c->wio);
}

void client_close(struct client *c)
{
    ev_timer_stop(loop, &c->tmo);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        ev_io_stop(loop, &c->rio);
        ev_io_stop(loop, &c->wio);
        close(c->fd);
        c->fd = -1;
        c->gen++;
    }
    if (c->state != C_DONE)
        c->state = C_IDLE;
}

void client_arm(struct client *c, double seconds)
{
    ev_timer_stop(loop, &c->tmo);
    if (seconds > 0) {
        ev_timer_set(&c->tmo, seconds, 0);
        ev_timer_start(loop, &c->tmo);
    }
}

void client_later(struct client *c, double seconds)
{
    ev_timer_stop(loop, &c->delay);
    ev_timer_set(&c->delay, seconds > 0 ? seconds : 0, 0);
    ev_timer_start(loop, &c->delay);
}

static void on_delay(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l, (void)revents;
    work_later(w->data);
}

static void on_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l, (void)revents;
    struct client *c = w->data;
    fail(c, c->state == C_CONNECTING ? "connect timed out" : "timed out", true);
}

/* Writes what the output buffer holds; returns false when the connection
 * failed (and has been closed). */
static bool flush(struct client *c)
{
    while (bbuf_avail(&c->out) > 0) {
        ssize_t n = io_write(c, bbuf_data(&c->out), bbuf_avail(&c->out));
        if (n > 0) {
            bbuf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(loop, &c->wio);
            return true;
        }
        fail(c, n < 0 ? strerror(errno) : "write returned 0", false);
        return false;
    }
    ev_io_stop(loop, &c->wio);
    return true;
}

void client_send(struct client *c, const void *data, size_t n)
{
    if (c->fd < 0)
        return;
    bbuf_add(&c->out, data, n);
    if (c->state == C_OPEN && !ev_is_active(&c->wio))
        flush(c);
}

void client_sendf(struct client *c, const char *fmt, ...)
{
    if (c->fd < 0)
        return;
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        fprintf(stderr, "petrel-bench: command too long\n");
        exit(1);
    }
    client_send(c, tmp, (size_t)n);
}

/* The TCP connection (and with --tls its handshake) is up: reading
 * starts, and the workload hears of it. */
static void opened(struct client *c)
{
    c->state = C_OPEN;
    ev_io_stop(loop, &c->wio);
    ev_io_start(loop, &c->rio);
    work_connected(c);
    if (c->fd >= 0 && c->state == C_OPEN)
        flush(c);
}

/* One step of the TLS handshake, from either watcher. */
static void handshake(struct client *c)
{
    int k = SSL_connect(c->ssl);
    if (k == 1) {
        opened(c);
        return;
    }
    int e = SSL_get_error(c->ssl, k);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ev_io_stop(loop, &c->rio);
        ev_io_stop(loop, &c->wio);
        ev_io_start(loop, e == SSL_ERROR_WANT_READ ? &c->rio : &c->wio);
        return;
    }
    unsigned long err = ERR_get_error();
    const char *reason = err ? ERR_reason_error_string(err) : NULL;
    char why[160];
    snprintf(why, sizeof why, "TLS handshake failed: %s", reason ? reason : "connection closed");
    ERR_clear_error();
    fail(c, why, false);
}

static void on_write(struct ev_loop *l, ev_io *w, int revents)
{
    (void)l, (void)revents;
    struct client *c = w->data;
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            fail(c, strerror(err), false);
            return;
        }
        if (!cfg.tls) {
            opened(c);
            return;
        }
        c->ssl = SSL_new(tls_ctx);
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
            fail(c, "cannot make a TLS session", false);
            return;
        }
        c->state = C_HANDSHAKE;
    }
    if (c->state == C_HANDSHAKE) {
        handshake(c);
        return;
    }
    flush(c);
}

/* ------------------------------------------------------------ readers */

/* Finds CRLF (or a bare LF) in the unread input; returns the line length
 * without the terminator and sets *eol to the terminator's length, or -1. */
static long find_eol(struct client *c, size_t *eol)
{
    char *s = bbuf_data(&c->in);
    char *nl = memchr(s, '\n', bbuf_avail(&c->in));
    if (!nl)
        return -1;
    size_t n = (size_t)(nl - s);
    *eol = 1;
    if (n > 0 && s[n - 1] == '\r') {
        n--;
        *eol = 2;
    }
    return (long)n;
}

static enum rstatus imap_status(const char *s, size_t n)
{
    if (n >= 2 && strncasecmp(s, "OK", 2) == 0 && (n == 2 || s[2] == ' '))
        return ST_OK;
    if (n >= 2 && strncasecmp(s, "NO", 2) == 0 && (n == 2 || s[2] == ' '))
        return ST_NO;
    if (n >= 3 && strncasecmp(s, "BAD", 3) == 0 && (n == 3 || s[3] == ' '))
        return ST_BAD;
    if (n >= 3 && strncasecmp(s, "BYE", 3) == 0 && (n == 3 || s[3] == ' '))
        return ST_BYE;
    return ST_OTHER;
}

/* IMAP: returns 1 with *r set when a whole response (its lines and
 * literals) has arrived, 0 when more input is needed, -1 on a framing error.
 * Literal bytes are counted and dropped as they arrive. */
static int read_imap(struct client *c, struct resp *r)
{
    for (;;) {
        if (c->rd_state == 1) {
            size_t take = bbuf_avail(&c->in);
            if (take > c->lit_left)
                take = (size_t)c->lit_left;
            bbuf_consume(&c->in, take);
            c->lit_left -= take;
            c->lit_bytes += take;
            if (c->lit_left > 0)
                return 0;
            c->rd_state = 0;
        }
        size_t eol;
        long n = find_eol(c, &eol);
        if (n < 0)
            return bbuf_avail(&c->in) > MAX_LINE ? -1 : 0;
        const char *s = bbuf_data(&c->in);
        bbuf_add(&c->text, s, (size_t)n);
        bbuf_consume(&c->in, (size_t)n + eol);
        /* A line ending in {N} or {N+} continues after N literal bytes. */
        const char *t = c->text.p, *e = c->text.p + c->text.len;
        if (e > t && e[-1] == '}') {
            const char *q = e - 2;
            if (q >= t && *q == '+')
                q--;
            const char *digits_end = q + 1;
            while (q >= t && *q >= '0' && *q <= '9')
                q--;
            if (q >= t && *q == '{' && q + 1 < digits_end) {
                uint64_t v = 0;
                for (const char *d = q + 1; d < digits_end; d++) {
                    if (v > (UINT64_MAX - 9) / 10)
                        return -1;
                    v = v * 10 + (uint64_t)(*d - '0');
                }
                c->lit_left = v;
                c->rd_state = 1;
                continue;
            }
        }
        /* The whole response is in text. */
        *r = (struct resp){ 0 };
        r->lit_bytes = c->lit_bytes;
        const char *p = c->text.p;
        size_t len = c->text.len;
        if (len >= 2 && p[0] == '*' && p[1] == ' ') {
            r->kind = R_UNTAGGED;
            r->text = p + 2;
            r->len = len - 2;
            r->status = imap_status(r->text, r->len);
        } else if (len >= 1 && p[0] == '+') {
            r->kind = R_CONT;
            r->text = p;
            r->len = len;
        } else {
            const char *sp = memchr(p, ' ', len);
            if (!sp)
                return -1;
            r->kind = R_TAGGED;
            if (p[0] == 'A')
                r->tag = (unsigned)strtoul(p + 1, 0, 10);
            r->text = sp + 1;
            r->len = len - (size_t)(sp + 1 - p);
            r->status = imap_status(r->text, r->len);
        }
        return 1;
    }
}

/* POP3: a status line, or, when c->multiline, a status line followed by
 * (on +OK) a dot-terminated block whose size and line count are summed. */
static int read_pop3(struct client *c, struct resp *r)
{
    for (;;) {
        size_t eol;
        long n = find_eol(c, &eol);
        if (n < 0)
            return bbuf_avail(&c->in) > MAX_LINE ? -1 : 0;
        const char *s = bbuf_data(&c->in);
        if (!c->block_started) {
            bbuf_add(&c->text, s, (size_t)n);
            bbuf_consume(&c->in, (size_t)n + eol);
            bool ok = c->text.len >= 3 && strncmp(c->text.p, "+OK", 3) == 0;
            if (c->multiline && ok) {
                c->block_started = true;
                c->block_lines = 0;
                c->lit_bytes = 0;
                continue;
            }
            *r = (struct resp){ .kind = R_LINE, .status = ok ? ST_OK : ST_ERR,
                                .text = c->text.p, .len = c->text.len };
            return 1;
        }
        bool end = n == 1 && s[0] == '.';
        bbuf_consume(&c->in, (size_t)n + eol);
        if (!end) {
            c->block_lines++;
            c->lit_bytes += (uint64_t)n + 2;
            continue;
        }
        c->block_started = false;
        *r = (struct resp){ .kind = R_BLOCK, .status = ST_OK, .text = c->text.p,
                            .len = c->text.len, .lit_bytes = c->lit_bytes,
                            .lines = c->block_lines };
        return 1;
    }
}

/* LMTP/SMTP: one reply, "NNN-..." lines then "NNN ...". */
static int read_lmtp(struct client *c, struct resp *r)
{
    for (;;) {
        size_t eol;
        long n = find_eol(c, &eol);
        if (n < 0)
            return bbuf_avail(&c->in) > MAX_LINE ? -1 : 0;
        const char *s = bbuf_data(&c->in);
        if (n < 3 || s[0] < '1' || s[0] > '5')
            return -1;
        bool more = n > 3 && s[3] == '-';
        if (c->text.len)
            bbuf_add(&c->text, "\n", 1);
        bbuf_add(&c->text, s, (size_t)n);
        bbuf_consume(&c->in, (size_t)n + eol);
        if (more)
            continue;
        int code = atoi(c->text.p + (c->text.len - (size_t)n));
        *r = (struct resp){ .kind = R_LINE, .code = code, .text = c->text.p, .len = c->text.len,
                            .status = code < 400 ? ST_OK : ST_ERR };
        return 1;
    }
}

static void on_read(struct ev_loop *l, ev_io *w, int revents)
{
    (void)l, (void)revents;
    struct client *c = w->data;
    if (c->state == C_HANDSHAKE) {
        handshake(c);
        return;
    }
    size_t budget = READ_BUDGET;
    bool eof = false, want_write = false;
    /* OpenSSL may hold decrypted bytes the socket will never signal again:
     * those are read whatever the budget. */
    while (budget > 0 || (c->ssl && SSL_pending(c->ssl) > 0)) {
        bbuf_reserve(&c->in, 65536);
        ssize_t n = io_read(c, c->in.p + c->in.len, c->in.cap - c->in.len - 1, &want_write);
        if (n > 0) {
            c->in.len += (size_t)n;
            budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (want_write)
                ev_io_start(loop, &c->wio);
            break;
        }
        if (n < 0) {
            fail(c, strerror(errno), false);
            return;
        }
        eof = true;
        break;
    }
    /* Hand over every complete response; the workload may close or
     * reconnect the client from its callback, which ends this loop. */
    unsigned gen = c->gen;
    while (c->gen == gen && c->fd >= 0) {
        struct resp r;
        int rc;
        switch (c->proto) {
        case PROTO_IMAP: rc = read_imap(c, &r); break;
        case PROTO_POP3: rc = read_pop3(c, &r); break;
        default: rc = read_lmtp(c, &r); break;
        }
        if (rc < 0) {
            fail(c, "malformed response", false);
            return;
        }
        if (rc == 0)
            break;
        work_response(c, &r);
        if (c->gen == gen) {
            bbuf_reset(&c->text);
            c->lit_bytes = 0;
        }
    }
    if (eof && c->gen == gen && c->fd >= 0)
        fail(c, "connection closed by the server", false);
}
