/* TLS for struct conn (OpenSSL 3): server contexts and the TLS transport.
 *
 * A tls_ctx is an SSL_CTX built from settings (certificate and key files,
 * TLS 1.2 and 1.3 only, configurable cipher lists) plus any number of extra
 * certificates chosen by SNI. It is reference counted: the owner holds one
 * reference, every connection using it another, so a reload (SIGHUP) builds a
 * new tls_ctx for new connections while live sessions keep the old one until
 * they end.
 *
 * A connection becomes TLS with conn_start_tls() (conn.h): at once for an
 * implicit-TLS listener, or after the cleartext "OK, begin TLS" answer for
 * STARTTLS/STLS. The transport then runs through conn's vtable (conn_type):
 * reads and writes may each need the socket readable or writable (a TLS 1.3
 * key update, a renegotiation attempt), and decrypted bytes still buffered
 * inside OpenSSL are drained even though the socket will not signal them.
 *
 * OpenSSL writes with write(2): the process must ignore SIGPIPE (the
 * supervisor does before forking workers). */
#ifndef PETREL_TLS_H
#define PETREL_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct tls_ctx;

struct tls_settings {
    const char *cert;          /* PEM certificate chain file (leaf first) */
    const char *key;           /* PEM private key file */
    const char *certs;         /* extra "cert:key" pairs, comma-separated, for SNI;
                                  NULL or "": none. A client's server name picks
                                  the first whose certificate matches it, else
                                  cert/key serve. */
    const char *ciphers;       /* TLS 1.2 cipher list (OpenSSL syntax); NULL/"": default */
    const char *ciphersuites;  /* TLS 1.3 suites; NULL/"": default */
};

/* Modern defaults (Mozilla "intermediate": forward secrecy, AEAD only). */
#define TLS_DEFAULT_CIPHERS                                                                  \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                             \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                             \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                             \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
#define TLS_DEFAULT_CIPHERSUITES \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* Builds a server context. Returns it with one reference held by the
 * caller, or NULL with one line in err (file, reason) on failure. */
struct tls_ctx *tls_ctx_new_server(const struct tls_settings *set, char *err, size_t errlen);
/* Takes / drops a reference; the last drop frees it. NULL is ignored. */
struct tls_ctx *tls_ctx_ref(struct tls_ctx *t);
void tls_ctx_unref(struct tls_ctx **t);

/* Serial number of the default certificate, hex (for logs). */
void tls_ctx_serial(const struct tls_ctx *t, char *out, size_t outlen);

/* Used by conn.c: attaches a server-side SSL for t to c's socket and makes c
 * use the TLS transport. Returns 0, or -1 with c->error set. */
struct conn;
int tls_conn_attach(struct conn *c, struct tls_ctx *t);

#endif
