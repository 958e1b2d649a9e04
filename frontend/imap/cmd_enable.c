/* ENABLE (RFC 5161). Recognised: CONDSTORE and QRESYNC (RFC 7162), which
 * work; IMAP4rev2 and UTF8=ACCEPT are known but not implemented, so they
 * are not enabled (the server does not advertise them either), and unknown
 * names are ignored, as RFC 5161 asks. "* ENABLED" lists what this command
 * enabled that was not on before. QRESYNC implies CONDSTORE (RFC 7162
 * 3.2.3). Allowed once authenticated, also with a mailbox selected (as
 * Dovecot does): CONDSTORE then reports the mailbox's HIGHESTMODSEQ, and
 * from then on expunges are reported as VANISHED. */
#include "imap/imap_session.h"

#include "imap/imap_condstore.h"

#include <stdio.h>

void cmd_enable(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count == 0) {
        imap_done(is, "BAD", "ENABLE expects capability names.");
        return;
    }
    for (size_t i = 0; i < cmd->arg_count; i++)
        if (cmd->args[i].type != IMAP_ARG_ATOM) {
            imap_done(is, "BAD", "ENABLE expects capability names.");
            return;
        }
    bool condstore = false, qresync = false;
    for (size_t i = 0; i < cmd->arg_count; i++) {
        if (imap_arg_atom_is(&cmd->args[i], "CONDSTORE"))
            condstore = !is->condstore;
        else if (imap_arg_atom_is(&cmd->args[i], "QRESYNC"))
            qresync = !is->qresync;
    }
    if (qresync)
        is->qresync = true;
    if (condstore || qresync)
        imap_condstore_enable(is);
    struct buf *out = imap_out(is);
    buf_puts(out, "* ENABLED");
    if (condstore)
        buf_puts(out, " CONDSTORE");
    if (qresync)
        buf_puts(out, " QRESYNC");
    buf_puts(out, "\r\n");
    imap_done(is, "OK", "Enabled.");
}
