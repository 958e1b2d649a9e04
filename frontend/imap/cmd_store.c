/* STORE and UID STORE (RFC 9051 6.4.6). */
#include "imap/imap_session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct store_state {
    bool silent;
};

static void store_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct store_state *st = is->cmd_state;
    if (resp->status != PETREL__STATUS__OK) {
        imap_done_rpc(is, resp);
        return;
    }
    if (resp->result_case == PETREL__RESPONSE__RESULT_STORE && !st->silent) {
        struct buf *out = imap_out(is);
        for (size_t i = 0; i < resp->store->n_messages; i++) {
            const Petrel__MessageMeta *m = resp->store->messages[i];
            uint32_t seq = imap_seq_of_uid(&is->sel, m->uid);
            if (!seq)
                continue;
            buf_printf(out, "* %u FETCH (FLAGS ", seq);
            imap_write_flags(out, m->flags, m->keywords, m->n_keywords);
            if (is->uid_cmd)
                buf_printf(out, " UID %u", m->uid);
            buf_puts(out, ")\r\n");
        }
        imap_flush(is);
    }
    if (!resp->more)
        imap_done(is, "OK", "Store completed.");
}

void cmd_store(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != 3 || cmd->args[0].type != IMAP_ARG_ATOM || cmd->args[1].type != IMAP_ARG_ATOM) {
        imap_done(is, "BAD", "STORE expects a message set, an item and flags.");
        return;
    }
    if (is->sel.read_only) {
        imap_done(is, "NO", "[READ-ONLY] Mailbox is read-only.");
        return;
    }
    const struct imap_arg *item = &cmd->args[1];
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
    if (imap_parse_flags(&cmd->args[2], &flags, &kw, &nkw) < 0) {
        imap_done(is, "BAD", "Invalid flag list.");
        return;
    }
    Petrel__UidRanges ranges;
    const char *err;
    if (imap_resolve_set(is, cmd->args[0].data, cmd->args[0].len, is->uid_cmd, &ranges, &err) < 0) {
        imap_free_keywords(kw, nkw);
        imap_done(is, "BAD", "Error in IMAP command STORE: %s.", err);
        return;
    }
    if (ranges.n_bounds == 0) {
        imap_free_keywords(kw, nkw);
        imap_done(is, "OK", "Store completed.");
        return;
    }
    struct store_state *st = calloc(1, sizeof *st);
    st->silent = silent;
    is->cmd_state = st;
    is->cmd_free = free;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__StoreReq sr = PETREL__STORE_REQ__INIT;
    sr.mailbox_id = is->sel.mailbox_id;
    sr.uids = &ranges;
    sr.mode = mode;
    sr.flags = flags;
    sr.keywords = kw;
    sr.n_keywords = nkw;
    req.op_case = PETREL__REQUEST__OP_STORE;
    req.store = &sr;
    session_request(&is->s, &req);
    rpc_call(&req, 0, store_done, is, &is->s.calls);
    imap_ranges_free(&ranges);
    imap_free_keywords(kw, nkw);
}
