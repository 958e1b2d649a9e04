/* LIST (RFC 9051 6.3.9) with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819)
 * and SPECIAL-USE (RFC 6154); LSUB (cmd_lsub.c) shares it. */
#include "imap/imap_list.h"

#include "imap/imap_write.h"
#include "unicode_nfc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool wildcard(char c) { return c == '*' || c == '%'; }

/* '*' matches anything, '%' anything but the hierarchy separator. INBOX is
 * case-insensitive.
 *
 * The pattern runs as an automaton over the name: reach[i] says the first
 * i pattern bytes match what has been read, so a match costs at most
 * pattern x name steps. Backtracking took exponential time instead: one
 * LIST "" "*a*a*a*a*a*a*a*a*a*a*a*a*b" against a mailbox named forty a's
 * held a frontend worker for 45 s. A run of wildcards is one ('*' when it
 * holds one: collapse_wildcards, once per LIST), and a pattern with more
 * literal bytes than the name cannot match, so the automaton has at most
 * 2 x name + 1 states. reach has room for 2 x (pattern + 1) of them. */
static bool match(const char *p, const char *name, bool *reach)
{
    size_t nlen = strlen(name), literals = 0, plen = strlen(p);
    for (const char *c = p; *c; c++)
        literals += !wildcard(*c);
    if (literals > nlen)
        return false;
    bool *next = reach + plen + 1;
    memset(reach, 0, plen + 1);
    reach[0] = true;
    for (size_t i = 0; i < plen && reach[i] && wildcard(p[i]); i++)
        reach[i + 1] = true;   /* a wildcard matches nothing too */
    bool any = true;
    for (const char *n = name; *n && any; n++) {
        memset(next, 0, plen + 1);
        any = false;
        for (size_t i = 0; i < plen; i++) {
            if (!reach[i])
                continue;
            if (p[i] == '*' || (p[i] == '%' && *n != '/'))
                next[i] = true;
            else if (p[i] == *n)
                next[i + 1] = true;
        }
        for (size_t i = 0; i <= plen; i++) {
            if (next[i] && i < plen && wildcard(p[i]))
                next[i + 1] = true;
            any |= next[i];
        }
        memcpy(reach, next, plen + 1);
    }
    return any && reach[plen];
}

/* Makes each run of wildcards in p one, in place, as match expects;
 * returns the new length. */
static size_t collapse_wildcards(char *p)
{
    size_t len = 0;
    for (const char *c = p; *c; c++) {
        if (wildcard(*c) && len && wildcard(p[len - 1]))
            p[len - 1] = *c == '*' ? '*' : p[len - 1];
        else
            p[len++] = *c;
    }
    p[len] = '\0';
    return len;
}

/* reach: room for match's automaton, 2 x (pattern length + 1). */
static bool name_matches(const char *pattern, const char *name, bool *reach)
{
    if (strcasecmp(name, "INBOX") == 0 && strncasecmp(pattern, "INBOX", 5) == 0 &&
        match(pattern + 5, name + 5, reach))
        return true;
    return match(pattern, name, reach);
}

/* ---- LIST-EXTENDED ----
 *
 * Every LIST is answered from one ListExtReq: every mailbox, the subscribed
 * names that are not mailboxes when the selection needs them, and every
 * mailbox's counters for RETURN (STATUS ...). The frontend adds the parents
 * of all names that are not mailboxes themselves (never made by CREATE or
 * RENAME, which create parents, and kept by DELETE, which refuses parents;
 * but a subscription "a/b" may have no "a"), then selects and matches.
 *
 * Basic LIST: existing mailboxes and the missing parents of existing ones
 * (\Noselect), with \HasChildren/\HasNoChildren and special-use attributes.
 * Extended (selection options, RETURN, or a list of patterns):
 *   SUBSCRIBED      subscribed names instead, \NonExistent ones included;
 *                   implies RETURN (SUBSCRIBED)
 *   SPECIAL-USE     only mailboxes with a special-use attribute; implies
 *                   RETURN (SPECIAL-USE)
 *   REMOTE          accepted, nothing remote exists
 *   RECURSIVEMATCH  with SUBSCRIBED: names with a subscribed descendant are
 *                   returned too, with ("CHILDINFO" ("SUBSCRIBED")); BAD
 *                   without SUBSCRIBED or SPECIAL-USE (no CHILDINFO for the
 *                   latter, none is defined)
 *   RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (items))
 *                   \Subscribed, \HasChildren/\HasNoChildren, special use,
 *                   and a "* STATUS" after each selectable mailbox (RFC 5819)
 * Missing names are \NonExistent (implies \Noselect). Unknown options: BAD. */


enum {
    LS_SUBSCRIBED = 1 << 0, LS_REMOTE = 1 << 1, LS_RECURSIVE = 1 << 2, LS_SPECIAL = 1 << 3,
};
enum {
    LR_SUBSCRIBED = 1 << 0, LR_CHILDREN = 1 << 1, LR_SPECIAL = 1 << 2, LR_STATUS = 1 << 3,
};
enum { ST_MESSAGES = 1, ST_UIDNEXT = 2, ST_UIDVALIDITY = 4, ST_UNSEEN = 8, ST_RECENT = 16,
       ST_SIZE = 32, ST_HIGHESTMODSEQ = 64, ST_MAILBOXID = 128, ST_DELETED = 256 };

static const struct { const char *name; unsigned bit; } status_items[] = {
    { "MESSAGES", ST_MESSAGES }, { "UIDNEXT", ST_UIDNEXT }, { "UIDVALIDITY", ST_UIDVALIDITY },
    { "UNSEEN", ST_UNSEEN }, { "RECENT", ST_RECENT }, { "SIZE", ST_SIZE },
    { "HIGHESTMODSEQ", ST_HIGHESTMODSEQ },
    { "MAILBOXID", ST_MAILBOXID },   /* RFC 8474 4.2 */
    { "DELETED", ST_DELETED },       /* RFC 9051; in either revision, as cmd_status.c */
};

struct list_state {
    const struct imap_session *is;   /* names are written in its form */
    bool lsub;
    bool extended;
    unsigned select, ret, status;
    char **patterns;   /* reference + pattern, UTF-8, wildcard runs collapsed */
    size_t npatterns;
    bool *reach;       /* match's automaton, for patterns up to reach_len - 1 */
    size_t reach_len;
};

static void list_state_free(void *p)
{
    struct list_state *st = p;
    for (size_t i = 0; i < st->npatterns; i++)
        free(st->patterns[i]);
    free(st->patterns);
    free(st->reach);
    free(st);
}

struct entry {
    const char *name;
    const Petrel__MailboxInfo *m;   /* NULL: a parent made up here */
    bool exists, subscribed;
    bool anc_of_existing;   /* a parent of an existing mailbox */
    bool has_children;      /* an existing mailbox below */
    bool childinfo;         /* a descendant meets the selection (RECURSIVEMATCH) */
    bool lsub_parent;       /* LSUB: a subscribed descendant the pattern misses */
    char *owned;            /* name of a made-up parent */
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

static struct entry *add(struct entries *e)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = realloc(e->v, e->cap * sizeof *e->v);
        if (!e->v)
            abort();
    }
    struct entry *x = &e->v[e->n++];
    memset(x, 0, sizeof *x);
    return x;
}

static int by_name(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    /* A real entry before a made-up one of the same name (it wins). */
    return c ? c : (x->m == NULL) - (y->m == NULL);
}

static struct entry *find(struct entries *e, const char *name, size_t len)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(e->v[mid].name, name, len);
        if (c == 0 && e->v[mid].name[len] != '\0')
            c = 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < e->n && strncmp(e->v[lo].name, name, len) == 0 && e->v[lo].name[len] == '\0'
               ? &e->v[lo] : NULL;
}

static bool matches_any(const struct list_state *st, const char *name)
{
    for (size_t i = 0; i < st->npatterns; i++)
        if (name_matches(st->patterns[i], name, st->reach))
            return true;
    return false;
}

/* The base selection of an entry. */
static bool selected(const struct list_state *st, const struct entry *x)
{
    if (st->lsub || (st->select & LS_SUBSCRIBED)) {
        if (!x->subscribed)
            return false;
    } else if (!x->exists && !x->anc_of_existing) {
        return false;
    }
    if (st->select & LS_SPECIAL)
        return x->exists && x->m->special_use && *x->m->special_use;
    return true;
}

/* Calls fn for each proper ancestor name of name present in e. */
static void for_ancestors(struct entries *e, const char *name, void (*fn)(struct entry *))
{
    for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/')) {
        struct entry *a = find(e, name, (size_t)(p - name));
        if (a)
            fn(a);
    }
}

static void set_has_children(struct entry *a) { a->has_children = true; }
static void set_childinfo(struct entry *a) { a->childinfo = true; }
static void set_lsub_parent(struct entry *a) { a->lsub_parent = true; }

static void write_status(struct buf *out, const struct list_state *st, const struct entry *x)
{
    const Petrel__StatusResp *r = x->m->status;
    buf_puts(out, "* STATUS ");
    imap_write_mailbox(st->is, out, x->name);
    buf_puts(out, " (");
    const char *sp = "";
    if (st->status & ST_MESSAGES) { buf_printf(out, "%sMESSAGES %u", sp, r->messages); sp = " "; }
    if (st->status & ST_RECENT) { buf_printf(out, "%sRECENT 0", sp); sp = " "; }
    if (st->status & ST_UIDNEXT) { buf_printf(out, "%sUIDNEXT %u", sp, r->uidnext); sp = " "; }
    if (st->status & ST_UIDVALIDITY) { buf_printf(out, "%sUIDVALIDITY %u", sp, r->uidvalidity); sp = " "; }
    if (st->status & ST_UNSEEN) { buf_printf(out, "%sUNSEEN %u", sp, r->unseen); sp = " "; }
    if (st->status & ST_SIZE) { buf_printf(out, "%sSIZE %llu", sp, (unsigned long long)r->size); sp = " "; }
    if (st->status & ST_DELETED) { buf_printf(out, "%sDELETED %u", sp, r->deleted); sp = " "; }
    if (st->status & ST_HIGHESTMODSEQ) {
        buf_printf(out, "%sHIGHESTMODSEQ %llu", sp, (unsigned long long)r->highestmodseq);
        sp = " ";
    }
    if ((st->status & ST_MAILBOXID) && r->objectid && *r->objectid)
        buf_printf(out, "%sMAILBOXID (%s)", sp, r->objectid);
    buf_puts(out, ")\r\n");
}

static void write_entry(struct buf *out, const struct list_state *st, const struct entry *x,
                        bool sel)
{
    buf_puts(out, st->lsub ? "* LSUB (" : "* LIST (");
    const char *sp = "";
    if (st->lsub) {
        /* \Noselect only for an unsubscribed parent that the "%" rule
         * returns (RFC 3501 6.3.9); a subscribed name that is no mailbox is
         * listed without it, and special-use attributes come along: the RFC
         * leaves both open and this is what Dovecot 2.3 answers. */
        if (!sel)
            buf_puts(out, "\\Noselect");
        else if (x->exists && x->m->special_use && *x->m->special_use)
            buf_puts(out, x->m->special_use);
    } else {
        if (!x->exists) {
            /* IMAP4rev2 has RFC 5258's attributes in its base LIST. */
            buf_puts(out, st->extended || st->is->imap4rev2 ? "\\NonExistent" : "\\Noselect");
            sp = " ";
        }
        if (!st->extended || (st->ret & LR_CHILDREN)) {
            buf_printf(out, "%s%s", sp, x->has_children ? "\\HasChildren" : "\\HasNoChildren");
            sp = " ";
        }
        if ((st->ret & LR_SUBSCRIBED) && x->subscribed) {
            buf_printf(out, "%s\\Subscribed", sp);
            sp = " ";
        }
        if ((!st->extended || (st->ret & LR_SPECIAL)) && x->exists && x->m->special_use &&
            *x->m->special_use)
            buf_printf(out, "%s%s", sp, x->m->special_use);
    }
    buf_puts(out, ") \"/\" ");
    imap_write_mailbox(st->is, out, x->name);
    if (!st->lsub && x->childinfo && (st->select & LS_RECURSIVE) && (st->select & LS_SUBSCRIBED))
        buf_puts(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    buf_puts(out, "\r\n");
}

static void list_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct list_state *st = is->cmd_state;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_LIST) {
        imap_done_rpc(is, resp);
        return;
    }
    struct entries e = { 0 };
    size_t nreal = resp->list->n_mailboxes;
    for (size_t i = 0; i < nreal; i++) {
        const Petrel__MailboxInfo *m = resp->list->mailboxes[i];
        struct entry *x = add(&e);
        x->name = m->name;
        x->m = m;
        x->exists = !m->nonexistent;
        x->subscribed = m->subscribed;
    }
    /* Made-up parents of every name (entries of the real ones stay first). */
    for (size_t i = 0; i < nreal; i++) {
        const char *name = resp->list->mailboxes[i]->name;
        bool exists = !resp->list->mailboxes[i]->nonexistent;
        for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/')) {
            struct entry *x = add(&e);
            x->owned = strndup(name, (size_t)(p - name));
            if (!x->owned)
                abort();
            x->name = x->owned;
            x->anc_of_existing = exists;
        }
    }
    qsort(e.v, e.n, sizeof *e.v, by_name);
    /* Merge duplicates into the first of each name. */
    size_t w = 0;
    for (size_t r = 0; r < e.n; r++) {
        if (w > 0 && strcmp(e.v[w - 1].name, e.v[r].name) == 0) {
            e.v[w - 1].anc_of_existing |= e.v[r].anc_of_existing;
            free(e.v[r].owned);
            continue;
        }
        e.v[w++] = e.v[r];
    }
    e.n = w;
    for (size_t i = 0; i < e.n; i++) {
        struct entry *x = &e.v[i];
        if (x->exists)
            for_ancestors(&e, x->name, set_has_children);
        if (selected(st, x))
            for_ancestors(&e, x->name, set_childinfo);
        if (st->lsub && x->subscribed && !matches_any(st, x->name))
            for_ancestors(&e, x->name, set_lsub_parent);
    }
    struct buf *out = imap_out(is);
    for (size_t i = 0; i < e.n; i++) {
        const struct entry *x = &e.v[i];
        if (!matches_any(st, x->name))
            continue;
        bool sel = selected(st, x);
        if (!sel) {
            if (st->lsub ? !x->lsub_parent
                         : !(x->childinfo && (st->select & LS_RECURSIVE) && (st->select & LS_SUBSCRIBED)))
                continue;
        }
        write_entry(out, st, x, sel);
        if (!st->lsub && (st->ret & LR_STATUS) && x->exists && x->m->status)
            write_status(out, st, x);
    }
    for (size_t i = 0; i < e.n; i++)
        free(e.v[i].owned);
    free(e.v);
    imap_flush(is);
    imap_done(is, "OK", "%s completed.", st->lsub ? "Lsub" : "List");
}

/* Option words of a parenthesised list into bits; -1 for an unknown one. */
static int options(const struct imap_arg *list, const char *const *words, const unsigned *bits,
                   size_t n, unsigned *out, size_t *status_at)
{
    for (size_t i = 0; i < list->count; i++) {
        const struct imap_arg *a = &list->list[i];
        size_t k = 0;
        while (k < n && !imap_arg_atom_is(a, words[k]))
            k++;
        if (k == n)
            return -1;
        *out |= bits[k];
        if (status_at && bits[k] == LR_STATUS) {   /* STATUS takes a list of items */
            if (i + 1 >= list->count || list->list[i + 1].type != IMAP_ARG_LIST)
                return -1;
            *status_at = ++i;
        }
    }
    return 0;
}

static bool add_pattern(struct list_state *st, const char *ref, const struct imap_arg *a)
{
    char *pat = imap_mailbox_name(st->is, a);
    if (!pat)
        return false;
    size_t rl = strlen(ref), pl = strlen(pat);
    char *p = malloc(rl + pl + 1);
    if (!p)
        abort();
    memcpy(p, ref, rl);
    memcpy(p + rl, pat, pl + 1);
    free(pat);
    /* Each part is NFC already, their junction need not be ("Cafe" and
     * U+0301...): the names it is matched against are. */
    char *nfc = utf8_nfc(p, rl + pl, NULL);
    if (nfc) {
        free(p);
        p = nfc;
    }
    size_t len = collapse_wildcards(p);
    st->patterns = realloc(st->patterns, (st->npatterns + 1) * sizeof *st->patterns);
    if (!st->patterns)
        abort();
    st->patterns[st->npatterns++] = p;
    if (len + 1 > st->reach_len) {
        st->reach_len = len + 1;
        free(st->reach);
        st->reach = malloc(2 * st->reach_len * sizeof *st->reach);
        if (!st->reach)
            abort();
    }
    return true;
}

static void bad(struct imap_session *is, struct list_state *st, const char *why)
{
    list_state_free(st);
    imap_done(is, "BAD", "%s", why);
}

void imap_list_run(struct imap_session *is, const struct imap_command *cmd, bool lsub)
{
    static const char *const sel_words[] = { "SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE" };
    static const unsigned sel_bits[] = { LS_SUBSCRIBED, LS_REMOTE, LS_RECURSIVE, LS_SPECIAL };
    static const char *const ret_words[] = { "SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS" };
    static const unsigned ret_bits[] = { LR_SUBSCRIBED, LR_CHILDREN, LR_SPECIAL, LR_STATUS };
    struct list_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->is = is;
    st->lsub = lsub;
    const char *usage = lsub ? "LSUB expects a reference and a mailbox pattern."
                             : "LIST expects [(options)] reference pattern(s) [RETURN (options)].";
    size_t i = 0, n = cmd->arg_count;
    if (!lsub && n > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
        st->extended = true;
        if (options(&cmd->args[0], sel_words, sel_bits, 4, &st->select, NULL) < 0) {
            bad(is, st, "Unknown LIST selection option.");
            return;
        }
        if ((st->select & LS_RECURSIVE) && !(st->select & (LS_SUBSCRIBED | LS_SPECIAL))) {
            bad(is, st, "RECURSIVEMATCH needs another selection option.");
            return;
        }
        i++;
    }
    if (i + 2 > n) {
        bad(is, st, usage);
        return;
    }
    char *ref = imap_mailbox_name(is, &cmd->args[i]);
    if (!ref) {
        bad(is, st, usage);
        return;
    }
    const struct imap_arg *pats = &cmd->args[i + 1];
    bool ok = true;
    if (!lsub && pats->type == IMAP_ARG_LIST) {
        st->extended = true;
        ok = pats->count > 0;
        for (size_t k = 0; ok && k < pats->count; k++)
            ok = add_pattern(st, ref, &pats->list[k]);
    } else {
        ok = add_pattern(st, ref, pats);
    }
    free(ref);
    if (!ok) {
        bad(is, st, usage);
        return;
    }
    i += 2;
    if (i < n) {
        size_t status_at = 0;
        if (lsub || i + 2 != n || !imap_arg_atom_is(&cmd->args[i], "RETURN") ||
            cmd->args[i + 1].type != IMAP_ARG_LIST) {
            bad(is, st, usage);
            return;
        }
        st->extended = true;
        if (options(&cmd->args[i + 1], ret_words, ret_bits, 4, &st->ret, &status_at) < 0) {
            bad(is, st, "Unknown LIST return option.");
            return;
        }
        if (st->ret & LR_STATUS) {
            const struct imap_arg *items = &cmd->args[i + 1].list[status_at];
            for (size_t k = 0; k < items->count; k++) {
                unsigned bit = 0;
                for (size_t j = 0; j < sizeof status_items / sizeof status_items[0]; j++)
                    if (imap_arg_atom_is(&items->list[k], status_items[j].name))
                        bit = status_items[j].bit;
                if (!bit || (bit == ST_RECENT && is->imap4rev2)) {   /* as cmd_status.c */
                    bad(is, st, "Unknown STATUS item.");
                    return;
                }
                st->status |= bit;
            }
            if (!st->status) {
                bad(is, st, "RETURN (STATUS) needs items.");
                return;
            }
        }
    }
    if (st->select & LS_SUBSCRIBED)
        st->ret |= LR_SUBSCRIBED;
    if (st->select & LS_SPECIAL)
        st->ret |= LR_SPECIAL;
    /* An empty pattern asks for the hierarchy delimiter and root (RFC 9051 6.3.9). */
    if (!lsub && !st->select && st->npatterns == 1 && st->patterns[0][0] == '\0') {
        list_state_free(st);
        imap_untagged(is, "LIST (\\Noselect) \"/\" \"\"");
        imap_done(is, "OK", "List completed.");
        return;
    }
    is->cmd_state = st;
    is->cmd_free = list_state_free;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__ListExtReq lr = PETREL__LIST_EXT_REQ__INIT;
    lr.subscriptions = lsub || (st->select & LS_SUBSCRIBED);
    lr.status = (st->ret & LR_STATUS) != 0;
    req.op_case = PETREL__REQUEST__OP_LIST_EXT;
    req.list_ext = &lr;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, list_done, is, &is->s.calls);
}

void cmd_list(struct imap_session *is, const struct imap_command *cmd)
{
    imap_list_run(is, cmd, false);
}
