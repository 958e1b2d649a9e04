/* IDLE (RFC 2177) and what the cluster tells IMAP sessions.
 *
 * "+ idling", then the command runs until the client sends DONE (tagged OK)
 * or any other line (tagged BAD). While it runs, the input loop hands lines
 * to imap_idle_input() instead of the command reader. Changes reach the
 * session as pushes from Redis (cluster_state.c -> imap_changed()), each
 * running imap_sync() (changes since the session's modseq: EXPUNGE or
 * VANISHED, EXISTS, FETCH FLAGS) right away; a
 * change arriving during a resync runs exactly one more afterwards, however
 * many arrive. Without push (no Redis, or its subscription not confirmed) the
 * session polls the backend every imap_idle_poll seconds. "* OK Still here"
 * goes out every imap_idle_keepalive seconds so that NAT boxes keep the
 * connection. The autologout timer restarts with IDLE (RFC 2177: clients
 * re-issue IDLE at least every 29 minutes; imap_autologout defaults to 30).
 *
 * A session that is not idling only gets is->changed set; the next IDLE
 * starts with a resync, NOOP and CHECK resync anyway. */
#include "imap/imap_session.h"

#include "cluster_state.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest line read while idling ("DONE" is all that is expected). */
#define IDLE_MAX_LINE 1024

struct imap_idle {
    struct imap_session *is;
    ev_timer keepalive;
    ev_timer poll;
    bool syncing;      /* imap_sync() in flight */
    bool again;        /* a change came during it: one more */
    bool done;         /* DONE read (answered once the sync is over) */
    bool bad;          /* some other line read */
};

static void start_sync(struct imap_session *is);

static void finish(struct imap_session *is)
{
    struct imap_idle *st = is->idle;
    if (st->done)
        imap_done(is, "OK", "Idle completed.");
    else
        imap_done(is, "BAD", "Expected DONE.");
}

static void synced(struct imap_session *is)
{
    struct imap_idle *st = is->idle;
    /* imap_sync() left its state in cmd_state (IDLE has none of its own). */
    if (is->cmd_free && is->cmd_state)
        is->cmd_free(is->cmd_state);
    is->cmd_state = NULL;
    is->cmd_free = NULL;
    st->syncing = false;
    if (st->done || st->bad) {
        finish(is);
        return;
    }
    if (st->again)
        start_sync(is);
}

static void start_sync(struct imap_session *is)
{
    struct imap_idle *st = is->idle;
    st->syncing = true;
    st->again = false;
    imap_sync(is, synced);
}

/* Something changed: resync now, or once more after the running one. */
static void idle_kick(struct imap_session *is)
{
    struct imap_idle *st = is->idle;
    if (st->done || st->bad || is->s.closing)
        return;
    if (st->syncing)
        st->again = true;
    else
        start_sync(is);
}

static void on_keepalive(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct imap_idle *st = t->data;
    imap_untagged(st->is, "OK Still here");
}

static void on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct imap_idle *st = t->data;
    if (!cluster_push_ok(&st->is->s))
        idle_kick(st->is);
}

void imap_idle_free(struct imap_session *is)
{
    struct imap_idle *st = is->idle;
    if (!st)
        return;
    ev_timer_stop(frontend->loop, &st->keepalive);
    ev_timer_stop(frontend->loop, &st->poll);
    free(st);
    is->idle = NULL;
}

bool imap_idle_input(struct imap_session *is)
{
    struct imap_idle *st = is->idle;
    if (!st || st->done || st->bad || is->s.closing)
        return false;
    struct buf *in = &is->s.conn.in;
    size_t avail = buf_len(in);
    const char *p = buf_head(in);
    size_t scan = avail < IDLE_MAX_LINE ? avail : IDLE_MAX_LINE;
    const char *nl = memchr(p, '\n', scan);
    if (!nl) {
        if (avail < IDLE_MAX_LINE)
            return false;   /* wait for the rest of the line */
        buf_consume(in, avail);
        st->bad = true;
    } else {
        size_t len = (size_t)(nl - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        st->done = len == 4 && strncasecmp(p, "DONE", 4) == 0;
        st->bad = !st->done;
        buf_consume(in, (size_t)(nl - p) + 1);
    }
    session_touch(&is->s);
    if (!st->syncing)
        finish(is);
    return true;
}

void cmd_idle(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count) {
        imap_done(is, "BAD", "IDLE takes no arguments.");
        return;
    }
    struct imap_idle *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->is = is;
    double ka = (double)frontend->cfg->imap_idle_keepalive;
    double poll = (double)frontend->cfg->imap_idle_poll;
    ev_timer_init(&st->keepalive, on_keepalive, ka, ka);
    st->keepalive.data = st;
    ev_timer_start(frontend->loop, &st->keepalive);
    ev_timer_init(&st->poll, on_poll, poll, poll);
    st->poll.data = st;
    ev_timer_start(frontend->loop, &st->poll);
    is->idle = st;
    session_touch(&is->s);
    buf_puts(imap_out(is), "+ idling\r\n");
    imap_flush(is);
    /* What changed since the last command, or anything when nobody pushes. */
    if (is->changed || !cluster_push_ok(&is->s))
        start_sync(is);
}

/* ---- hooks for cluster_state.c ---- */

static void imap_kick(struct session *s)
{
    conn_puts(&s->conn, "* BYE Session kicked by administrator.\r\n");
    session_end(s, "kicked by administrator");
}

static void imap_changed(struct session *s, int64_t mailbox_id, uint64_t modseq)
{
    struct imap_session *is = (struct imap_session *)s;
    /* Not selected (or a SELECT in flight): remember it, it costs one resync. */
    if (is->state == IMAP_SELECTED && mailbox_id > 0 && mailbox_id != is->sel.mailbox_id)
        return;
    /* A modseq the session has reported up to already (its own STORE or
     * EXPUNGE, imap_sel_own_change): nothing new. */
    if (is->state == IMAP_SELECTED && mailbox_id == is->sel.mailbox_id && modseq &&
        modseq <= is->sel.highestmodseq)
        return;
    is->changed = true;
    if (is->idle)
        idle_kick(is);
}

const struct cluster_hooks imap_cluster_hooks = { .kick = imap_kick, .changed = imap_changed };
