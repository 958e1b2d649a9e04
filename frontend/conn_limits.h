/* Connection limits, cluster-wide (Redis) with a per-worker fallback.
 *
 * max_connections_per_ip: client connections from one address on IMAP and
 * POP3 listeners (LMTP is the MTA's and is not limited; neither are
 * addresses in throttle_exempt). Checked before the greeting; over the
 * limit the client gets "* BYE [LIMIT] Too many connections from your
 * address." (POP3 "-ERR [SYS/TEMP] ...") and is disconnected.
 *
 * max_connections_per_account: IMAP sessions of one account from one client
 * address (Dovecot's mail_max_userip_connections; not for addresses in
 * throttle_exempt, e.g. a local webmail), checked after the
 * password was accepted; over the limit LOGIN/AUTHENTICATE answers
 * NO [LIMIT] and the session stays unauthenticated. (POP3 has its maildrop
 * lock: one session per account.)
 *
 * In Redis each limit is a sorted set, petrel:conn:ip:<ip> and
 * petrel:conn:user:<ip>/<address>, whose members are session ids scored
 * with an expiry time (Redis's clock). A Lua script drops expired members,
 * counts and adds atomically, so concurrent connections on any frontends
 * never both take the last place. The session's member is removed when it
 * closes; one timer per worker (every session_ttl / 3) pushes the expiry of
 * every live member forward (and puts them back after a Redis restart), so
 * the members of a frontend that died vanish within session_ttl and a
 * crash never leaks a count.
 *
 * Without Redis (down, or no redis_url) each worker counts its own
 * connections and applies the same limits to them alone. */
#ifndef PETREL_CONN_LIMITS_H
#define PETREL_CONN_LIMITS_H

#include "frontend.h"

#include <stdbool.h>

/* A new session (client_ip known, TLS started, greeting not sent): calls
 * start(s) at once, or later after Redis answered (the connection is paused
 * meanwhile), or refuses and ends the session. */
void conn_limits_admit(struct session *s, void (*start)(struct session *s));
/* After a successful IMAP login (s->user set): cb(s, true) to go on, or
 * cb(s, false): over max_connections_per_account. cb may run before this
 * returns; never after the session closed. */
void conn_limits_account(struct session *s, void (*cb)(struct session *s, bool ok));
/* From the session core when the connection is gone. */
void conn_limits_closed(struct session *s);

#endif
