/* AUTHENTICATE (RFC 9051 6.2.2) with the mechanisms PLAIN (RFC 4616) and
 * LOGIN (draft-murchison-sasl-login), and SASL-IR (RFC 4959) initial
 * responses.
 *
 * Without an initial response the server sends a continuation ("+ " for
 * PLAIN, "+ VXNlcm5hbWU6" / "+ UGFzc3dvcmQ6" for LOGIN) and the client's
 * answer is one base64 line, which this command reads itself while it runs
 * (is->cmd_input, called by the input loop in imap_session.c, as IDLE reads
 * its DONE). The line is bounded by imap_max_line_preauth, as it comes
 * before login: a longer one is skipped to its end and answered BAD. "*"
 * cancels (BAD), so does invalid base64 (BAD).
 * An initial response "=" is an empty one.
 *
 * PLAIN's authorization identity must be empty or name the authentication
 * identity (case-insensitively, as addresses are); anything else is NO
 * without asking a backend (no proxy authorization). LOGIN's initial
 * response, if any, is the user name. The credentials then take LOGIN's
 * path (imap_login_start in cmd_login.c): the same backend check, metrics,
 * cluster registration and tagged answer. */
#include "imap/imap_session.h"

#include "auth_policy.h"
#include "frontend_metrics.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum mech { MECH_PLAIN, MECH_LOGIN };

struct auth_state {
    enum mech mech;
    int step;          /* LOGIN: 0 user name expected, 1 password */
    char *user;        /* LOGIN: the user name of step 0 */
    bool skipping;     /* an overlong line: dropped up to its end, then BAD */
};

static void auth_state_free(void *p)
{
    struct auth_state *st = p;
    if (st->user) {
        explicit_bzero(st->user, strlen(st->user));
        free(st->user);
    }
    free(st);
}

/* RFC 4648 base64 with padding; returns the decoded length or -1. dst has
 * room for len / 4 * 3 + 3 bytes. */
static long base64_decode(const char *in, size_t len, unsigned char *dst)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=' && i + 2 >= len) {
            pad++;
            continue;
        } else
            return -1;
        if (pad)
            return -1;   /* data after padding */
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    return (long)o;
}

static void ask(struct imap_session *is, const char *challenge);

static void failed(struct imap_session *is)
{
    session_auth_result(&is->s, MA_FAILURE);
    imap_done(is, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
}

/* [authzid] NUL authcid NUL passwd */
static void plain(struct imap_session *is, const unsigned char *d, size_t n)
{
    const char *buf = (const char *)d;
    const char *nul1 = memchr(buf, '\0', n);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(buf + n - nul1 - 1)) : NULL;
    if (!nul1 || !nul2 || memchr(nul2 + 1, '\0', (size_t)(buf + n - nul2 - 1)) ||
        nul2 == nul1 + 1) {
        failed(is);   /* malformed, or no user name */
        return;
    }
    const char *authz = buf, *authc = nul1 + 1, *pass = nul2 + 1;
    if (*authz && strcasecmp(authz, authc) != 0) {
        failed(is);
        return;
    }
    imap_login_start(is, authc, pass);
}

/* One client response (the base64 text without its line ending). Ends the
 * command, or asks for the next response. */
static void response(struct imap_session *is, const char *b64, size_t len)
{
    struct auth_state *st = is->cmd_state;
    if (len == 1 && b64[0] == '*') {
        imap_done(is, "BAD", "Authentication aborted by client.");
        return;
    }
    if (len == 1 && b64[0] == '=')   /* SASL-IR: an empty initial response */
        len = 0;
    unsigned char *d = malloc(len / 4 * 3 + 4);
    if (!d)
        abort();
    long n = base64_decode(b64, len, d);
    if (n < 0) {
        free(d);
        imap_done(is, "BAD", "Invalid base64 data in continued response.");
        return;
    }
    d[n] = '\0';
    is->cmd_input = NULL;   /* until a further continuation asks again */
    if (st->mech == MECH_PLAIN) {
        plain(is, d, (size_t)n);
    } else if (memchr(d, '\0', (size_t)n)) {
        failed(is);
    } else if (st->step == 0) {
        st->user = strdup((char *)d);
        if (!st->user)
            abort();
        st->step = 1;
        ask(is, "UGFzc3dvcmQ6");   /* "Password:" */
    } else {
        imap_login_start(is, st->user, (char *)d);
    }
    explicit_bzero(d, (size_t)n);
    free(d);
}

/* The input loop's hook while a continuation is outstanding: takes one
 * line if a whole one is there. */
static bool auth_input(struct imap_session *is)
{
    struct auth_state *st = is->cmd_state;
    if (!st || is->s.closing)
        return false;
    struct buf *in = &is->s.conn.in;
    size_t avail = buf_len(in);
    if (avail == 0)
        return false;
    const char *p = buf_head(in);
    if (st->skipping) {
        const char *nl = memchr(p, '\n', avail);
        if (!nl) {
            buf_consume(in, avail);
            return true;
        }
        buf_consume(in, (size_t)(nl - p) + 1);
        session_touch(&is->s);
        imap_done(is, "BAD", "Authentication response too long.");
        return true;
    }
    /* The line and its CRLF; the default (8192) fits PLAIN with a long
     * address and password many times over. */
    size_t limit = (size_t)frontend->cfg->imap_max_line_preauth + 2;
    const char *nl = memchr(p, '\n', avail < limit ? avail : limit);
    if (!nl) {
        if (avail < limit)
            return false;   /* wait for the rest of the line */
        /* Only what was looked at: the line's end may be in the rest. */
        st->skipping = true;
        buf_consume(in, limit);
        return true;
    }
    size_t len = (size_t)(nl - p);
    if (len > 0 && p[len - 1] == '\r')
        len--;
    char *line = malloc(len + 1);
    if (!line)
        abort();
    memcpy(line, p, len);
    line[len] = '\0';
    buf_consume(in, (size_t)(nl - p) + 1);
    session_touch(&is->s);
    response(is, line, len);
    explicit_bzero(line, len);
    free(line);
    return true;
}

static void ask(struct imap_session *is, const char *challenge)
{
    buf_printf(imap_out(is), "+ %s\r\n", challenge);
    imap_flush(is);
    is->cmd_input = auth_input;
}

void cmd_authenticate(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count < 1 || cmd->arg_count > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
        (cmd->arg_count == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
        imap_done(is, "BAD", "AUTHENTICATE expects a mechanism and an optional initial response.");
        return;
    }
    if (!auth_allowed(&is->s)) {   /* before any credential is sent (auth_policy.h) */
        imap_done(is, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
                            "(SSL/TLS) connections.");
        return;
    }
    const struct imap_arg *m = &cmd->args[0];
    enum mech mech;
    if (m->len == 5 && strncasecmp(m->data, "PLAIN", 5) == 0)
        mech = MECH_PLAIN;
    else if (m->len == 5 && strncasecmp(m->data, "LOGIN", 5) == 0)
        mech = MECH_LOGIN;
    else {
        imap_done(is, "NO", "Unsupported authentication mechanism.");
        return;
    }
    struct auth_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->mech = mech;
    is->cmd_state = st;
    is->cmd_free = auth_state_free;
    if (cmd->arg_count == 2) {
        response(is, cmd->args[1].data, cmd->args[1].len);
        return;
    }
    ask(is, mech == MECH_PLAIN ? "" : "VXNlcm5hbWU6");   /* "Username:" */
}
