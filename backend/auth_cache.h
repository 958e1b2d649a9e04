/* A per-worker cache of recent successful password checks, so a client that
 * logs in again and again (every mobile client does) does not pay a full
 * yescrypt computation each time, as Dovecot's auth_cache does.
 *
 * An entry is the SHA-256 of (address, password, stored hash): it can only
 * ever match the same account with the same credential, and a password change
 * (a new stored hash) or a wrong password misses. Failures are never cached,
 * so guessing still costs a full hash per attempt. */
#ifndef PETREL_AUTH_CACHE_H
#define PETREL_AUTH_CACHE_H

#include <stdbool.h>

/* ttl_seconds 0 turns the cache off. */
void auth_cache_init(int entries, double ttl_seconds);
bool auth_cache_hit(const char *address, const char *password, const char *stored_hash);
void auth_cache_add(const char *address, const char *password, const char *stored_hash);

#endif
