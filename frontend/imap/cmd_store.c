/* STORE and UID STORE (RFC 9051 6.4.6), with RFC 7162 UNCHANGEDSINCE. */
#include "imap/imap_session.h"

#include "imap/imap_condstore.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct store_state {
    bool silent;
    uint32_t *modified;        /* failed UNCHANGEDSINCE: numbers (UIDs for UID STORE) */
    size_t nmodified;
    uint64_t modseq;           /* what this STORE gave the messages it changed */
};

static void store_state_free(void *p)
{
    struct store_state *st = p;
    free(st->modified);
    free(st);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void store_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct store_state *st = is->cmd_state;
    if (resp->status != PETREL__STATUS__OK) {
        imap_done_rpc(is, resp);
        return;
    }
    if (resp->result_case == PETREL__RESPONSE__RESULT_STORE) {
        const Petrel__StoreResp *sr = resp->store;
        struct buf *out = imap_out(is);
        st->modseq = sr->modseq;
        for (size_t i = 0; i < sr->n_messages; i++) {
            const Petrel__MessageMeta *m = sr->messages[i];
            uint32_t seq = imap_seq_of_uid(&is->sel, m->uid);
            if (!seq)
                continue;
            if (!st->silent) {
                buf_printf(out, "* %u FETCH (FLAGS ", seq);
                imap_write_flags(out, m->flags, m->keywords, m->n_keywords);
                /* CONDSTORE: UID and MODSEQ in every FETCH a STORE causes. */
                if (is->uid_cmd || is->condstore)
                    buf_printf(out, " UID %u", m->uid);
                if (is->condstore)
                    buf_printf(out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
                buf_puts(out, ")\r\n");
            } else if (is->condstore && sr->modseq && m->modseq == sr->modseq) {
                /* .SILENT still tells the new modseq of what changed (RFC 7162 3.1.3). */
                buf_printf(out, "* %u FETCH (UID %u MODSEQ (%llu))\r\n", seq, m->uid,
                           (unsigned long long)m->modseq);
            }
        }
        if (sr->n_modified) {
            st->modified = realloc(st->modified, (st->nmodified + sr->n_modified) * sizeof *st->modified);
            for (size_t i = 0; i < sr->n_modified; i++) {
                uint32_t n = is->uid_cmd ? sr->modified[i] : imap_seq_of_uid(&is->sel, sr->modified[i]);
                if (n)
                    st->modified[st->nmodified++] = n;
            }
        }
        imap_flush(is);
    }
    if (!resp->more) {
        imap_sel_own_change(is, st->modseq);
        if (st->nmodified) {
            qsort(st->modified, st->nmodified, sizeof *st->modified, cmp_u32);
            struct buf set = {0};
            imap_write_uid_set(&set, st->modified, st->nmodified);
            buf_append(&set, "", 1);
            imap_done(is, "OK", "[MODIFIED %s] Conditional STORE failed.", buf_head(&set));
            buf_free(&set);
            return;
        }
        imap_done(is, "OK", "Store completed.");
    }
}

void cmd_store(struct imap_session *is, const struct imap_command *cmd)
{
    /* STORE set [(UNCHANGEDSINCE n)] item flags */
    const struct imap_arg *mods = cmd->arg_count == 4 ? &cmd->args[1] : NULL;
    const struct imap_arg *item = &cmd->args[mods ? 2 : 1];
    if ((cmd->arg_count != 3 && cmd->arg_count != 4) || cmd->args[0].type != IMAP_ARG_ATOM ||
        item->type != IMAP_ARG_ATOM || (mods && mods->type != IMAP_ARG_LIST)) {
        imap_done(is, "BAD", "STORE expects a message set, an item and flags.");
        return;
    }
    bool conditional = false;
    uint64_t unchangedsince = 0;
    for (size_t i = 0; mods && i < mods->count; i += 2) {
        if (!imap_arg_atom_is(&mods->list[i], "UNCHANGEDSINCE") || i + 1 >= mods->count ||
            conditional || !imap_parse_modseq(&mods->list[i + 1], true, &unchangedsince)) {
            imap_done(is, "BAD", "Unknown or invalid STORE modifier.");
            return;
        }
        conditional = true;
    }
    if (is->sel.read_only) {
        imap_done(is, "NO", "[READ-ONLY] Mailbox is read-only.");
        return;
    }
    const char *p = item->data;
    size_t n = item->len;
    Petrel__StoreMode mode = PETREL__STORE_MODE__REPLACE;
    if (n && (*p == '+' || *p == '-')) {
        mode = *p == '+' ? PETREL__STORE_MODE__ADD : PETREL__STORE_MODE__REMOVE;
        p++;
        n--;
    }
    bool silent = n == 12 && strncasecmp(p, "FLAGS.SILENT", 12) == 0;
    if (!silent && !(n == 5 && strncasecmp(p, "FLAGS", 5) == 0)) {
        imap_done(is, "BAD", "Unknown STORE item.");
        return;
    }
    uint32_t flags;
    char **kw;
    size_t nkw;
    if (imap_parse_flags(&cmd->args[cmd->arg_count - 1], &flags, &kw, &nkw) < 0) {
        imap_done(is, "BAD", "Invalid flag list.");
        return;
    }
    Petrel__UidRanges ranges;
    const char *err;
    if (imap_resolve_set(is, cmd->args[0].data, cmd->args[0].len, is->uid_cmd, &ranges, &err) < 0) {
        imap_free_keywords(kw, nkw);
        imap_done_set_error(is, "STORE", err);
        return;
    }
    if (conditional)
        imap_condstore_enable(is);
    if (ranges.n_bounds == 0) {
        imap_free_keywords(kw, nkw);
        imap_done(is, "OK", "Store completed.");
        return;
    }
    struct store_state *st = calloc(1, sizeof *st);
    st->silent = silent;
    is->cmd_state = st;
    is->cmd_free = store_state_free;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__StoreReq sr = PETREL__STORE_REQ__INIT;
    sr.mailbox_id = is->sel.mailbox_id;
    sr.uids = &ranges;
    sr.mode = mode;
    sr.flags = flags;
    sr.keywords = kw;
    sr.n_keywords = nkw;
    sr.conditional = conditional;
    sr.unchangedsince = unchangedsince;
    req.op_case = PETREL__REQUEST__OP_STORE;
    req.store = &sr;
    session_request(&is->s, &req);
    rpc_call(&req, 0, store_done, is, &is->s.calls);
    imap_ranges_free(&ranges);
    imap_free_keywords(kw, nkw);
}
