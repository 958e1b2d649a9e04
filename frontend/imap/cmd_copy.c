/* COPY, MOVE and their UID forms (RFC 9051 6.4.7-6.4.8, RFC 6851, RFC 4315
 * COPYUID). A MOVE happens in one backend transaction; this session then
 * reports the expunges itself. */
#include "imap/imap_session.h"

#include "imap/imap_condstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Writes an ascending UID list as a compact set ("1:3,7") into out. */
static void write_uid_set(struct buf *out, const uint32_t *uids, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        buf_printf(out, "%s%u", i ? "," : "", uids[i]);
        if (j > i)
            buf_printf(out, ":%u", uids[j]);
        i = j + 1;
    }
}

static bool is_move(const struct imap_session *is) { return strcasecmp(is->def->name, "MOVE") == 0; }

static void copy_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    if (resp->status == PETREL__STATUS__NONEXISTENT) {
        imap_done(is, "NO", "[TRYCREATE] Mailbox doesn't exist.");
        return;
    }
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_COPY) {
        imap_done_rpc(is, resp);
        return;
    }
    const Petrel__CopyResp *cr = resp->copy;
    bool move = is_move(is);
    if (cr->n_src_uids == 0) {
        imap_done(is, "OK", "No messages found.");
        return;
    }
    struct buf code = {0};
    buf_printf(&code, "COPYUID %u ", cr->uidvalidity);
    write_uid_set(&code, cr->src_uids, cr->n_src_uids);
    buf_puts(&code, " ");
    write_uid_set(&code, cr->dst_uids, cr->n_dst_uids);
    buf_append(&code, "", 1);
    if (move) {
        imap_untagged(is, "OK [%s] Moved UIDs.", buf_head(&code));
        /* EXPUNGE lines, or one VANISHED with QRESYNC. */
        imap_sel_remove(is, cr->src_uids, cr->n_src_uids, false);
        imap_done(is, "OK", "Move completed.");
    } else {
        imap_done(is, "OK", "[%s] Copy completed.", buf_head(&code));
    }
    buf_free(&code);
}

void cmd_copy(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
        imap_done(is, "BAD", "%s expects a message set and a mailbox.", is->def->name);
        return;
    }
    char *dest = imap_mailbox_name(is, &cmd->args[1]);
    if (!dest) {
        imap_done(is, "NO", "[TRYCREATE] Mailbox doesn't exist (invalid name).");
        return;
    }
    if (is_move(is) && is->sel.read_only) {
        free(dest);
        imap_done(is, "NO", "[READ-ONLY] Mailbox is read-only.");
        return;
    }
    Petrel__UidRanges ranges;
    const char *err;
    if (imap_resolve_set(is, cmd->args[0].data, cmd->args[0].len, is->uid_cmd, &ranges, &err) < 0) {
        free(dest);
        imap_done_set_error(is, is->def->name, err);
        return;
    }
    if (ranges.n_bounds == 0) {
        free(dest);
        imap_done(is, "OK", "No messages found.");
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__CopyReq cr = PETREL__COPY_REQ__INIT;
    cr.mailbox_id = is->sel.mailbox_id;
    cr.uids = &ranges;
    cr.dest = dest;
    cr.move = is_move(is);
    req.op_case = PETREL__REQUEST__OP_COPY;
    req.copy = &cr;
    session_request(&is->s, &req);
    rpc_call(&req, 0, copy_done, is, &is->s.calls);
    imap_ranges_free(&ranges);
    free(dest);
}

void cmd_move(struct imap_session *is, const struct imap_command *cmd) { cmd_copy(is, cmd); }
