/* ENABLE (RFC 5161). Recognised: CONDSTORE and QRESYNC (RFC 7162),
 * IMAP4rev2 (RFC 9051) and UTF8=ACCEPT (RFC 6855); unknown names are
 * ignored, as RFC 5161 asks. "* ENABLED" lists what this command enabled
 * that was not on before. QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
 * IMAP4rev2 implies UTF-8 mailbox names (imap_utf8_names()) but is not
 * listed as UTF8=ACCEPT: only what was asked for is reported.
 *
 * Allowed once authenticated, also with a mailbox selected, as Dovecot does
 * (RFC 5161 3 lets a server skip that check): CONDSTORE then reports the
 * mailbox's HIGHESTMODSEQ, and from then on expunges are reported as
 * VANISHED; IMAP4rev2 and UTF8=ACCEPT change only what comes after.
 *
 * What ENABLE IMAP4rev2 changes, item by item of RFC 9051 Appendix E (the
 * rest of the appendix is either served to both revisions alike or is
 * another part's work):
 *  - SEARCH answers with ESEARCH, ALL when no RETURN (cmd_search.c);
 *  - SELECT/EXAMINE send no RECENT and no OK [UNSEEN], but a LIST of the
 *    mailbox (cmd_select.c); OK [CLOSED] is sent to both revisions;
 *  - STATUS RECENT is gone (BAD), STATUS DELETED is new (answered to both);
 *  - mailbox names are UTF-8, not modified UTF-7 (imap_mailbox.c);
 *  - unsolicited FETCH carries the UID (imap_changes.c);
 *  - LIST's base form is RFC 5258's: \NonExistent rather than \Noselect
 *    for a parent that is not a mailbox (cmd_list.c).
 * Kept for IMAP4rev2 sessions although the RFC drops or deprecates them,
 * since answering costs nothing and a BAD only breaks a sloppy client
 * (Dovecot's leniency): LSUB, CHECK, the RFC822* FETCH items, the NEW,
 * OLD and RECENT search keys. Not done: NFC normalisation of UTF-8 names
 * and with it OLDNAME (names are stored as sent, no Unicode tables here);
 * DELETED in LIST-STATUS (it needs a new SQL function, so a migration);
 * FETCH BINARY and SEARCHRES "$" are other work. ENVELOPE and
 * BODYSTRUCTURE are the same for both: 8-bit header text goes in literals,
 * which every client reads. */
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
    bool condstore = false, qresync = false, rev2 = false, utf8 = false;
    for (size_t i = 0; i < cmd->arg_count; i++) {
        const struct imap_arg *a = &cmd->args[i];
        if (imap_arg_atom_is(a, "CONDSTORE"))
            condstore = !is->condstore;
        else if (imap_arg_atom_is(a, "QRESYNC"))
            qresync = !is->qresync;
        else if (imap_arg_atom_is(a, "IMAP4rev2"))
            rev2 = !is->imap4rev2;
        else if (imap_arg_atom_is(a, "UTF8=ACCEPT"))
            utf8 = !is->utf8_accept;
    }
    if (qresync)
        is->qresync = true;
    if (rev2)
        is->imap4rev2 = true;
    if (utf8)
        is->utf8_accept = true;
    if (condstore || qresync)
        imap_condstore_enable(is);
    struct buf *out = imap_out(is);
    buf_puts(out, "* ENABLED");
    if (condstore)
        buf_puts(out, " CONDSTORE");
    if (qresync)
        buf_puts(out, " QRESYNC");
    if (rev2)
        buf_puts(out, " IMAP4rev2");
    if (utf8)
        buf_puts(out, " UTF8=ACCEPT");
    buf_puts(out, "\r\n");
    imap_done(is, "OK", "Enabled.");
}
