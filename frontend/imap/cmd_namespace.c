/* NAMESPACE (RFC 2342, RFC 9051 6.3.10): one personal namespace with the
 * empty prefix and "/" as the hierarchy delimiter; no shared or other
 * users' namespaces. */
#include "imap/imap_session.h"

void cmd_namespace(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count) {
        imap_done(is, "BAD", "NAMESPACE takes no arguments.");
        return;
    }
    imap_untagged(is, "NAMESPACE ((\"\" \"/\")) NIL NIL");
    imap_done(is, "OK", "Namespace completed.");
}
