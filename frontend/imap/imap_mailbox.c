/* The selected mailbox as a session sees it: the sequence map, message sets,
 * flags, and resynchronisation with the backend. */
#include "imap/imap_session.h"

#include "imap/imap_condstore.h"

#include "imap/imap_utf7.h"
#include "imap/imap_write.h"
#include "unicode_nfc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct { uint32_t bit; const char *name; } system_flags[] = {
    { PETREL__FLAG__ANSWERED, "\\Answered" },
    { PETREL__FLAG__FLAGGED, "\\Flagged" },
    { PETREL__FLAG__DELETED, "\\Deleted" },
    { PETREL__FLAG__SEEN, "\\Seen" },
    { PETREL__FLAG__DRAFT, "\\Draft" },
};

uint32_t imap_seq_of_uid(const struct imap_selected *sel, uint32_t uid)
{
    uint32_t lo = 0, hi = sel->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sel->uids[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sel->count && sel->uids[lo] == uid ? lo + 1 : 0;
}

void imap_sel_clear(struct imap_selected *sel)
{
    free(sel->uids);
    free(sel->name);
    free(sel->saved);
    memset(sel, 0, sizeof *sel);
}

void imap_sel_save_result(struct imap_selected *sel, const uint32_t *uids, size_t n)
{
    free(sel->saved);
    sel->saved = NULL;
    sel->nsaved = 0;
    if (n == 0)
        return;
    sel->saved = malloc(n * sizeof *uids);
    if (!sel->saved)
        abort();
    memcpy(sel->saved, uids, n * sizeof *uids);
    sel->nsaved = n;
}

void imap_sel_set_uids(struct imap_selected *sel, const uint32_t *uids, size_t n)
{
    if (n > sel->cap || n < sel->cap / 4) {
        free(sel->uids);
        sel->cap = (uint32_t)(n ? n : 1);
        sel->uids = malloc(sel->cap * sizeof *sel->uids);
    }
    if (n)
        memcpy(sel->uids, uids, n * sizeof *uids);
    sel->count = (uint32_t)n;
}

void imap_sel_append(struct imap_selected *sel, uint32_t uid)
{
    if (sel->count == sel->cap) {
        sel->cap = sel->cap ? sel->cap * 2 : 16;
        sel->uids = realloc(sel->uids, sel->cap * sizeof *sel->uids);
    }
    sel->uids[sel->count++] = uid;
}

void imap_sel_expunge(struct imap_session *is, uint32_t uid, bool silent)
{
    /* One at a time: EXPUNGE, or VANISHED with QRESYNC (imap_condstore.h). */
    imap_sel_remove(is, &uid, 1, silent);
}

void imap_done_set_error(struct imap_session *is, const char *command, const char *err)
{
    if (err == imap_seqset_too_many)   /* RFC 5530: a server limit, not bad syntax */
        imap_done(is, "NO", "[LIMIT] %s (at most %ld).", err, frontend->cfg->imap_max_set_ranges);
    else
        imap_done(is, "BAD", "Error in IMAP command %s: %s.", command, err);
}

void imap_ranges_free(Petrel__UidRanges *r)
{
    free(r->bounds);
    r->bounds = NULL;
    r->n_bounds = 0;
}

static void add_range(Petrel__UidRanges *out, size_t *cap, uint32_t lo, uint32_t hi)
{
    size_t n = out->n_bounds;
    if (n >= 2 && out->bounds[n - 1] + 1 == lo) {
        out->bounds[n - 1] = hi;
        return;
    }
    if (n + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 16;
        out->bounds = realloc(out->bounds, *cap * sizeof *out->bounds);
    }
    out->bounds[n] = lo;
    out->bounds[n + 1] = hi;
    out->n_bounds = n + 2;
}

int imap_resolve_set(struct imap_session *is, const char *text, size_t len, bool uid,
                     Petrel__UidRanges *out, const char **error_r)
{
    struct imap_selected *sel = &is->sel;
    uint32_t max = uid ? (sel->count ? sel->uids[sel->count - 1] : 0) : sel->count;
    struct imap_seqset set;
    petrel__uid_ranges__init(out);
    if (imap_seqset_parse(text, len, uid ? IMAP_SEQSET_UID : IMAP_SEQSET_SEQ, max,
                          (size_t)frontend->cfg->imap_max_set_ranges, &set, error_r) < 0)
        return -1;
    size_t cap = 0;
    if (set.searchres) {
        /* RFC 5182: the saved messages still in the map, whichever form;
         * none saved selects nothing, without error (as Dovecot). */
        for (size_t i = 0; i < sel->nsaved; i++)
            if (imap_seq_of_uid(sel, sel->saved[i]))
                add_range(out, &cap, sel->saved[i], sel->saved[i]);
        imap_seqset_free(&set);
        return 0;
    }
    for (size_t i = 0; i < set.count; i++) {
        uint32_t lo = set.ranges[i].lo, hi = set.ranges[i].hi;
        if (!uid) {   /* sequence numbers map to the UIDs at those positions */
            for (uint32_t s = lo; s <= hi && s <= sel->count; s++)
                add_range(out, &cap, sel->uids[s - 1], sel->uids[s - 1]);
            continue;
        }
        /* UIDs: keep only those in the map, as runs of present UIDs. */
        uint32_t seq = 0;
        uint32_t a = 0, b = sel->count;
        while (a < b) {   /* first index with uid >= lo */
            uint32_t m = a + (b - a) / 2;
            if (sel->uids[m] < lo)
                a = m + 1;
            else
                b = m;
        }
        for (seq = a; seq < sel->count && sel->uids[seq] <= hi; seq++)
            add_range(out, &cap, sel->uids[seq], sel->uids[seq]);
    }
    imap_seqset_free(&set);
    return 0;
}

void imap_free_keywords(char **kw, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(kw[i]);
    free(kw);
}

/* A flag-keyword is an atom; system flags start with a backslash. */
static int one_flag(const struct imap_arg *a, uint32_t *flags, char ***kw, size_t *nkw)
{
    if (a->type != IMAP_ARG_ATOM || a->len == 0)
        return -1;
    for (size_t i = 0; i < sizeof system_flags / sizeof system_flags[0]; i++)
        if (strlen(system_flags[i].name) == a->len &&
            strncasecmp(system_flags[i].name, a->data, a->len) == 0) {
            *flags |= system_flags[i].bit;
            return 0;
        }
    if (a->data[0] == '\\')
        return a->len == 6 && strncasecmp(a->data, "\\Recent", 7) == 0 ? 0 : -1;
    for (size_t i = 0; i < a->len; i++)
        if (strchr("(){%*\"\\]", a->data[i]) || (unsigned char)a->data[i] <= ' ' ||
            (unsigned char)a->data[i] >= 0x7f)
            return -1;
    *kw = realloc(*kw, (*nkw + 1) * sizeof **kw);
    (*kw)[(*nkw)++] = strndup(a->data, a->len);
    return 0;
}

int imap_parse_flags(const struct imap_arg *arg, uint32_t *flags_r, char ***keywords_r, size_t *nkw_r)
{
    *flags_r = 0;
    *keywords_r = NULL;
    *nkw_r = 0;
    const struct imap_arg *items = arg;
    size_t n = 1;
    if (arg->type == IMAP_ARG_LIST) {
        items = arg->list;
        n = arg->count;
    }
    for (size_t i = 0; i < n; i++)
        if (one_flag(&items[i], flags_r, keywords_r, nkw_r) < 0) {
            imap_free_keywords(*keywords_r, *nkw_r);
            *keywords_r = NULL;
            *nkw_r = 0;
            return -1;
        }
    return 0;
}

void imap_write_flags(struct buf *out, uint32_t flags, char *const *keywords, size_t nkw)
{
    buf_puts(out, "(");
    bool first = true;
    for (size_t i = 0; i < sizeof system_flags / sizeof system_flags[0]; i++)
        if (flags & system_flags[i].bit) {
            buf_printf(out, "%s%s", first ? "" : " ", system_flags[i].name);
            first = false;
        }
    for (size_t i = 0; i < nkw; i++) {
        buf_printf(out, "%s%s", first ? "" : " ", keywords[i]);
        first = false;
    }
    buf_puts(out, ")");
}

char *imap_mailbox_name_sent(const struct imap_session *is, const struct imap_arg *arg,
                             char **sent_r)
{
    const char *p;
    size_t len;
    *sent_r = NULL;
    if (!imap_arg_astring(arg, &p, &len))
        return NULL;
    struct buf b = {0};
    if (imap_utf8_names(is)) {
        /* Taken as it is: "&" is an ordinary character here (RFC 6855 3),
         * so "Caf&AOk-" names a mailbox that an IMAP4rev1 session sees as
         * "Caf&-AOk-", not "Café". */
        if (imap_utf8_name_check(p, len) < 0)
            return NULL;
        buf_append(&b, p, len);
    } else if (imap_utf7_to_utf8(p, len, &b) < 0) {
        buf_free(&b);
        return NULL;
    }
    buf_append(&b, "", 1);
    char *name = b.data;
    /* Stored and looked up in NFC (unicode_nfc.h), whichever form came:
     * a decomposed name, in UTF-8 or modified UTF-7, finds the mailbox of
     * the precomposed one. */
    char *nfc = utf8_nfc(name, strlen(name), NULL);
    if (nfc) {
        *sent_r = name;
        name = nfc;
    }
    /* INBOX is case-insensitive, and so is it as the parent of others. */
    if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
        memcpy(name, "INBOX", 5);
    return name;
}

char *imap_mailbox_name(const struct imap_session *is, const struct imap_arg *arg)
{
    char *sent;
    char *name = imap_mailbox_name_sent(is, arg, &sent);
    free(sent);
    return name;
}

void imap_write_oldname(struct imap_session *is, const char *attrs, const char *name,
                        const char *sent)
{
    /* RFC 9051 6.3.9.7: only IMAP4rev2 defines this answer; an IMAP4rev1
     * client expects no LIST it did not ask for. */
    if (!sent || !is->imap4rev2)
        return;
    struct buf *out = imap_out(is);
    buf_printf(out, "* LIST (%s) \"/\" ", attrs);
    imap_write_mailbox(is, out, name);
    buf_puts(out, " (\"OLDNAME\" (");
    imap_write_mailbox(is, out, sent);
    buf_puts(out, "))\r\n");
}

void imap_write_mailbox(const struct imap_session *is, struct buf *out, const char *utf8)
{
    if (imap_utf8_names(is)) {
        imap_write_utf8_astring(out, utf8, strlen(utf8), 1024);
        return;
    }
    struct buf b = {0};
    imap_utf8_to_utf7(utf8, strlen(utf8), &b);
    imap_write_astring(out, buf_len(&b) ? buf_head(&b) : "", buf_len(&b), 1024);
    buf_free(&b);
}

char *imap_arg_strdup(const struct imap_arg *arg)
{
    const char *p;
    size_t len;
    if (!imap_arg_astring(arg, &p, &len) || memchr(p, '\0', len))
        return NULL;
    return strndup(p, len);
}

/* ---- resynchronisation ----
 *
 * The session asks what changed since the highestmodseq it has reported up
 * to (ChangesReq, imap_condstore.h) and reports, in this order: expunges of
 * messages it shows (EXPUNGE, or VANISHED with QRESYNC), new messages above
 * its highest UID (EXISTS), and flag changes of the others (FETCH FLAGS,
 * with UID and MODSEQ once CONDSTORE is on), so every sequence number it
 * sends is the current one. Its own STORE and EXPUNGE advance its
 * highestmodseq when theirs was the only change (imap_sel_own_change), so
 * they are not reported back; otherwise they are, once, which RFC 9051
 * allows.
 *
 * When the backend has pruned tombstones newer than the session's modseq
 * (too_old: a session selected for longer than expunge_tombstone_days), the
 * expunges come from comparing UID lists (a re-SELECT) and the flag changes
 * still from ChangesResp: messages keep their modseq, so those are exact. */

struct sync_state {
    void (*done)(struct imap_session *is);
    struct imap_changes_call *call;
    struct imap_changes *ch;      /* too_old: kept for after the re-SELECT */
};

static void sync_state_free(void *p)
{
    struct sync_state *st = p;
    imap_changes_call_free(st->call);
    free(st);
}

static void mailbox_gone(struct imap_session *is)
{
    /* Another session deleted it (cmd_delete.c); Dovecot's words. */
    conn_puts(&is->s.conn, "* BYE Selected mailbox was deleted or renamed, have to disconnect.\r\n");
    session_end(&is->s, "selected mailbox deleted");
}

/* too_old: the UID lists tell the expunges (ascending, so each sequence
 * number is the current one) and new UIDs; ChangesResp the flag changes. */
static void apply_uids(struct imap_session *is, const uint32_t *uids, size_t n,
                       const struct imap_changes *ch)
{
    struct imap_selected *sel = &is->sel;
    size_t j = 0;
    uint32_t old_max = sel->count ? sel->uids[sel->count - 1] : 0;
    uint32_t *gone = malloc((sel->count + 1) * sizeof *gone);
    size_t ngone = 0;
    for (uint32_t i = 0; i < sel->count; i++) {
        while (j < n && uids[j] < sel->uids[i])
            j++;
        if (j >= n || uids[j] != sel->uids[i])
            gone[ngone++] = sel->uids[i];
    }
    imap_sel_remove(is, gone, ngone, false);
    free(gone);
    bool grew = false;
    for (size_t k = 0; k < n; k++)
        if (uids[k] > old_max) {
            imap_sel_append(sel, uids[k]);
            grew = true;
        }
    if (grew)
        imap_untagged(is, "%u EXISTS", sel->count);
    for (size_t k = 0; k < ch->nchanged; k++) {
        uint32_t seq = ch->changed[k].uid <= old_max ? imap_seq_of_uid(sel, ch->changed[k].uid) : 0;
        if (seq)
            imap_write_change(is, seq, &ch->changed[k], false);
    }
    imap_flush(is);
    if (ch->highestmodseq > sel->highestmodseq)
        sel->highestmodseq = ch->highestmodseq;
}

static void reselect_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct sync_state *st = is->cmd_state;
    void (*done)(struct imap_session *) = st->done;
    if (resp->status == PETREL__STATUS__OK && resp->result_case == PETREL__RESPONSE__RESULT_SELECT) {
        const Petrel__SelectResp *sr = resp->select;
        if (sr->uidvalidity != is->sel.uidvalidity || sr->mailbox_id != is->sel.mailbox_id) {
            mailbox_gone(is);
            return;
        }
        apply_uids(is, sr->uids, sr->n_uids, st->ch);
        if (sr->uidnext > is->sel.uidnext)
            is->sel.uidnext = sr->uidnext;
    } else if (resp->status == PETREL__STATUS__NONEXISTENT) {
        mailbox_gone(is);
        return;
    }
    done(is);
}

static void sync_changes(struct imap_session *is, const Petrel__Response *failed,
                         struct imap_changes *ch, void *arg)
{
    struct sync_state *st = arg;
    void (*done)(struct imap_session *) = st->done;
    if (failed) {
        if (failed->status == PETREL__STATUS__NONEXISTENT)
            mailbox_gone(is);
        else
            done(is);   /* the next NOOP tries again */
        return;
    }
    if (ch->uidvalidity != is->sel.uidvalidity) {
        mailbox_gone(is);
        return;
    }
    if (!ch->too_old) {
        imap_apply_changes(is, ch);
        done(is);
        return;
    }
    st->ch = ch;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__SelectReq sel = PETREL__SELECT_REQ__INIT;
    sel.mailbox = is->sel.name;
    sel.read_only = true;
    req.op_case = PETREL__REQUEST__OP_SELECT;
    req.select = &sel;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, reselect_done, is, &is->s.calls);
}

void imap_sync(struct imap_session *is, void (*done)(struct imap_session *is))
{
    is->changed = false;   /* this resync covers what the cluster announced */
    if (is->state != IMAP_SELECTED) {
        done(is);
        return;
    }
    struct sync_state *st = calloc(1, sizeof *st);
    st->done = done;
    is->cmd_state = st;
    is->cmd_free = sync_state_free;
    st->call = imap_changes_start(is, is->sel.mailbox_id, is->sel.highestmodseq, sync_changes, st);
}

static void imap_named_free(void *p)
{
    struct imap_named *n = p;
    free(n->name);
    free(n->sent);
    free(n);
}

struct imap_named *imap_named_state(struct imap_session *is, char *name, char *sent)
{
    struct imap_named *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->name = name;
    n->sent = sent;
    is->cmd_state = n;
    is->cmd_free = imap_named_free;
    return n;
}
