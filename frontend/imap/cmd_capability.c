#include "imap/imap_session.h"

void cmd_capability(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count) {
        imap_done(is, "BAD", "CAPABILITY takes no arguments.");
        return;
    }
    imap_untagged(is, "CAPABILITY %s", imap_capabilities(is));
    imap_done(is, "OK", "Capability completed.");
}
