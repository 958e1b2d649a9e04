/* SELECT and EXAMINE (RFC 9051 6.3.2, 6.3.3; RFC 3501 for IMAP4rev1 clients). */
#include "imap/imap_session.h"

#include "cluster_state.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void select_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    char *name = is->cmd_state;
    is->cmd_state = NULL;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_SELECT) {
        free(name);
        imap_done_rpc(is, resp);
        return;
    }
    const Petrel__SelectResp *sr = resp->select;
    bool read_only = strcasecmp(is->def->name, "EXAMINE") == 0;
    struct imap_selected *sel = &is->sel;
    sel->mailbox_id = sr->mailbox_id;
    sel->name = name;
    sel->uidvalidity = sr->uidvalidity;
    sel->uidnext = sr->uidnext;
    sel->highestmodseq = sr->highestmodseq;
    sel->read_only = read_only;
    imap_sel_set_uids(sel, sr->uids, sr->n_uids);
    is->state = IMAP_SELECTED;
    cluster_session_mailbox(&is->s, name);
    imap_untagged(is, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
    imap_untagged(is, "OK [PERMANENTFLAGS (%s)] %s",
                  read_only ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*",
                  read_only ? "Read-only mailbox." : "Flags permitted.");
    imap_untagged(is, "%u EXISTS", sel->count);
    imap_untagged(is, "0 RECENT");
    if (sr->first_unseen_uid) {
        uint32_t seq = imap_seq_of_uid(sel, sr->first_unseen_uid);
        if (seq)
            imap_untagged(is, "OK [UNSEEN %u] First unseen.", seq);
    }
    imap_untagged(is, "OK [UIDVALIDITY %u] UIDs valid", sel->uidvalidity);
    imap_untagged(is, "OK [UIDNEXT %u] Predicted next UID", sel->uidnext);
    imap_done(is, "OK", "[%s] %s completed.", read_only ? "READ-ONLY" : "READ-WRITE",
              read_only ? "Examine" : "Select");
}

void cmd_select(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != 1) {
        imap_done(is, "BAD", "%s expects a mailbox name.", is->def->name);
        return;
    }
    char *name = imap_mailbox_name(&cmd->args[0]);
    /* Selecting deselects first, even when the new SELECT fails (RFC 9051). */
    if (is->state == IMAP_SELECTED) {
        imap_sel_clear(&is->sel);
        is->state = IMAP_AUTH;
        cluster_session_mailbox(&is->s, NULL);
        imap_untagged(is, "OK [CLOSED] Previous mailbox closed.");
    }
    if (!name) {
        imap_done(is, "NO", "Mailbox doesn't exist (invalid name).");
        return;
    }
    is->cmd_state = name;
    is->cmd_free = free;
    is->changed = false;   /* the SELECT sees all before it; later news sets it again */
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__SelectReq sr = PETREL__SELECT_REQ__INIT;
    sr.mailbox = name;
    sr.read_only = strcasecmp(is->def->name, "EXAMINE") == 0;
    req.op_case = PETREL__REQUEST__OP_SELECT;
    req.select = &sr;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, select_done, is, &is->s.calls);
}

void cmd_examine(struct imap_session *is, const struct imap_command *cmd) { cmd_select(is, cmd); }
