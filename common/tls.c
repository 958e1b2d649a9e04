/* TLS contexts and the TLS transport of struct conn (see tls.h). */
#include "tls.h"

#include "conn.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tls_ctx {
    int refs;                  /* owner + one per connection using it */
    SSL_CTX *ctx;              /* the default certificate (tls_cert/tls_key) */
    SSL_CTX **sni;             /* extra certificates picked by server name */
    size_t nsni;
};

/* ---- contexts ---- */

/* The reason of OpenSSL's latest error, or fallback. Clears the queue. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : fallback;
}

static SSL_CTX *load_ctx(const struct tls_settings *set, const char *cert, const char *key,
                         char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: cannot create a context: %s", ssl_reason("?"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* No renegotiation (a DoS lever, and a read that would need a write),
     * no compression (CRIME); a peer that drops the TCP connection without
     * close_notify is an ordinary end of stream for line protocols. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* conn retries a write with out's head, which may have moved (the buffer
     * grew) and grown since: both allowed by these modes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"petrel", 6);
    const char *ciphers = set->ciphers && *set->ciphers ? set->ciphers : TLS_DEFAULT_CIPHERS;
    const char *suites =
        set->ciphersuites && *set->ciphersuites ? set->ciphersuites : TLS_DEFAULT_CIPHERSUITES;
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        snprintf(err, errlen, "tls_ciphers \"%s\": %s", ciphers, ssl_reason("no usable cipher"));
        goto fail;
    }
    if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
        snprintf(err, errlen, "tls_ciphersuites \"%s\": %s", suites, ssl_reason("no usable suite"));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "TLS certificate %s: %s", cert, ssl_reason("cannot load"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "TLS key %s: %s", key, ssl_reason("cannot load"));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "TLS key %s does not match certificate %s: %s", key, cert,
                 ssl_reason("mismatch"));
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Picks the certificate for the client's server name (SNI): the default one
 * if it matches, else the first extra one that does, else the default. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    struct tls_ctx *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || !*name)
        return SSL_TLSEXT_ERR_NOACK;
    size_t len = strlen(name);
    X509 *x = SSL_CTX_get0_certificate(t->ctx);
    if (x && X509_check_host(x, name, len, 0, NULL) == 1)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < t->nsni; i++) {
        x = SSL_CTX_get0_certificate(t->sni[i]);
        if (x && X509_check_host(x, name, len, 0, NULL) == 1) {
            SSL_set_SSL_CTX(ssl, t->sni[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/* Loads the "cert:key,cert:key" list into t->sni. */
static int load_sni(struct tls_ctx *t, const struct tls_settings *set, char *err, size_t errlen)
{
    char *list = strdup(set->certs), *save = NULL;
    if (!list)
        abort();
    int rc = 0;
    for (char *item = strtok_r(list, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save)) {
        item = trim(item);
        if (!*item)
            continue;
        char *colon = strchr(item, ':');
        if (!colon || colon == item || !colon[1]) {
            snprintf(err, errlen, "tls_certs: \"%s\" is not CERT:KEY", item);
            rc = -1;
            break;
        }
        *colon = '\0';
        SSL_CTX *ctx = load_ctx(set, trim(item), trim(colon + 1), err, errlen);
        if (!ctx) {
            rc = -1;
            break;
        }
        SSL_CTX **n = realloc(t->sni, (t->nsni + 1) * sizeof *n);
        if (!n)
            abort();
        t->sni = n;
        t->sni[t->nsni++] = ctx;
    }
    free(list);
    return rc;
}

struct tls_ctx *tls_ctx_new_server(const struct tls_settings *set, char *err, size_t errlen)
{
    if (!set->cert || !*set->cert || !set->key || !*set->key) {
        snprintf(err, errlen, "TLS needs both tls_cert and tls_key");
        return NULL;
    }
    struct tls_ctx *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->refs = 1;
    t->ctx = load_ctx(set, set->cert, set->key, err, errlen);
    if (!t->ctx || (set->certs && *set->certs && load_sni(t, set, err, errlen) < 0)) {
        tls_ctx_unref(&t);
        return NULL;
    }
    if (t->nsni > 0) {
        SSL_CTX_set_tlsext_servername_callback(t->ctx, on_servername);
        SSL_CTX_set_tlsext_servername_arg(t->ctx, t);
    }
    return t;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *t)
{
    if (t)
        t->refs++;
    return t;
}

void tls_ctx_unref(struct tls_ctx **tp)
{
    struct tls_ctx *t = *tp;
    *tp = NULL;
    if (!t || --t->refs > 0)
        return;
    for (size_t i = 0; i < t->nsni; i++)
        SSL_CTX_free(t->sni[i]);
    free(t->sni);
    SSL_CTX_free(t->ctx);
    free(t);
}

void tls_ctx_serial(const struct tls_ctx *t, char *out, size_t outlen)
{
    snprintf(out, outlen, "?");
    X509 *x = t ? SSL_CTX_get0_certificate(t->ctx) : NULL;
    BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex)
        snprintf(out, outlen, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
}

/* ---- the transport ---- */

/* Maps a failed SSL_* call to CONN_IO_*, setting c->error (what). */
static int ssl_fail(struct conn *c, int ret, const char *what)
{
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return CONN_IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return CONN_IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_last_error() == 0) {
            if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
                /* The peer is gone: for a read an end of stream, for a
                 * write or handshake an error without more to say. */
                snprintf(c->error_buf, sizeof c->error_buf, "%s: connection closed by peer", what);
                c->error = c->error_buf;
                return strcmp(what, "TLS read") == 0 ? 0 : CONN_IO_ERROR;
            }
            snprintf(c->error_buf, sizeof c->error_buf, "%s: %s", what, strerror(errno));
            c->error = c->error_buf;
            return CONN_IO_ERROR;
        }
        /* fall through */
    default:
        snprintf(c->error_buf, sizeof c->error_buf, "%s: %s", what, ssl_reason("error"));
        c->error = c->error_buf;
        return CONN_IO_ERROR;
    }
}

static ssize_t tls_read(struct conn *c, void *p, size_t n)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    return r > 0 ? r : ssl_fail(c, r, "TLS read");
}

static ssize_t tls_write(struct conn *c, const void *p, size_t n)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    if (r > 0)
        return r;
    int rc = ssl_fail(c, r, "TLS write");
    if (rc == 0) {   /* close_notify received: writing is over */
        c->error = "TLS write: connection closed by peer";
        rc = CONN_IO_ERROR;
    }
    return rc;
}

static int tls_handshake(struct conn *c)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1)
        return 0;
    int rc = ssl_fail(c, r, "TLS handshake failed");
    if (rc == 0) {
        c->error = "TLS handshake failed: connection closed by peer";
        rc = CONN_IO_ERROR;
    }
    return rc;
}

static size_t tls_pending(const struct conn *c)
{
    int n = c->ssl ? SSL_pending(c->ssl) : 0;
    return n > 0 ? (size_t)n : 0;
}

static void tls_close(struct conn *c)
{
    if (!c->ssl)
        return;
    /* One non-blocking close_notify, best effort: the socket closes next. */
    if (!c->handshaking && SSL_is_init_finished(c->ssl) && !c->peer_eof)
        SSL_shutdown(c->ssl);
    ERR_clear_error();
    SSL_free(c->ssl);
    c->ssl = NULL;
    tls_ctx_unref(&c->tls);
    c->type = &conn_type_socket;
}

static const struct conn_type conn_type_tls = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .handshake = tls_handshake,
    .pending = tls_pending,
    .close = tls_close,
};

int tls_conn_attach(struct conn *c, struct tls_ctx *t)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
        snprintf(c->error_buf, sizeof c->error_buf, "TLS: cannot start: %s", ssl_reason("?"));
        c->error = c->error_buf;
        SSL_free(ssl);
        return -1;
    }
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    c->tls = tls_ctx_ref(t);
    c->type = &conn_type_tls;
    return 0;
}
