/* Accepted connections on a proxy_protocol listener wait here until their
 * PROXY header has arrived, before any session exists: nothing is sent (no
 * greeting, no TLS handshake) and nothing else is read until then. The
 * header is taken from the socket exactly (MSG_PEEK, then only its own
 * bytes), so what follows (a TLS ClientHello, a pipelined command) stays in
 * the socket for the session. A peer not in proxy_trusted, an invalid or
 * truncated header, or none within proxy_timeout seconds closes the
 * connection (logged). */
#ifndef PETREL_PROXY_GATE_H
#define PETREL_PROXY_GATE_H

#include <stdbool.h>

/* Called with the client address the header gave (the peer's own for
 * LOCAL/UNKNOWN/UNSPEC/UNIX) and whether the proxy says the client used
 * TLS. listener is the caller's, passed through. */
typedef void proxy_admit_fn(void *listener, int fd, const char *client_ip, bool secured);

void proxy_gate_start(void *listener, const char *name, int fd, proxy_admit_fn *admit);
/* Connections waiting for their header (they count against max_connections). */
long proxy_gate_pending(void);

#endif
