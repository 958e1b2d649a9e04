/* DELETE (RFC 9051 6.3.5), as Dovecot does it where the RFC leaves a choice:
 *
 * - INBOX cannot be deleted: NO.
 * - A mailbox with children is refused with NO [HASCHILDREN] ("delete them
 *   first"), rather than turned into a \Noselect name as RFC 3501 allows.
 * - Its messages go with it; bodies no other message shares are freed.
 * - The subscription stays (RFC 9051 6.3.9: the server must not remove one
 *   unilaterally); LSUB then shows the name as \Noselect.
 * - Deleting the mailbox this session has selected: it is closed first (the
 *   session is back in the authenticated state, with no untagged response),
 *   then deleted, and the command answers OK. Other sessions that have it
 *   selected learn of it at their next resync (NOOP, IDLE, ...): "* BYE
 *   Selected mailbox was deleted or renamed, have to disconnect."
 *   (imap_mailbox.c), as Dovecot disconnects them. */
#include "imap/imap_session.h"

#include "cluster_state.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void delete_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct imap_named *st = is->cmd_state;
    if (resp->status == PETREL__STATUS__OK) {
        imap_write_oldname(is, "\\NonExistent", st->name, st->sent);   /* RFC 9051 6.3.5 */
        imap_done(is, "OK", "Delete completed.");
    } else if (resp->result_case == PETREL__RESPONSE__RESULT_MAILBOX_DELETE &&
               resp->mailbox_delete->has_children) {
        imap_done(is, "NO", "[HASCHILDREN] Mailbox has children, delete them first.");
    } else if (resp->status == PETREL__STATUS__NONEXISTENT) {
        imap_done(is, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
    } else {
        imap_done_rpc(is, resp);
    }
}

void cmd_delete(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != 1) {
        imap_done(is, "BAD", "DELETE expects a mailbox name.");
        return;
    }
    char *sent;
    char *name = imap_mailbox_name_sent(is, &cmd->args[0], &sent);
    if (!name || !*name) {
        free(name);
        free(sent);
        imap_done(is, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
        return;
    }
    if (strcmp(name, "INBOX") == 0) {
        free(name);
        free(sent);
        imap_done(is, "NO", "INBOX can't be deleted.");
        return;
    }
    if (is->state == IMAP_SELECTED && is->sel.name && strcmp(is->sel.name, name) == 0) {
        imap_sel_clear(&is->sel);
        is->state = IMAP_AUTH;
        cluster_session_mailbox(&is->s, NULL);
    }
    imap_named_state(is, name, sent);
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__DeleteReq dr = PETREL__DELETE_REQ__INIT;
    dr.name = name;
    req.op_case = PETREL__REQUEST__OP_MAILBOX_DELETE;
    req.mailbox_delete = &dr;
    session_request(&is->s, &req);
    rpc_call(&req, 0, delete_done, is, &is->s.calls);
}
