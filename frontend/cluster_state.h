/* Cluster-wide session state in Redis, per frontend worker.
 *
 * Each worker keeps two Redis connections (common/redis_link.c): one for
 * commands, one subscribed to petrel:kick and to petrel:account:<id> for
 * every account it has sessions of (reference counted). Both reconnect on
 * their own; everything here degrades to "not there" without Redis, and
 * logins and mail access go on (redis_url empty switches it all off).
 *
 * Session registry (read by `petrel-admin sessions`):
 *   petrel:session:<id>        hash account account_id protocol node worker
 *                              client started mailbox, expiring after
 *                              session_ttl unless refreshed
 *   petrel:sessions:<address>  set of that address's session ids
 *   petrel:sessions            set of all session ids
 * One timer per worker (every min(session_ttl, pop3_lock_ttl) / 3) re-writes
 * every live session in one pipelined batch, renews POP3 locks and prunes
 * dead members from petrel:sessions. A worker killed with SIGKILL leaves
 * keys that expire within session_ttl; set members whose hash is gone are
 * not live (the admin skips them, the prune removes them).
 *
 * Kick: a message <address> on petrel:kick closes every session of that
 * address on every worker (the protocol's kick hook says goodbye).
 *
 * POP3 maildrop lock: petrel:pop3lock:<account_id> = "<session id>@<pid>",
 * SET NX PX pop3_lock_ttl, renewed by the timer while ours (compare-and-
 * pexpire, re-taken if it vanished, e.g. Redis restarted), released with
 * compare-and-delete. It expires on its own when a node dies. Without Redis
 * the login is allowed (degraded, logged as a warning): refusing every POP3
 * login while Redis is down would turn a cache outage into a mail outage,
 * and the worst case of two concurrent POP3 sessions is the one RFC 1939
 * servers without locking already have (a DELE of a message the other
 * session also listed answers -ERR at RETR and removes it once).
 *
 * Change notifications (backend/notify.h): a message on
 * petrel:account:<id> calls the changed hook of every session of that
 * account on this worker. While the subscription is not confirmed (Redis
 * down), cluster_push_ok() is false and IDLE polls instead; when it is
 * confirmed again every session of the account gets changed(-1) so that
 * nothing missed meanwhile stays unseen. */
#ifndef PETREL_CLUSTER_STATE_H
#define PETREL_CLUSTER_STATE_H

#include "frontend.h"

#include <stdbool.h>
#include <stdint.h>

struct cluster_hooks {
    /* An administrator kicked the session: say goodbye and end it. */
    void (*kick)(struct session *s);
    /* Mail of the session's account changed in mailbox_id (-1: anything
     * may have changed). May be NULL. */
    void (*changed)(struct session *s, int64_t mailbox_id, uint64_t modseq);
};

/* Starts the worker's Redis links and timer; 0 also when redis_url is empty. */
int cluster_state_start(void);
/* The worker's command link, for other cluster-wide state (auth throttling,
 * connection limits); NULL when redis_url is empty. Check redis_link_up(). */
struct redis_link *cluster_redis(void);

/* After a successful login: registers the session (s->user, s->account_id
 * set) and subscribes to its account's changes. */
void cluster_session_login(struct session *s, const struct cluster_hooks *hooks);
/* The selected mailbox for the registry (NULL or "": none). */
void cluster_session_mailbox(struct session *s, const char *mailbox);
/* From the session core when the connection is gone. */
void cluster_session_closed(struct session *s);
/* True while changes of the session's account are being pushed to us; false
 * without Redis (then poll). */
bool cluster_push_ok(const struct session *s);

enum cluster_lock_result {
    CLUSTER_LOCK_OK,          /* locked (or locking is off) */
    CLUSTER_LOCK_DEGRADED,    /* Redis unavailable: allowed without a lock */
    CLUSTER_LOCK_BUSY,        /* another session holds it */
};
/* Takes the POP3 maildrop lock of s->account_id; cb runs once with the
 * result (possibly before this returns), never after the session closed. */
void cluster_pop3_lock(struct session *s, void (*cb)(struct session *s, enum cluster_lock_result r));
/* Releases the lock if held; cb runs once Redis confirmed (or at once). */
void cluster_pop3_unlock(struct session *s, void (*cb)(struct session *s));

#endif
