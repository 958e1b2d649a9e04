/* CONDSTORE / QRESYNC support shared by the commands (imap_condstore.h):
 * the ChangesReq call, applying its answer to the session's map, and the
 * VANISHED / FETCH forms of change reports. */
#include "imap/imap_condstore.h"

#include "cluster_state.h"

#include <stdlib.h>
#include <string.h>

struct imap_changes_call {
    struct imap_session *is;
    imap_changes_cb *cb;
    void *arg;
    struct imap_changes ch;
};

static void changes_free(struct imap_changes *ch)
{
    for (size_t i = 0; i < ch->nchanged; i++)
        imap_free_keywords(ch->changed[i].keywords, ch->changed[i].nkw);
    free(ch->changed);
    free(ch->vanished);
    memset(ch, 0, sizeof *ch);
}

void imap_changes_call_free(struct imap_changes_call *c)
{
    if (!c)
        return;
    changes_free(&c->ch);
    free(c);
}

static void add_batch(struct imap_changes *ch, const Petrel__ChangesResp *r)
{
    ch->highestmodseq = r->highestmodseq;
    ch->uidnext = r->uidnext;
    ch->uidvalidity = r->uidvalidity;
    ch->too_old = r->too_old;
    if (ch->nchanged + r->n_changed > ch->cap_changed) {
        ch->cap_changed = (ch->nchanged + r->n_changed) * 2;
        ch->changed = realloc(ch->changed, ch->cap_changed * sizeof *ch->changed);
        if (!ch->changed)
            abort();
    }
    for (size_t i = 0; i < r->n_changed; i++) {
        const Petrel__MessageMeta *m = r->changed[i];
        struct imap_change *c = &ch->changed[ch->nchanged++];
        c->uid = m->uid;
        c->flags = m->flags;
        c->modseq = m->modseq;
        c->nkw = m->n_keywords;
        c->keywords = m->n_keywords ? malloc(m->n_keywords * sizeof *c->keywords) : NULL;
        for (size_t k = 0; k < m->n_keywords; k++)
            c->keywords[k] = strdup(m->keywords[k]);
    }
    if (ch->nvanished + r->n_vanished > ch->cap_vanished) {
        ch->cap_vanished = (ch->nvanished + r->n_vanished) * 2;
        ch->vanished = realloc(ch->vanished, ch->cap_vanished * sizeof *ch->vanished);
        if (!ch->vanished)
            abort();
    }
    if (r->n_vanished)
        memcpy(&ch->vanished[ch->nvanished], r->vanished, r->n_vanished * sizeof *r->vanished);
    ch->nvanished += r->n_vanished;
}

static void on_changes(const Petrel__Response *resp, void *ctx)
{
    struct imap_changes_call *c = ctx;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_CHANGES) {
        c->cb(c->is, resp, &c->ch, c->arg);
        return;
    }
    add_batch(&c->ch, resp->changes);
    if (!resp->more)
        c->cb(c->is, NULL, &c->ch, c->arg);   /* may free c */
}

struct imap_changes_call *imap_changes_start(struct imap_session *is, int64_t mailbox_id,
                                             uint64_t since, imap_changes_cb *cb, void *arg)
{
    struct imap_changes_call *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->is = is;
    c->cb = cb;
    c->arg = arg;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__ChangesReq cr = PETREL__CHANGES_REQ__INIT;
    cr.mailbox_id = mailbox_id;
    cr.since_modseq = since;
    req.op_case = PETREL__REQUEST__OP_CHANGES;
    req.changes = &cr;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, on_changes, c, &is->s.calls);
    return c;
}

void imap_condstore_enable(struct imap_session *is)
{
    if (is->condstore)
        return;
    is->condstore = true;
    if (is->state == IMAP_SELECTED)
        imap_untagged(is, "OK [HIGHESTMODSEQ %llu] Highest",
                      (unsigned long long)is->sel.highestmodseq);
}

bool imap_parse_modseq(const struct imap_arg *a, bool allow_zero, uint64_t *out)
{
    if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < a->len; i++) {
        if (a->data[i] < '0' || a->data[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(a->data[i] - '0');
    }
    if (v > INT64_MAX || (v == 0 && !allow_zero))
        return false;
    *out = v;
    return true;
}

/* ---- writing ---- */

static void write_range(struct buf *out, bool *first, uint32_t lo, uint32_t hi)
{
    buf_printf(out, "%s%u", *first ? "" : ",", lo);
    if (hi > lo)
        buf_printf(out, ":%u", hi);
    *first = false;
}

void imap_write_uid_set(struct buf *out, const uint32_t *uids, size_t n)
{
    bool first = true;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        write_range(out, &first, uids[i], uids[j]);
        i = j + 1;
    }
}

void imap_write_change(struct imap_session *is, uint32_t seq, const struct imap_change *c,
                       bool force_uid)
{
    struct buf *out = imap_out(is);
    bool ext = is->condstore || is->qresync;
    buf_printf(out, "* %u FETCH (", seq);
    /* RFC 9051 7.5.2: an unsolicited FETCH carries the UID in IMAP4rev2. */
    if (ext || force_uid || is->imap4rev2)
        buf_printf(out, "UID %u ", c->uid);
    buf_puts(out, "FLAGS ");
    imap_write_flags(out, c->flags, c->keywords, c->nkw);
    if (ext)
        buf_printf(out, " MODSEQ (%llu)", (unsigned long long)c->modseq);
    buf_puts(out, ")\r\n");
}

/* ---- the sequence map ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void imap_sel_remove(struct imap_session *is, const uint32_t *uids, size_t n, bool silent)
{
    struct imap_selected *sel = &is->sel;
    if (n == 0 || sel->count == 0)
        return;
    uint32_t *want = malloc(n * sizeof *want);
    uint32_t *gone = malloc(n * sizeof *gone);
    if (!want || !gone)
        abort();
    memcpy(want, uids, n * sizeof *want);
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = want[i - 1] < want[i];
    if (!sorted)
        qsort(want, n, sizeof *want, cmp_u32);
    bool vanished = is->qresync;
    size_t ngone = 0, j = 0;
    uint32_t w = 0;
    /* One pass: each EXPUNGE names the message's number at that moment,
     * which is the count of messages kept before it plus one. */
    for (uint32_t r = 0; r < sel->count; r++) {
        uint32_t u = sel->uids[r];
        while (j < n && want[j] < u)
            j++;
        if (j < n && want[j] == u) {
            if (!silent && !vanished)
                buf_printf(imap_out(is), "* %u EXPUNGE\r\n", w + 1);
            gone[ngone++] = u;
            continue;
        }
        sel->uids[w++] = u;
    }
    sel->count = w;
    if (!silent && vanished && ngone) {
        buf_puts(imap_out(is), "* VANISHED ");
        imap_write_uid_set(imap_out(is), gone, ngone);
        buf_puts(imap_out(is), "\r\n");
    }
    if (!silent && ngone)
        imap_flush(is);
    free(want);
    free(gone);
}

void imap_sel_own_change(struct imap_session *is, uint64_t modseq)
{
    if (is->state == IMAP_SELECTED && modseq && modseq == is->sel.highestmodseq + 1)
        is->sel.highestmodseq = modseq;
}

void imap_apply_changes(struct imap_session *is, const struct imap_changes *ch)
{
    struct imap_selected *sel = &is->sel;
    uint32_t old_max = sel->count ? sel->uids[sel->count - 1] : 0;
    /* 1. Expunges of messages this session still shows. */
    uint32_t *gone = malloc((ch->nvanished + 1) * sizeof *gone);
    if (!gone)
        abort();
    size_t ngone = 0;
    for (size_t i = 0; i < ch->nvanished; i++)
        if (ch->vanished[i] <= old_max && imap_seq_of_uid(sel, ch->vanished[i]))
            gone[ngone++] = ch->vanished[i];
    imap_sel_remove(is, gone, ngone, false);
    free(gone);
    /* 2. New messages: above the highest UID the session knew. */
    bool grew = false;
    for (size_t i = 0; i < ch->nchanged; i++) {
        uint32_t uid = ch->changed[i].uid;
        if (uid > old_max && (sel->count == 0 || uid > sel->uids[sel->count - 1])) {
            imap_sel_append(sel, uid);
            grew = true;
        }
    }
    if (grew)
        imap_untagged(is, "%u EXISTS", sel->count);
    /* 3. Flag changes of messages the client already knows. */
    bool wrote = false;
    for (size_t i = 0; i < ch->nchanged; i++) {
        const struct imap_change *c = &ch->changed[i];
        uint32_t seq = c->uid <= old_max ? imap_seq_of_uid(sel, c->uid) : 0;
        if (seq) {
            imap_write_change(is, seq, c, false);
            wrote = true;
        }
    }
    if (wrote)
        imap_flush(is);
    if (ch->highestmodseq > sel->highestmodseq)
        sel->highestmodseq = ch->highestmodseq;
    if (ch->uidnext > sel->uidnext)
        sel->uidnext = ch->uidnext;
}

/* ---- VANISHED (EARLIER) ---- */

/* Appends [lo, hi] minus the UIDs in the map to the line. */
static void gaps(const struct imap_selected *sel, uint32_t lo, uint32_t hi, struct buf *out,
                 bool *first)
{
    uint32_t a = 0, b = sel->count;
    while (a < b) {   /* first index with uid >= lo */
        uint32_t m = a + (b - a) / 2;
        if (sel->uids[m] < lo)
            a = m + 1;
        else
            b = m;
    }
    uint32_t next = lo;   /* first UID not yet covered */
    for (uint32_t i = a; i < sel->count && sel->uids[i] <= hi; i++) {
        if (sel->uids[i] > next)
            write_range(out, first, next, sel->uids[i] - 1);
        next = sel->uids[i] + 1;
        if (next == 0)
            return;   /* UID 4294967295 present: nothing above it */
    }
    if (next <= hi)
        write_range(out, first, next, hi);
}

void imap_write_vanished_earlier(struct imap_session *is, const struct imap_changes *ch,
                                 const struct imap_seqset *set, uint32_t max_uid)
{
    const struct imap_selected *sel = &is->sel;
    struct buf line = {0};
    bool first = true;
    if (ch->too_old) {
        /* Tombstones were pruned: every UID the client may know that is not
         * here any more (RFC 7162 3.2.5.1 allows UIDs it already knew gone). */
        if (set) {
            for (size_t i = 0; i < set->count; i++)
                if (set->ranges[i].lo <= max_uid)
                    gaps(sel, set->ranges[i].lo,
                         set->ranges[i].hi < max_uid ? set->ranges[i].hi : max_uid, &line, &first);
        } else if (max_uid > 0) {
            gaps(sel, 1, max_uid, &line, &first);
        }
    } else {
        uint32_t *v = calloc(ch->nvanished + 1, sizeof *v);
        if (!v)
            abort();
        size_t n = 0;
        for (size_t i = 0; i < ch->nvanished; i++) {
            uint32_t u = ch->vanished[i];
            /* Still in the map: expunged after this session's snapshot, so
             * it is reported (and counted) by the next resync instead. */
            if ((!set || imap_seqset_contains(set, u)) && !imap_seq_of_uid(sel, u))
                v[n++] = u;
        }
        imap_write_uid_set(&line, v, n);
        first = n == 0;
        free(v);
    }
    if (!first) {
        buf_puts(imap_out(is), "* VANISHED (EARLIER) ");
        buf_append(imap_out(is), buf_head(&line), buf_len(&line));
        buf_puts(imap_out(is), "\r\n");
        imap_flush(is);
    }
    buf_free(&line);
}

/* ---- SELECT (QRESYNC (...)) ---- */

struct qresync_select {
    struct imap_changes_call *call;
    void (*finish)(struct imap_session *is);
    struct imap_seqset known;
    bool has_known;
};

static void qresync_free(void *p)
{
    struct qresync_select *st = p;
    imap_changes_call_free(st->call);
    if (st->has_known)
        imap_seqset_free(&st->known);
    free(st);
}

static void qresync_done(struct imap_session *is, const Petrel__Response *failed,
                         struct imap_changes *ch, void *arg)
{
    struct qresync_select *st = arg;
    if (failed) {
        /* Without the changes the client would resynchronise wrongly: the
         * SELECT fails instead (and, as any failed SELECT, deselects). */
        imap_sel_clear(&is->sel);
        is->state = IMAP_AUTH;
        cluster_session_mailbox(&is->s, NULL);
        imap_done_rpc(is, failed);
        return;
    }
    struct imap_selected *sel = &is->sel;
    uint32_t max_uid = sel->uidnext > 1 ? sel->uidnext - 1 : 0;
    if (sel->count && sel->uids[sel->count - 1] > max_uid)
        max_uid = sel->uids[sel->count - 1];
    imap_write_vanished_earlier(is, ch, st->has_known ? &st->known : NULL, max_uid);
    for (size_t i = 0; i < ch->nchanged; i++) {
        uint32_t seq = imap_seq_of_uid(sel, ch->changed[i].uid);
        if (seq)
            imap_write_change(is, seq, &ch->changed[i], true);
    }
    imap_flush(is);
    st->finish(is);   /* frees st */
}

void imap_qresync_select(struct imap_session *is, uint64_t modseq, const char *known,
                         size_t known_len, void (*finish)(struct imap_session *is))
{
    struct qresync_select *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->finish = finish;
    const char *err;
    if (known) {
        uint32_t max = is->sel.count ? is->sel.uids[is->sel.count - 1] : 0;
        if (is->sel.uidnext > 1 && is->sel.uidnext - 1 > max)
            max = is->sel.uidnext - 1;
        st->has_known = imap_seqset_parse(known, known_len, IMAP_SEQSET_UID, max,
                                          (size_t)frontend->cfg->imap_max_set_ranges,
                                          &st->known, &err) == 0;
    }
    is->cmd_state = st;
    is->cmd_free = qresync_free;
    st->call = imap_changes_start(is, is->sel.mailbox_id, modseq, qresync_done, st);
}
