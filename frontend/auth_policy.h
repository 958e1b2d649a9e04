/* Who may send a password, and how often: the policy every authentication
 * path (IMAP LOGIN and AUTHENTICATE, POP3 USER/PASS and AUTH) goes through.
 *
 * Cleartext (plaintext_auth, secure_networks; Dovecot's
 * disable_plaintext_auth and login_trusted_networks): a password may be sent
 * over TLS (implicit, STARTTLS/STLS, or TLS the PROXY v2 header vouches for),
 * or in cleartext when the listener's policy allows it: "always", "never",
 * or "loopback" (the default): from an address in secure_networks (default
 * 127.0.0.0/8 ::1). Per listener: plaintext_auth = loopback,pop3=always.
 * IMAP then advertises LOGINDISABLED and answers NO [PRIVACYREQUIRED]; POP3
 * answers -ERR [AUTH] Plaintext authentication disallowed on non-secure
 * connections. and leaves USER and SASL PLAIN out of CAPA.
 *
 * Throttling, cluster-wide in Redis (works the same on whichever frontend an
 * attempt lands): every definite failure (wrong password, unknown user)
 * counts against the client address (petrel:authfail:ip:<ip>) and the
 * account as typed, lower-cased (petrel:authfail:user:<address>; a name
 * longer than 256 bytes is keyed by its SHA-256). Keys are never shared
 * between two addresses or two accounts (no prefix, no truncation: the
 * CVE-2025-30189 class of mix-ups). Each counter expires auth_failure_window
 * seconds after its last failure.
 *   - Delay: an attempt from an address with n failures waits
 *     auth_failure_delay_ms * 2^(n-1), at most auth_failure_delay_max_ms,
 *     before the password is checked (0, 2, 4, 8, 15, 15 ... s by default).
 *   - Lockout: with auth_lockout_ip failures of the address, or
 *     auth_lockout_account failures of the account, the attempt is answered
 *     at once NO [UNAVAILABLE] (POP3 -ERR [SYS/TEMP]) without checking the
 *     password; never AUTHENTICATIONFAILED, which would tell the password
 *     is wrong. 0 turns either lockout off.
 *   - A successful login resets the account's counter, not the address's
 *     (one known account must not launder an address's guesses).
 *   - Addresses in throttle_exempt (default loopback) have no address
 *     counter: all clients behind a local proxy or webmail would share it.
 *     The account counter still applies to them.
 * Without Redis (down, or no redis_url) each worker keeps the same counters
 * in a bounded in-memory table (AUTH_LOCAL_ENTRIES; the oldest go first).
 *
 * Usage, for any mechanism:
 *     if (!auth_allowed(s)) -> NO [PRIVACYREQUIRED] / -ERR [AUTH] ...
 *     auth_throttle_check(s, user, password, cb)
 *         cb(s, AUTH_GO, password): send the LoginReq; then
 *             auth_result(s, user, false) on a NO (wrong password), or
 *             auth_result(s, user, true) on success (then, for IMAP,
 *             conn_limits_account() before answering OK);
 *         cb(s, AUTH_LOCKED, ...): NO [UNAVAILABLE] / -ERR [SYS/TEMP].
 */
#ifndef PETREL_AUTH_POLICY_H
#define PETREL_AUTH_POLICY_H

#include "cidr.h"
#include "frontend.h"

#include <stdbool.h>

#define AUTH_LOCAL_ENTRIES 8192      /* per-worker fallback table */

enum plaintext_policy { PLAINTEXT_LOOPBACK, PLAINTEXT_ALWAYS, PLAINTEXT_NEVER };

/* Parsed security settings, filled before the workers fork. */
struct security_config {
    enum plaintext_policy plaintext;
    struct {
        char listener[16];
        enum plaintext_policy policy;
    } plaintext_override[8];
    int noverrides;
    struct cidr_list secure_networks;
    struct cidr_list throttle_exempt;
    struct cidr_list proxy_trusted;
    char proxy_listeners[8][16];      /* listener names that read a PROXY header */
    int nproxy;
};
extern struct security_config security;

/* Parses the settings (plaintext_auth, secure_networks, throttle_exempt,
 * proxy_protocol, proxy_trusted). 0, or -1 with one line in err. */
int auth_policy_configure(const struct frontend_settings *cfg, char *err, size_t errlen);
/* True if the listener (imap, imaps, pop3, pop3s, lmtp) reads a PROXY header. */
bool proxy_listener(const char *name);

/* A password may be sent on this connection now. */
bool auth_allowed(const struct session *s);

enum auth_verdict { AUTH_GO, AUTH_LOCKED };
/* user and secret (the password; may be NULL) are copies kept across the
 * wait: cb gets them back; the secret is wiped and freed after cb returns. */
typedef void auth_check_cb(struct session *s, enum auth_verdict v, const char *user,
                           const char *secret);
/* Looks up the counters of s->client_ip and user; cb runs once, after the
 * delay they call for, always from the event loop (never inside this call),
 * and never after the session closed. One check per session at a time. */
void auth_throttle_check(struct session *s, const char *user, const char *secret, auth_check_cb *cb);
/* The backend's verdict on the password of user (as typed; NULL: the user
 * of the session's last auth_throttle_check). Only definite answers: a
 * temporary failure is neither. */
void auth_result(struct session *s, const char *user, bool ok);
/* From the session core when the connection is gone. */
void auth_session_closed(struct session *s);

#endif
