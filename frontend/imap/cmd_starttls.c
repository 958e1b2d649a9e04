/* STARTTLS (RFC 9051 6.2.1): before login, once, when TLS is configured.
 *
 * The tagged OK goes out in cleartext, then the handshake starts on the same
 * connection (conn_start_tls). Anything the client sent after the command
 * line was sent before TLS, so it is dropped unread, reader state included:
 * a command injected in cleartext must never run inside TLS (CVE-2011-0411).
 * The client asks for CAPABILITY again afterwards; it no longer lists
 * STARTTLS. */
#include "imap/imap_session.h"

void cmd_starttls(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count) {
        imap_done(is, "BAD", "STARTTLS takes no arguments.");
        return;
    }
    if (is->s.tls) {
        imap_done(is, "BAD", "TLS is already active.");
        return;
    }
    if (!frontend->tls) {
        imap_done(is, "BAD", "TLS support isn't enabled.");
        return;
    }
    imap_input_reset(is);
    is->s.tls = true;
    imap_done(is, "OK", "Begin TLS negotiation now.");
    conn_start_tls(&is->s.conn, frontend->tls);
}
