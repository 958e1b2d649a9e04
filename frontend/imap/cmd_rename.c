/* RENAME (RFC 9051 6.3.6), as Dovecot does it where the RFC leaves a choice:
 *
 * - The mailbox's children move with it, their subscriptions too; UIDVALIDITY
 *   (and the UIDs) stay, since the messages stay the same.
 * - Missing parents of the new name are created, as CREATE does.
 * - The new name (or a name below it) exists: NO [ALREADYEXISTS]. A name
 *   below the old one: NO [CANNOT].
 * - RENAME INBOX: a new mailbox takes all of INBOX's messages, INBOX stays
 *   and is empty; its children do not move (RFC 3501 6.3.5). If this session
 *   has INBOX selected it sees the messages go (EXPUNGE) before the OK.
 * - This session's selected mailbox renamed (itself or a parent): it stays
 *   selected under the new name.
 * - Another session that has it selected keeps it: resyncs go by mailbox id
 *   (imap_mailbox.c), which a rename keeps, as it keeps UIDVALIDITY, so the
 *   session goes on seeing the same messages and changes. It is not told
 *   the new name (IMAP has no way to), and a resync that falls back to a
 *   re-SELECT by the old name ends it with BYE, as for a deleted mailbox. */
#include "imap/imap_session.h"

#include "cluster_state.h"

#include <stdlib.h>
#include <string.h>

struct rename_state {
    char *from, *to;              /* as stored: NFC */
    char *from_sent, *to_sent;    /* as sent, when NFC changed them; else NULL */
};

static void rename_state_free(void *p)
{
    struct rename_state *st = p;
    free(st->from);
    free(st->to);
    free(st->from_sent);
    free(st->to_sent);
    free(st);
}

static void synced(struct imap_session *is)
{
    imap_done(is, "OK", "Rename completed.");
}

static void rename_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct rename_state *st = is->cmd_state;
    if (resp->status == PETREL__STATUS__NONEXISTENT) {
        imap_done(is, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
        return;
    }
    if (resp->status == PETREL__STATUS__NO) {
        imap_done(is, "NO", "[CANNOT] %s", resp->text && *resp->text ? resp->text : "Invalid mailbox name.");
        return;
    }
    if (resp->status != PETREL__STATUS__OK) {
        imap_done_rpc(is, resp);
        return;
    }
    /* RFC 9051 6.3.6: either name changed by NFC, the new name with the
     * old one as sent. */
    if (st->from_sent || st->to_sent)
        imap_write_oldname(is, "", st->to, st->from_sent ? st->from_sent : st->from);
    bool inbox = strcmp(st->from, "INBOX") == 0;
    if (is->state == IMAP_SELECTED && is->sel.name) {
        size_t fl = strlen(st->from);
        const char *cur = is->sel.name;
        if (inbox && strcmp(cur, "INBOX") == 0) {
            /* Report the messages that left INBOX (imap_sync needs cmd_state). */
            rename_state_free(st);
            is->cmd_state = NULL;
            is->cmd_free = NULL;
            imap_sync(is, synced);
            return;
        }
        if (!inbox && strncmp(cur, st->from, fl) == 0 && (cur[fl] == '\0' || cur[fl] == '/')) {
            size_t tl = strlen(st->to), rest = strlen(cur + fl);
            char *name = malloc(tl + rest + 1);
            if (!name)
                abort();
            memcpy(name, st->to, tl);
            memcpy(name + tl, cur + fl, rest + 1);
            free(is->sel.name);
            is->sel.name = name;
            cluster_session_mailbox(&is->s, name);
        }
    }
    imap_done(is, "OK", "Rename completed.");
}

void cmd_rename(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != 2) {
        imap_done(is, "BAD", "RENAME expects two mailbox names.");
        return;
    }
    char *from_sent, *to_sent;
    char *from = imap_mailbox_name_sent(is, &cmd->args[0], &from_sent);
    char *to = imap_mailbox_name_sent(is, &cmd->args[1], &to_sent);
    size_t tl = to ? strlen(to) : 0;
    if (tl > 1 && to[tl - 1] == '/')   /* a trailing separator only declares intent */
        to[--tl] = '\0';
    if (!from || !*from || !to || tl == 0) {
        imap_done(is, "NO", !from || !*from ? "[NONEXISTENT] Mailbox doesn't exist."
                                            : "[CANNOT] Invalid mailbox name.");
        free(from);
        free(to);
        free(from_sent);
        free(to_sent);
        return;
    }
    struct rename_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->from = from;
    st->to = to;
    st->from_sent = from_sent;
    st->to_sent = to_sent;
    is->cmd_state = st;
    is->cmd_free = rename_state_free;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__RenameReq rr = PETREL__RENAME_REQ__INIT;
    rr.from = from;
    rr.to = to;
    req.op_case = PETREL__REQUEST__OP_MAILBOX_RENAME;
    req.mailbox_rename = &rr;
    session_request(&is->s, &req);
    rpc_call(&req, 0, rename_done, is, &is->s.calls);
}
