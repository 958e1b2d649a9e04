/* The transaction of a streamed write (APPEND, MULTIAPPEND, LMTP DELIVER):
 * a pinned connection, BEGIN, whatever the op writes as its bytes arrive,
 * and either COMMIT or, on any failure or a Cancel before the end,
 * ROLLBACK; mail is never half stored.
 *
 * The op embeds a struct stream_txn in its state and fills in the three
 * callbacks. A failure is recorded at once (failed: from then on every
 * callback of the op must do nothing) and handled on the next loop
 * iteration, so no caller ever finds its state freed under it: ROLLBACK runs
 * after the queries already queued on the pin (their callbacks see failed),
 * then free_state, then the failure reply (none to a cancelled request). */
#ifndef PETREL_STREAM_TXN_H
#define PETREL_STREAM_TXN_H

#include "backend.h"

struct stream_txn {
    struct rpc_req *req;
    struct db_pin *pin;
    bool pin_waiting;            /* db_pin_acquire has not called back */
    bool failed;                 /* the transaction will roll back */
    bool committing;             /* COMMIT sent: its answer decides, failures are ignored */
    bool fail_db;                /* reply with rpc_fail_db (else status/text) */
    Petrel__Status fail_status;
    char fail_state[8];
    char fail_text[256];
    ev_timer defer;              /* runs the failure off the caller's stack */
    /* BEGIN succeeded: write. */
    void (*begun)(struct stream_txn *t);
    /* COMMIT succeeded (the pin is released): reply, then free the state. */
    void (*committed)(struct stream_txn *t);
    /* Frees the op's state (which holds t) before a failure reply. */
    void (*free_state)(struct stream_txn *t);
};

/* Pins a connection and sends BEGIN; t's callbacks must be set. */
void stream_txn_start(struct stream_txn *t, struct rpc_req *req);
/* Fails with an RPC status (the first failure wins). */
void stream_txn_fail(struct stream_txn *t, Petrel__Status status, const char *text);
/* Fails with a database error, answered as rpc_fail_db() would. */
void stream_txn_fail_db(struct stream_txn *t, const struct db_result *r);
/* Sends COMMIT after everything queued on the pin; from here on the
 * outcome is COMMIT's. */
void stream_txn_commit(struct stream_txn *t);

#endif
