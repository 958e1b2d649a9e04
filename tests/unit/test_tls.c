/* The TLS transport of struct conn, over a socketpair: the server side runs
 * on a libev loop in this process, the client is a forked child using
 * blocking OpenSSL calls.
 *
 * - echo of 300 KB through TLS with a read limit far below one TLS record,
 *   so decrypted bytes are left inside OpenSSL and must be drained without
 *   the socket signalling them; also with the reader paused and resumed;
 * - STARTTLS: the "OK" goes out in cleartext, a command pipelined after
 *   STARTTLS is dropped, and only what comes inside TLS is read;
 * - a cleartext client on a TLS connection fails the handshake;
 * - the owner dropping its tls_ctx reference (a reload) while connections
 *   use it. */
#include "check.h"

#include "conn.h"
#include "tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ECHO_BYTES (300 * 1024)

static char dir[] = "/tmp/petrel-test-tls-XXXXXX";
static char cert_path[64], key_path[64];

/* A self-signed P-256 certificate for localhost, written as PEM files. */
static int make_cert(void)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, k);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, k, EVP_sha256());
    FILE *f = fopen(cert_path, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_path, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    return 0;
}

/* ---- the client (child process) ---- */

static SSL *client_ssl(int fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, cert_path, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set1_host(ssl, "localhost");
    SSL_set_fd(ssl, fd);
    SSL_CTX_free(ctx);
    return SSL_connect(ssl) == 1 ? ssl : NULL;
}

static int ssl_read_n(SSL *ssl, char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        int r = SSL_read(ssl, p + got, (int)(n - got));
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static char pattern(size_t i) { return (char)('a' + (i * 7 + i / 1000) % 26); }

/* Sends ECHO_BYTES in one SSL_write and checks they come back. */
static int client_echo(int fd)
{
    SSL *ssl = client_ssl(fd);
    if (!ssl)
        return 2;
    char *out = malloc(ECHO_BYTES), *in = malloc(ECHO_BYTES);
    for (size_t i = 0; i < ECHO_BYTES; i++)
        out[i] = pattern(i);
    if (SSL_write(ssl, out, ECHO_BYTES) != ECHO_BYTES)
        return 3;
    if (ssl_read_n(ssl, in, ECHO_BYTES) < 0)
        return 4;
    int rc = memcmp(in, out, ECHO_BYTES) == 0 ? 0 : 5;
    SSL_shutdown(ssl);
    SSL_free(ssl);
    free(in);
    free(out);
    return rc;
}

/* Plain STARTTLS with an injected line, then TLS. */
static int client_starttls(int fd)
{
    const char pre[] = "STARTTLS\r\nINJECTED\r\n";
    if (write(fd, pre, sizeof pre - 1) != (ssize_t)(sizeof pre - 1))
        return 2;
    char ok[4];
    for (size_t i = 0; i < 4; i++)   /* byte by byte: nothing beyond "OK\r\n" */
        if (read(fd, ok + i, 1) != 1)
            return 3;
    if (memcmp(ok, "OK\r\n", 4) != 0)
        return 4;
    SSL *ssl = client_ssl(fd);
    if (!ssl)
        return 5;
    const char msg[] = "HELLO\r\nQUIT\r\n";
    SSL_write(ssl, msg, sizeof msg - 1);
    char bye[5];
    if (ssl_read_n(ssl, bye, 5) < 0 || memcmp(bye, "BYE\r\n", 5) != 0)
        return 6;
    SSL_free(ssl);
    return 0;
}

static int client_cleartext(int fd)
{
    const char msg[] = "a LOGIN x y\r\n";
    if (write(fd, msg, sizeof msg - 1) < 0)
        return 2;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    return 0;
}

/* ---- the server (this process) ---- */

struct server {
    struct conn c;
    struct tls_ctx *tls;
    int mode;                 /* 0 echo, 1 echo with pauses, 2 starttls */
    ev_timer resume;
    unsigned reads;
    struct buf got;           /* starttls: what arrived inside TLS */
    char reason[160];
    bool closed;
};

static void on_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct server *s = t->data;
    conn_resume(&s->c);
}

static void srv_read(struct conn *c)
{
    struct server *s = c->ctx;
    s->reads++;
    if (s->mode == 1 && s->reads % 3 == 0 && !s->c.paused) {
        conn_pause(c);   /* leave what is in OpenSSL there for a while */
        ev_timer_set(&s->resume, 0.002, 0);
        ev_timer_start(c->loop, &s->resume);
        return;
    }
    if (s->mode <= 1) {
        conn_write(c, buf_head(&c->in), buf_len(&c->in));
        buf_consume(&c->in, buf_len(&c->in));
        return;
    }
    if (!conn_is_tls(c)) {
        if (buf_len(&c->in) >= 10 && memcmp(buf_head(&c->in), "STARTTLS\r\n", 10) == 0) {
            buf_consume(&c->in, 10);
            conn_puts(c, "OK\r\n");
            conn_start_tls(c, s->tls);
            CHECK(buf_len(&c->in) == 0);   /* INJECTED dropped */
        }
        return;
    }
    buf_append(&s->got, buf_head(&c->in), buf_len(&c->in));
    buf_consume(&c->in, buf_len(&c->in));
    if (buf_len(&s->got) >= 13) {
        conn_puts(c, "BYE\r\n");
        conn_close_after_flush(c, "done");
    }
}

static void srv_close(struct conn *c, const char *reason)
{
    struct server *s = c->ctx;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    s->closed = true;
    ev_break(c->loop, EVBREAK_ALL);
}

static const struct conn_handler handler = { .on_read = srv_read, .on_close = srv_close };

static void timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* Runs one scenario: the child runs client(fd); returns its exit status. */
static int run(struct tls_ctx *tls, int mode, bool implicit, int (*client)(int),
               struct server *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        _exit(client(sv[1]));
    }
    close(sv[1]);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    *s = (struct server){ .tls = tls, .mode = mode };
    ev_init(&s->resume, on_resume);
    s->resume.data = s;
    conn_init(&s->c, loop, sv[0], &handler, s);
    s->c.read_limit = 1000;   /* far below one 16 KB TLS record */
    if (implicit) {
        conn_start_tls(&s->c, tls);
        /* The handshake starts at once; if the client's first bytes are
         * already there and are not TLS, it has failed and closed already. */
        CHECK(conn_is_tls(&s->c) || s->c.closed);
    }
    ev_timer guard;
    ev_timer_init(&guard, timeout_cb, 30, 0);
    ev_timer_start(loop, &guard);
    ev_run(loop, 0);
    CHECK_MSG(s->closed, "mode %d: timed out", mode);
    if (!s->closed)
        conn_close(&s->c, "timeout");
    ev_timer_stop(loop, &guard);
    ev_timer_stop(loop, &s->resume);
    conn_release(&s->c);
    ev_loop_destroy(loop);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    CHECK(make_cert() == 0);
    char err[256] = "";
    struct tls_settings set = { .cert = cert_path, .key = key_path };
    struct tls_ctx *tls = tls_ctx_new_server(&set, err, sizeof err);
    CHECK_MSG(tls != NULL, "%s", err);
    if (!tls)
        return check_report();
    char serial[32];
    tls_ctx_serial(tls, serial, sizeof serial);
    CHECK_STREQ(serial, "1092");   /* 4242 */

    struct server s;
    int rc = run(tls, 0, true, client_echo, &s);
    CHECK_MSG(rc == 0, "echo: client exit %d, server reason %s", rc, s.reason);
    CHECK(s.c.bytes_in == ECHO_BYTES && s.c.bytes_out == ECHO_BYTES);
    CHECK(s.reads >= ECHO_BYTES / 1000);

    rc = run(tls, 1, true, client_echo, &s);
    CHECK_MSG(rc == 0, "echo with pauses: client exit %d, server reason %s", rc, s.reason);
    CHECK(s.c.bytes_in == ECHO_BYTES);

    rc = run(tls, 2, false, client_starttls, &s);
    CHECK_MSG(rc == 0, "starttls: client exit %d, server reason %s", rc, s.reason);
    CHECK(buf_len(&s.got) == 13 && memcmp(buf_head(&s.got), "HELLO\r\nQUIT\r\n", 13) == 0);
    buf_free(&s.got);

    rc = run(tls, 0, true, client_cleartext, &s);
    CHECK(rc == 0);
    CHECK_MSG(strncmp(s.reason, "TLS handshake failed", 20) == 0, "reason %s", s.reason);

    /* A context the owner already dropped lives on in its connections. */
    struct tls_ctx *gone = tls_ctx_new_server(&set, err, sizeof err);
    struct tls_ctx *keep = tls_ctx_ref(gone);
    tls_ctx_unref(&gone);
    CHECK(gone == NULL);
    rc = run(keep, 0, true, client_echo, &s);
    tls_ctx_unref(&keep);
    CHECK_MSG(rc == 0, "dropped ctx: client exit %d, server reason %s", rc, s.reason);

    /* Bad settings: one clear line. */
    struct tls_settings bad = { .cert = "/nonexistent.pem", .key = key_path };
    CHECK(tls_ctx_new_server(&bad, err, sizeof err) == NULL && strstr(err, "/nonexistent.pem"));
    struct tls_settings badc = { .cert = cert_path, .key = key_path, .ciphers = "NOPE-CIPHER" };
    CHECK(tls_ctx_new_server(&badc, err, sizeof err) == NULL && strstr(err, "tls_ciphers"));

    tls_ctx_unref(&tls);
    unlink(cert_path);
    unlink(key_path);
    rmdir(dir);
    return check_report();
}
