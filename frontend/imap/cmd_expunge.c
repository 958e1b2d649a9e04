/* EXPUNGE, and CLOSE, which expunges silently and then deselects. */
#include "imap/imap_session.h"

#include "cluster_state.h"
#include "imap/imap_condstore.h"

#include <string.h>

static void expunge_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    bool close = strcmp(is->def->name, "CLOSE") == 0;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_EXPUNGE) {
        imap_done_rpc(is, resp);
        return;
    }
    /* EXPUNGE lines, or one VANISHED with QRESYNC; CLOSE is silent. */
    imap_sel_remove(is, resp->expunge->uids, resp->expunge->n_uids, close);
    imap_sel_own_change(is, resp->expunge->modseq);
    if (close) {
        imap_sel_clear(&is->sel);
        is->state = IMAP_AUTH;
        cluster_session_mailbox(&is->s, NULL);
        imap_done(is, "OK", "Close completed.");
    } else if (is->condstore) {
        /* CONDSTORE: the modseq the client has now seen everything up to. */
        imap_done(is, "OK", "[HIGHESTMODSEQ %llu] Expunge completed.",
                  (unsigned long long)is->sel.highestmodseq);
    } else {
        imap_done(is, "OK", "Expunge completed.");
    }
}

/* uids NULL: every \Deleted message; else only those among them (UID EXPUNGE). */
static void start_expunge(struct imap_session *is, Petrel__UidRanges *uids)
{
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__ExpungeReq er = PETREL__EXPUNGE_REQ__INIT;
    er.mailbox_id = is->sel.mailbox_id;
    er.uids = uids;
    er.require_deleted = true;
    req.op_case = PETREL__REQUEST__OP_EXPUNGE;
    req.expunge = &er;
    session_request(&is->s, &req);
    rpc_call(&req, 0, expunge_done, is, &is->s.calls);
}

void cmd_expunge(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != (is->uid_cmd ? 1u : 0u) ||
        (is->uid_cmd && cmd->args[0].type != IMAP_ARG_ATOM)) {
        imap_done(is, "BAD", is->uid_cmd ? "UID EXPUNGE expects a UID set." : "EXPUNGE takes no arguments.");
        return;
    }
    if (is->sel.read_only) {
        imap_done(is, "NO", "[READ-ONLY] Mailbox is read-only.");
        return;
    }
    if (!is->uid_cmd) {
        start_expunge(is, NULL);
        return;
    }
    Petrel__UidRanges ranges;
    const char *err;
    if (imap_resolve_set(is, cmd->args[0].data, cmd->args[0].len, true, &ranges, &err) < 0) {
        imap_done_set_error(is, "UID EXPUNGE", err);
        return;
    }
    if (ranges.n_bounds == 0) {
        imap_done(is, "OK", "Expunge completed.");
        return;
    }
    start_expunge(is, &ranges);
    imap_ranges_free(&ranges);
}

void cmd_close(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count) {
        imap_done(is, "BAD", "CLOSE takes no arguments.");
        return;
    }
    if (!is->sel.read_only) {
        start_expunge(is, NULL);
        return;
    }
    imap_sel_clear(&is->sel);
    is->state = IMAP_AUTH;
    cluster_session_mailbox(&is->s, NULL);
    imap_done(is, "OK", "Close completed.");
}

void cmd_unselect(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count) {
        imap_done(is, "BAD", "UNSELECT takes no arguments.");
        return;
    }
    imap_sel_clear(&is->sel);
    is->state = IMAP_AUTH;
    cluster_session_mailbox(&is->s, NULL);
    imap_done(is, "OK", "Unselect completed.");
}
