/* LSUB (RFC 3501 6.3.9; kept by RFC 9051 for IMAP4rev1 clients): the
 * subscribed names matching the pattern (with their special-use attribute,
 * if any), and \Noselect for an unsubscribed parent of a subscribed name
 * that the pattern does not reach (the "%" rule). A subscription whose
 * mailbox is gone is listed plain, as Dovecot does. See cmd_list.c. */
#include "imap/imap_list.h"

void cmd_lsub(struct imap_session *is, const struct imap_command *cmd)
{
    imap_list_run(is, cmd, true);
}
