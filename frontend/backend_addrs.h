/* The `backends` setting as a set of addresses that changes: each entry is a
 * numeric address or a host name that may resolve to many, e.g. a
 * Kubernetes headless Service (links to every address, looked up again every
 * backends_refresh seconds). Lookups block, so they run in a helper thread
 * and hand their answer back to the worker's loop (ev_async). */
#ifndef PETREL_BACKEND_ADDRS_H
#define PETREL_BACKEND_ADDRS_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

struct backend_target {
    char *spec;      /* as configured, "host:port" */
    char *host;      /* brackets of an IPv6 literal removed */
    char *port;
    bool numeric;    /* an address already: no lookup */
};

/* Splits a comma- (or space-) separated host:port list. Returns the number of
 * entries (*out malloc'd) or -1 with err set. */
int backend_targets_parse(const char *spec, struct backend_target **out, char *err, size_t errlen);
void backend_targets_free(struct backend_target *t, int n);

/* Resolves t (blocking) into its addresses as "1.2.3.4:7100" / "[::1]:7100",
 * sorted, duplicates dropped. Returns the count (*addrs_r malloc'd, each
 * string too) or -1 with err set. */
int backend_resolve(const struct backend_target *t, char ***addrs_r, char *err, size_t errlen);
void backend_addrs_free(char **addrs, int n);

/* The change from the addresses in use (cur) to a new answer (next):
 * cur_keep[i] says whether cur[i] is still in next, next_new[j] whether
 * next[j] is not in cur yet. Either list may hold duplicates. */
void backend_addrs_diff(char *const *cur, int ncur, char *const *next, int nnext, bool *cur_keep,
                        bool *next_new);

/* Looks up every named target in a helper thread, one round at a time;
 * done() runs on the loop once per named target of a round, with the answer
 * (addrs, n, owned by the callee) or an error (n < 0, addrs NULL). */
typedef void backend_resolved_cb(int target, char **addrs, int n, const char *err, void *ctx);
struct backend_resolver;
struct backend_resolver *backend_resolver_new(struct ev_loop *loop, const struct backend_target *t,
                                              int n, backend_resolved_cb *done, void *ctx);
/* Starts a round unless one is still running (then returns false). */
bool backend_resolver_kick(struct backend_resolver *r);

#endif
