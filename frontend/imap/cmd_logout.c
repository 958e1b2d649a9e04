#include "imap/imap_session.h"

void cmd_logout(struct imap_session *is, const struct imap_command *cmd)
{
    imap_untagged(is, "BYE Logging out.");
    is->state = IMAP_LOGOUT;
    imap_done(is, "OK", "Logout completed.");
}
