/* STATUS (RFC 9051 6.3.11; RFC 3501 6.3.10 for IMAP4rev1 clients). RECENT
 * is an IMAP4rev1 item (always 0: \Recent is not kept), gone from RFC
 * 9051's grammar, so an IMAP4rev2 session asking for it gets BAD rather
 * than an answer its client's parser need not know. DELETED
 * is RFC 9051's; it is answered in both, as it costs a rev1 client nothing. */
#include "imap/imap_session.h"

#include "imap/imap_condstore.h"
#include "imap/imap_write.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { ST_MESSAGES = 1, ST_UIDNEXT = 2, ST_UIDVALIDITY = 4, ST_UNSEEN = 8, ST_RECENT = 16, ST_SIZE = 32,
       ST_HIGHESTMODSEQ = 64, ST_DELETED = 128, ST_MAILBOXID = 256 };

struct status_state {
    char *name;
    unsigned items;
};

static void status_state_free(void *p)
{
    struct status_state *st = p;
    free(st->name);
    free(st);
}

static void status_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct status_state *st = is->cmd_state;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_STATUS_RESP) {
        imap_done_rpc(is, resp);
        return;
    }
    const Petrel__StatusResp *r = resp->status_resp;
    struct buf *out = imap_out(is);
    buf_puts(out, "* STATUS ");
    imap_write_mailbox(is, out, st->name);
    buf_puts(out, " (");
    const char *sp = "";
    if (st->items & ST_MESSAGES) { buf_printf(out, "%sMESSAGES %u", sp, r->messages); sp = " "; }
    if (st->items & ST_RECENT) { buf_printf(out, "%sRECENT 0", sp); sp = " "; }
    if (st->items & ST_UIDNEXT) { buf_printf(out, "%sUIDNEXT %u", sp, r->uidnext); sp = " "; }
    if (st->items & ST_UIDVALIDITY) { buf_printf(out, "%sUIDVALIDITY %u", sp, r->uidvalidity); sp = " "; }
    if (st->items & ST_UNSEEN) { buf_printf(out, "%sUNSEEN %u", sp, r->unseen); sp = " "; }
    if (st->items & ST_SIZE) { buf_printf(out, "%sSIZE %llu", sp, (unsigned long long)r->size); sp = " "; }
    if (st->items & ST_DELETED) { buf_printf(out, "%sDELETED %u", sp, r->deleted); sp = " "; }
    if (st->items & ST_HIGHESTMODSEQ) {
        buf_printf(out, "%sHIGHESTMODSEQ %llu", sp, (unsigned long long)r->highestmodseq);
        sp = " ";
    }
    if ((st->items & ST_MAILBOXID) && r->objectid && *r->objectid)
        buf_printf(out, "%sMAILBOXID (%s)", sp, r->objectid);
    buf_puts(out, ")\r\n");
    imap_done(is, "OK", "Status completed.");
}

static const struct { const char *name; unsigned bit; } items[] = {
    { "MESSAGES", ST_MESSAGES }, { "UIDNEXT", ST_UIDNEXT }, { "UIDVALIDITY", ST_UIDVALIDITY },
    { "UNSEEN", ST_UNSEEN }, { "RECENT", ST_RECENT }, { "SIZE", ST_SIZE },
    { "HIGHESTMODSEQ", ST_HIGHESTMODSEQ },   /* RFC 7162 3.1.8; enables CONDSTORE */
    { "DELETED", ST_DELETED },
    { "MAILBOXID", ST_MAILBOXID },           /* RFC 8474 4.2 */
};

void cmd_status(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != 2 || cmd->args[1].type != IMAP_ARG_LIST || cmd->args[1].count == 0) {
        imap_done(is, "BAD", "STATUS expects a mailbox and a list of items.");
        return;
    }
    char *name = imap_mailbox_name(is, &cmd->args[0]);
    if (!name) {
        imap_done(is, "NO", "Mailbox doesn't exist (invalid name).");
        return;
    }
    unsigned want = 0;
    for (size_t i = 0; i < cmd->args[1].count; i++) {
        unsigned bit = 0;
        for (size_t k = 0; k < sizeof items / sizeof items[0]; k++)
            if (imap_arg_atom_is(&cmd->args[1].list[i], items[k].name))
                bit = items[k].bit;
        if (!bit || (bit == ST_RECENT && is->imap4rev2)) {
            free(name);
            imap_done(is, "BAD", bit ? "RECENT is not a STATUS item in IMAP4rev2."
                                     : "Unknown STATUS item.");
            return;
        }
        want |= bit;
    }
    if (want & ST_HIGHESTMODSEQ)
        imap_condstore_enable(is);
    struct status_state *st = calloc(1, sizeof *st);
    st->name = name;
    st->items = want;
    is->cmd_state = st;
    is->cmd_free = status_state_free;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__StatusReq sr = PETREL__STATUS_REQ__INIT;
    sr.mailbox = name;
    sr.want_deleted = (want & ST_DELETED) != 0;
    req.op_case = PETREL__REQUEST__OP_STATUS;
    req.status = &sr;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, status_done, is, &is->s.calls);
}
