/* The IMAP protocol: greeting, the input loop that turns bytes into
 * commands, dispatch through the command table, and the tagged ending of
 * each command. Commands run one at a time in the order received; pipelined
 * input waits in the connection's buffer, bounded by its read limit. */
#include "imap/imap_session.h"

#include "auth_policy.h"
#include "frontend_metrics.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void process(struct imap_session *is);

/* After imap_max_bad_commands BAD answers in a row the client is not
 * speaking IMAP: BYE. True when the session has ended. */
static bool end_if_too_many_bad(struct imap_session *is)
{
    if (is->bad_count < frontend->cfg->imap_max_bad_commands)
        return false;
    conn_puts(&is->s.conn, "* BYE Too many invalid commands.\r\n");
    session_end(&is->s, "too many invalid commands");
    return true;
}

/* Only what is complete is advertised. The string lives until the next call.
 *
 * IMAP4rev1 and IMAP4rev2 both: a client stays on RFC 3501 until it sends
 * ENABLE IMAP4rev2 (RFC 9051 6.3.1). LITERAL+ and LITERAL- (RFC 7888) are
 * alternatives, LITERAL+ the larger promise, so one of them is offered:
 * before login non-synchronizing literals are capped at
 * imap_max_nonsync_preauth, which is LITERAL-; after login any size up to
 * APPENDLIMIT is taken, which is LITERAL+ (Dovecot offers LITERAL+ alone
 * too, LITERAL- only instead of it). */
const char *imap_capabilities(const struct imap_session *is)
{
    static char caps[1024];
    bool pre = is->state == IMAP_NOTAUTH;
    snprintf(caps, sizeof caps, "IMAP4rev1 IMAP4rev2 %s UNSELECT UIDPLUS MOVE IDLE APPENDLIMIT=%ld%s"
             " NAMESPACE ID CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE"
             " STATUS=SIZE ENABLE CONDSTORE QRESYNC ESEARCH SEARCHRES MULTIAPPEND OBJECTID SAVEDATE BINARY UTF8=ACCEPT%s",
             pre ? "LITERAL-" : "LITERAL+", frontend->cfg->append_limit,
             imap_starttls_usable(is) ? " STARTTLS" : "",
             !pre                  ? ""
             : auth_allowed(&is->s) ? " AUTH=PLAIN AUTH=LOGIN SASL-IR"
                                    : " LOGINDISABLED");   /* auth_policy.h */
    return caps;
}

bool imap_starttls_usable(const struct imap_session *is)
{
    return is->state == IMAP_NOTAUTH && !is->s.tls && frontend->tls;
}

static void set_limits(struct imap_session *is)
{
    const struct frontend_settings *c = frontend->cfg;
    bool pre = is->state == IMAP_NOTAUTH;
    struct imap_limits lim = {
        .max_line = (size_t)(pre ? c->imap_max_line_preauth : c->imap_max_line),
        .max_literal = (size_t)c->imap_max_literal,
        .max_nonsync_literal = pre ? (size_t)c->imap_max_nonsync_preauth : (size_t)c->append_limit,
        .max_literals_total = (size_t)c->imap_max_literal * 2,
        .max_literal_count = (size_t)c->imap_max_literals,
        .max_command = (size_t)(pre ? c->imap_max_line_preauth : c->imap_max_line) +
                       (size_t)c->imap_max_literal * 2,
    };
    imap_reader_set_limits(&is->reader, &lim);
}

static struct session *imap_create(void)
{
    struct imap_session *is = calloc(1, sizeof *is);
    struct imap_limits lim = { 0 };
    imap_reader_init(&is->reader, &lim);
    set_limits(is);
    return &is->s;
}

static void imap_start(struct session *s)
{
    struct imap_session *is = (struct imap_session *)s;
    session_set_idle_timeout(s, (double)frontend->cfg->imap_autologout_preauth);
    conn_printf(&s->conn, "* OK [CAPABILITY %s] Petrel ready.\r\n", imap_capabilities(is));
}

void imap_flush(struct imap_session *is) { conn_wake_writer(&is->s.conn); }

void imap_input_reset(struct imap_session *is)
{
    buf_reset(&is->s.conn.in);
    imap_reader_free(&is->reader);
    struct imap_limits lim = { 0 };
    imap_reader_init(&is->reader, &lim);
    set_limits(is);
}

void imap_untagged(struct imap_session *is, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_puts(imap_out(is), "* ");
    buf_vprintf(imap_out(is), fmt, ap);
    buf_puts(imap_out(is), "\r\n");
    va_end(ap);
    imap_flush(is);
}

static void end_command(struct imap_session *is)
{
    if (is->cmd_free && is->cmd_state)
        is->cmd_free(is->cmd_state);
    is->cmd_state = NULL;
    is->cmd_free = NULL;
    is->cmd_drain = NULL;
    is->cmd_input = NULL;
    imap_idle_free(is);
    imap_command_free(&is->cmd);
    is->def = NULL;
    is->busy = false;
}

void imap_done(struct imap_session *is, const char *status, const char *fmt, ...)
{
    buf_printf(imap_out(is), "%s %s ", is->tag, status);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(imap_out(is), fmt, ap);
    va_end(ap);
    buf_puts(imap_out(is), "\r\n");
    imap_flush(is);
    is->bad_count = strcmp(status, "BAD") == 0 ? is->bad_count + 1 : 0;
    imap_count_result(is, status);
    end_command(is);
    if (is->state == IMAP_LOGOUT) {
        session_end(&is->s, "logout");
        return;
    }
    if (is->s.bye_pending) {   /* draining: this command was the last */
        conn_puts(&is->s.conn, "* BYE Server shutting down.\r\n");
        session_end(&is->s, "server shutting down");
        return;
    }
    if (end_if_too_many_bad(is))
        return;
    process(is);
}

void imap_done_rpc(struct imap_session *is, const Petrel__Response *resp)
{
    const char *text = resp->text && *resp->text ? resp->text : "Operation failed.";
    switch (resp->status) {
    case PETREL__STATUS__NONEXISTENT:
        imap_done(is, "NO", "[NONEXISTENT] %s", text);
        break;
    case PETREL__STATUS__ALREADYEXISTS:
        imap_done(is, "NO", "[ALREADYEXISTS] %s", text);
        break;
    case PETREL__STATUS__TOOBIG:
        imap_done(is, "NO", "[TOOBIG] %s", text);
        break;
    case PETREL__STATUS__NO:
        imap_done(is, "NO", "%s", text);
        break;
    case PETREL__STATUS__BAD:
        imap_done(is, "BAD", "%s", text);
        break;
    case PETREL__STATUS__UNKNOWN_CTE:   /* RFC 3516 4.3 */
        imap_done(is, "NO", "[UNKNOWN-CTE] %s", text);
        break;
    default:
        imap_done(is, "NO", "[UNAVAILABLE] Temporary failure, try again later.");
    }
}

/* Answers a line the reader rejected, using its tag when it has one. */
static void reject_line(struct imap_session *is, const char *reason)
{
    size_t len, tag_len;
    const char *text = imap_reader_text(&is->reader, &len), *tag;
    if (imap_find_tag(text, len, IMAP_MAX_TAG, &tag, &tag_len))
        conn_printf(&is->s.conn, "%.*s BAD %s\r\n", (int)tag_len, tag, reason);
    else
        conn_printf(&is->s.conn, "* BAD %s\r\n", reason);
    is->bad_count++;
    metrics_inc(FM_COMMANDS, (int[]){ is->s.m_proto, fm_command(NULL), MR_BAD });
}

/* A {n+} over the LITERAL- limit before login (RFC 7888 4): the command is
 * refused with a tagged BAD [TOOBIG]. The connection is then closed, as
 * Dovecot does, rather than reading and dropping what may be gigabytes.
 * After login (LITERAL+) only a literal over APPENDLIMIT is too big, and
 * that ends the session with just the BYE (RFC 7889 leaves it open). */
static void reject_nonsync(struct imap_session *is)
{
    reject_line(is, "[TOOBIG] Non-synchronizing literal too big");
}

const struct imap_parse_limits *imap_parse_limits(void)
{
    static struct imap_parse_limits lim;
    lim.max_tag = IMAP_MAX_TAG;
    lim.max_args = (size_t)frontend->cfg->imap_max_args;
    lim.max_depth = (size_t)frontend->cfg->imap_max_depth;
    return &lim;
}

static bool state_allows(const struct imap_session *is, unsigned flags)
{
    switch (is->state) {
    case IMAP_NOTAUTH:
        return flags & CMD_NOTAUTH;
    case IMAP_AUTH:
        return flags & CMD_AUTH;
    case IMAP_SELECTED:
        return flags & (CMD_AUTH | CMD_SELECTED);
    default:
        return false;
    }
}

static void run_command(struct imap_session *is, const char *text, size_t len)
{
    const char *err = NULL;
    is->cmd_t0 = metrics_now();
    is->m_cmd = fm_command(NULL);
    if (imap_parse_command(text, len, 0, imap_parse_limits(), &is->cmd, &err) < 0 ||
        !is->cmd.tag || !is->cmd.name) {
        if (is->cmd.tag)
            snprintf(is->tag, sizeof is->tag, "%.*s", (int)is->cmd.tag_len, is->cmd.tag);
        else
            snprintf(is->tag, sizeof is->tag, "*");
        is->busy = true;
        imap_done(is, "BAD", "Error in IMAP command: %s", err ? err : "Missing command.");
        return;
    }
    snprintf(is->tag, sizeof is->tag, "%.*s", (int)is->cmd.tag_len, is->cmd.tag);
    is->busy = true;
    is->uid_cmd = is->cmd.uid;
    const struct imap_cmd_def *def = imap_find_command(is->cmd.name, is->cmd.name_len);
    is->m_cmd = fm_command(def ? def->name : NULL);
    if (!def || (is->cmd.uid && !(def->flags & CMD_UID))) {
        imap_done(is, "BAD", "Error in IMAP command received by server: unknown command.");
        return;
    }
    if (!state_allows(is, def->flags)) {
        if (is->state == IMAP_NOTAUTH)
            imap_done(is, "BAD", "Command requires authentication.");
        else if (def->flags & CMD_SELECTED)
            imap_done(is, "BAD", "No mailbox selected.");
        else
            imap_done(is, "BAD", "Command not allowed in this state.");
        return;
    }
    is->def = def;
    log_debug("\"command\" session=%s command=%s", is->s.id, def->name);
    def->run(is, &is->cmd);
}

/* A literal announcement: APPEND streams its message; any other literal is
 * small and kept in the command buffer. */
static void on_literal(struct imap_session *is)
{
    const struct imap_literal *lit = imap_reader_literal(&is->reader);
    size_t len;
    const char *text = imap_reader_text(&is->reader, &len);
    if (!is->append) {   /* an APPEND starts here (MULTIAPPEND: at its first literal) */
        is->cmd_t0 = metrics_now();
        is->m_cmd = fm_command("APPEND");
    }
    if (is->state != IMAP_NOTAUTH && imap_append_literal(is, lit, text, len) == 0)
        return;   /* APPEND took it (or answered it) */
    if (lit->binary) {
        /* RFC 3516 4.4: a literal8 carries only an APPEND message. Refused
         * before its data: a synchronizing client never sends it, a
         * non-synchronizing one's is skipped. */
        reject_line(is, "literal8 is allowed only for an APPEND message");
        imap_reader_reject_literal(&is->reader);
        return;
    }
    enum imap_read_result r = imap_reader_accept_literal(&is->reader);
    if (r == IMAP_READ_ERROR) {
        reject_line(is, imap_read_error_reason(imap_reader_error(&is->reader)));
        return;
    }
    if (!lit->nonsync)
        conn_puts(&is->s.conn, "+ OK\r\n");
}

static void process(struct imap_session *is)
{
    if (is->in_process)
        return;
    is->in_process = true;
    struct buf *in = &is->s.conn.in;
again:
    while (!is->busy && !is->s.closing && !is->s.conn.closed && buf_len(in) > 0 &&
           !imap_append_blocked(is)) {
        size_t used = 0;
        enum imap_read_result r = imap_reader_feed(&is->reader, buf_head(in), buf_len(in), &used);
        if (r == IMAP_READ_LITERAL_DATA) {
            size_t n;
            bool last;
            const char *p = imap_reader_chunk(&is->reader, &n, &last);
            imap_append_data(is, p, n, last);
            buf_consume(in, used);
            continue;
        }
        buf_consume(in, used);
        if (r == IMAP_READ_MORE)
            break;
        if (r == IMAP_READ_COMMAND) {
            size_t len;
            const char *text = imap_reader_text(&is->reader, &len);
            if (is->append)
                imap_append_finish(is, text, len);
            else
                run_command(is, text, len);
        } else if (r == IMAP_READ_LITERAL) {
            on_literal(is);
        } else {
            enum imap_read_error e = imap_reader_error(&is->reader);
            if (is->append)
                imap_append_abort(is);
            if (e == IMAP_RERR_NONSYNC_TOO_BIG && is->state == IMAP_NOTAUTH)
                reject_nonsync(is);
            if (imap_read_error_is_fatal(e)) {
                conn_printf(&is->s.conn, "* BYE %s\r\n", imap_read_error_reason(e));
                session_end(&is->s, imap_read_error_reason(e));
                break;
            }
            reject_line(is, imap_read_error_reason(e));
            end_if_too_many_bad(is);
        }
    }
    /* IDLE reads its DONE itself while the command runs (cmd_idle.c). */
    if (is->idle && imap_idle_input(is))
        goto again;
    /* So does AUTHENTICATE its SASL responses (cmd_authenticate.c). */
    if (is->busy && is->cmd_input && is->cmd_input(is))
        goto again;
    is->in_process = false;
    /* The state may have changed (login): the next command's limits. */
    if (!is->busy)
        set_limits(is);
}

static void imap_on_read(struct session *s) { process((struct imap_session *)s); }

static void imap_on_drain(struct session *s)
{
    struct imap_session *is = (struct imap_session *)s;
    if (is->cmd_drain)
        is->cmd_drain(is);
}

static void imap_on_timeout(struct session *s)
{
    conn_puts(&s->conn, "* BYE Disconnected for inactivity.\r\n");
    session_end(s, "idle timeout");
}

void imap_count_result(struct imap_session *is, const char *status)
{
    int r = strcmp(status, "OK") == 0 ? MR_OK : strcmp(status, "NO") == 0 ? MR_NO : MR_BAD;
    metrics_inc(FM_COMMANDS, (int[]){ is->s.m_proto, is->m_cmd, r });
    if (is->cmd_t0 > 0)
        metrics_observe(FM_COMMAND_DURATION, (int[]){ is->s.m_proto, is->m_cmd },
                        metrics_now() - is->cmd_t0);
    is->cmd_t0 = 0;
    static const int states[] = { [IMAP_NOTAUTH] = MS_NOTAUTH, [IMAP_AUTH] = MS_AUTH,
                                  [IMAP_SELECTED] = MS_SELECTED, [IMAP_LOGOUT] = MS_LOGOUT };
    session_set_state(&is->s, states[is->state]);
}

/* Draining: BYE now when no command runs (IDLE counts as none: RFC 9051
 * lets the server end it with BYE), else after the running one's answer. */
static void imap_shutdown(struct session *s)
{
    struct imap_session *is = (struct imap_session *)s;
    if ((is->busy || is->append) && !is->idle) {
        s->bye_pending = true;
        return;
    }
    conn_puts(&s->conn, "* BYE Server shutting down.\r\n");
    session_end(s, "server shutting down");
}

static void imap_destroy(struct session *s)
{
    struct imap_session *is = (struct imap_session *)s;
    /* The session core has cancelled every call already (frontend.h). */
    if (is->append)
        imap_append_forget_call(is);
    imap_append_abort(is);
    end_command(is);
    imap_sel_clear(&is->sel);
    imap_reader_free(&is->reader);
    free(is);
}

const struct protocol imap_protocol = {
    .name = "imap",
    .create = imap_create,
    .start = imap_start,
    .on_read = imap_on_read,
    .on_drain = imap_on_drain,
    .on_timeout = imap_on_timeout,
    .destroy = imap_destroy,
    .shutdown = imap_shutdown,
};
