/* NOOP and CHECK: the moment to tell the client what other sessions changed. */
#include "imap/imap_session.h"

#include <string.h>

static void synced(struct imap_session *is)
{
    imap_done(is, "OK", "%s completed.", strcmp(is->def->name, "CHECK") == 0 ? "Check" : "NOOP");
}

void cmd_noop(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count) {
        imap_done(is, "BAD", "%s takes no arguments.", is->def->name);
        return;
    }
    imap_sync(is, synced);
}
