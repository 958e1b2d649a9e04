#include "stream_txn.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

/* The ROLLBACK finished (or there was nothing to roll back): no callback of
 * the op can fire any more. */
static void rolled_back(const struct db_result *ignored, void *ctx)
{
    struct stream_txn *t = ctx;
    struct rpc_req *req = t->req;
    ev_timer_stop(backend->loop, &t->defer);
    if (t->pin) {
        db_pin_release(t->pin);
        t->pin = NULL;
    }
    bool use_db = t->fail_db;
    Petrel__Status status = t->fail_status;
    char state[sizeof t->fail_state], text[sizeof t->fail_text];
    memcpy(state, t->fail_state, sizeof state);
    memcpy(text, t->fail_text, sizeof text);
    t->free_state(t);
    if (req->cancelled)
        rpc_done(req);
    else if (use_db)
        rpc_fail_db(req, &(struct db_result){ DB_ERROR, NULL, state, text });
    else
        rpc_fail(req, status, text);
}

static void deferred(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct stream_txn *t = (struct stream_txn *)((char *)w - offsetof(struct stream_txn, defer));
    if (t->pin_waiting)
        return;   /* pinned() finishes once the connection arrives */
    if (t->pin)
        db_exec(backend->db, t->pin, "ROLLBACK", rolled_back, t);
    else
        rolled_back(NULL, t);
}

static void fail(struct stream_txn *t)
{
    t->failed = true;
    ev_timer_init(&t->defer, deferred, 0., 0.);
    ev_timer_start(backend->loop, &t->defer);
}

void stream_txn_fail(struct stream_txn *t, Petrel__Status status, const char *text)
{
    if (t->failed || t->committing)
        return;
    t->fail_db = false;
    t->fail_status = status;
    snprintf(t->fail_text, sizeof t->fail_text, "%s", text);
    fail(t);
}

void stream_txn_fail_db(struct stream_txn *t, const struct db_result *r)
{
    if (t->failed || t->committing)
        return;
    if (r->status == DB_TEMPFAIL) {
        stream_txn_fail(t, PETREL__STATUS__TEMPFAIL, r->message);
        return;
    }
    t->fail_db = true;
    snprintf(t->fail_state, sizeof t->fail_state, "%s", r->sqlstate);
    snprintf(t->fail_text, sizeof t->fail_text, "%s", r->message);
    fail(t);
}

static void commit_done(const struct db_result *r, void *ctx)
{
    struct stream_txn *t = ctx;
    /* The transaction is over either way: nothing to roll back. */
    db_pin_release(t->pin);
    t->pin = NULL;
    if (r->status != DB_OK) {
        t->committing = false;
        stream_txn_fail_db(t, r);
        return;
    }
    /* PostgreSQL answers COMMIT of a transaction a statement broke with
     * "ROLLBACK": the op should never get here then, but must not reply OK. */
    if (r->res && strcmp(PQcmdStatus(r->res), "COMMIT") != 0) {
        t->committing = false;
        log_error("\"commit rolled back\" session=%s op=%s", t->req->session, t->req->op);
        stream_txn_fail(t, PETREL__STATUS__TEMPFAIL, "Internal error");
        return;
    }
    if (t->req->cancelled)
        log_info("\"stream committed after the frontend left\" session=%s op=%s",
                 t->req->session, t->req->op);
    t->committed(t);
}

void stream_txn_commit(struct stream_txn *t)
{
    t->committing = true;
    db_exec(backend->db, t->pin, "COMMIT", commit_done, t);
}

static void begun(const struct db_result *r, void *ctx)
{
    struct stream_txn *t = ctx;
    if (t->failed)
        return;
    if (r->status != DB_OK)
        stream_txn_fail_db(t, r);
    else
        t->begun(t);
}

static void pinned(struct db_pin *pin, const char *error, void *ctx)
{
    struct stream_txn *t = ctx;
    t->pin_waiting = false;
    t->pin = pin;
    if (t->failed) {   /* failed while waiting: the deferred step has passed */
        rolled_back(NULL, t);
        return;
    }
    if (!pin) {
        stream_txn_fail(t, PETREL__STATUS__TEMPFAIL, error ? error : "database unavailable");
        return;
    }
    db_exec(backend->db, pin, "BEGIN", begun, t);
}

void stream_txn_start(struct stream_txn *t, struct rpc_req *req)
{
    t->req = req;
    t->pin_waiting = true;
    db_pin_acquire(backend->db, pinned, t);
}
