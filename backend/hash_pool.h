/* Password checks off the event loop. A yescrypt check costs ~20 ms of CPU
 * and 16 MiB of scratch memory; done inline it would stall every other
 * request of the worker for that long. A few threads per worker do only
 * this (as Dovecot's auth-worker processes do), and the answer comes back to
 * the loop through an ev_async. No thread ever touches anything else. */
#ifndef PETREL_HASH_POOL_H
#define PETREL_HASH_POOL_H

#include <ev.h>
#include <stdbool.h>

typedef void hash_done_cb(bool ok, void *ctx);

/* threads 0: checks run inline (tests, tiny deployments). */
int hash_pool_start(struct ev_loop *loop, int threads);
/* Checks password against a crypt(3) hash; cb runs later on the loop. The
 * strings are copied (and the password copy wiped after use). */
void hash_pool_verify(const char *password, const char *hash, hash_done_cb *cb, void *ctx);

#endif
