/* Change notifications: after a change to an account's mail has committed
 * (APPEND, STORE, EXPUNGE, CREATE, COPY/MOVE, LMTP delivery),
 * the backend PUBLISHes one small message on Redis channel
 * petrel:account:<account_id>:
 *
 *     <mailbox_id> <modseq> <session>
 *
 * mailbox_id is the mailbox changed (0: not known), modseq its new
 * HIGHESTMODSEQ when known (else 0), session the frontend session id that
 * made the change ("-" for none, e.g. LMTP) so that session can skip it.
 * Frontends subscribe per account while they hold sessions of it and resync
 * the sessions that have that mailbox selected.
 *
 * Fire and forget: the message is only queued on the worker's Redis link and
 * written when the socket is writable, so it never delays an RPC reply.
 * Without Redis (redis_url empty, or Redis down) nothing is sent; frontends
 * then fall back to polling. */
#ifndef PETREL_NOTIFY_H
#define PETREL_NOTIFY_H

#include <ev.h>
#include <stdint.h>

/* Per worker; url empty: notifications off. Returns -1 on an invalid url. */
int notify_start(struct ev_loop *loop, const char *url, const char *node, int worker);
void notify_stop(void);
void notify_change(int64_t account_id, int64_t mailbox_id, uint64_t modseq, const char *session);

#endif
