/* APPEND (RFC 9051 6.3.12, RFC 7888 literals) and MULTIAPPEND (RFC 3502).
 * Message literals are not buffered: the input loop hands them over in
 * pieces, which go to the backend as Chunk frames, at most APPEND_WINDOW of
 * them unacknowledged; past that the session stops reading from the client.
 * A command that turns out to hold one message of up to rpc_chunk bytes is
 * one AppendReq, stored with one statement. Otherwise the first AppendReq is
 * multi: each further message starts with an append_next frame, and only
 * append_end, sent once the command line is complete, lets the backend add
 * the messages and commit (backend/op_append.c). Any refusal on the way
 * (a bad argument, a literal over APPENDLIMIT, a backend failure) or a
 * vanished client cancels the request, which rolls all of them back: all
 * or none, as RFC 3502 requires. */
#include "imap/imap_session.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define APPEND_WINDOW 2

struct imap_append {
    char *mailbox;
    /* The message arriving now. */
    uint32_t flags;
    char **keywords;
    size_t nkw;
    int64_t date;
    int32_t tz;
    uint64_t size;
    bool header_sent;          /* its AppendReq (or append_next) went out */
    struct buf piece;          /* its bytes not yet sent */
    unsigned nmsg;             /* messages of this command so far */
    struct rpc_call *call;
    int unacked;
    bool finished;             /* the command line after the last literal arrived */
    bool answered;             /* the backend's final answer arrived */
    bool utf8;                 /* the current message came as UTF8 (~{n}): a ")" follows it */
    Petrel__Status status;
    char text[160];
    uint32_t uidvalidity;
    uint32_t *uids;            /* APPENDUID's set, in message order */
    size_t nuids;
};

static void free_message(struct imap_append *a)
{
    imap_free_keywords(a->keywords, a->nkw);
    a->keywords = NULL;
    a->nkw = 0;
}

static void append_free(struct imap_append *a)
{
    if (a->call)
        rpc_cancel(a->call);
    free(a->mailbox);
    free_message(a);
    buf_free(&a->piece);
    free(a->uids);
    free(a);
}

void imap_append_forget_call(struct imap_session *is)
{
    if (is->append)
        is->append->call = NULL;
}

void imap_append_abort(struct imap_session *is)
{
    if (!is->append)
        return;
    append_free(is->append);
    is->append = NULL;
}

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (date-time, RFC 9051 9). */
static int parse_date(const char *s, size_t len, int64_t *t_r, int32_t *tz_r)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char buf[40], mon[4], sign;
    int d, y, h, mi, sec, zone, used = 0;
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    const char *p = buf[0] == ' ' ? buf + 1 : buf;
    if (sscanf(p, "%2d-%3s-%4d %2d:%2d:%2d %c%4d%n", &d, mon, &y, &h, &mi, &sec, &sign, &zone, &used) != 8 ||
        p[used] || (sign != '+' && sign != '-'))
        return -1;
    const char *m = strcasestr(months, mon);
    if (!m || (m - months) % 3 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || zone % 100 > 59)
        return -1;
    struct tm tm = { .tm_sec = sec, .tm_min = mi, .tm_hour = h, .tm_mday = d,
                     .tm_mon = (int)(m - months) / 3, .tm_year = y - 1900 };
    int32_t tz = (zone / 100 * 60 + zone % 100) * (sign == '-' ? -1 : 1);
    *t_r = (int64_t)timegm(&tm) - (int64_t)tz * 60;
    *tz_r = tz;
    return 0;
}

static void reply(struct imap_session *is);

/* RFC 4315 APPENDUID: one UID, or the set (consecutive in practice: the
 * mailbox row lock holds through the whole transaction). */
static void synced(struct imap_session *is)
{
    struct imap_append *a = is->append;
    is->append = NULL;
    struct buf set = {0};
    for (size_t i = 0; i < a->nuids;) {
        size_t j = i;
        while (j + 1 < a->nuids && a->uids[j + 1] == a->uids[j] + 1)
            j++;
        buf_printf(&set, "%s%u", i ? "," : "", a->uids[i]);
        if (j > i)
            buf_printf(&set, ":%u", a->uids[j]);
        i = j + 1;
    }
    buf_append(&set, "", 1);
    imap_done(is, "OK", "[APPENDUID %u %s] Append completed.", a->uidvalidity, buf_head(&set));
    buf_free(&set);
    append_free(a);
}

/* The command's answer once it failed; ends it. */
static void refused(struct imap_session *is, struct imap_append *a)
{
    if (a->status == PETREL__STATUS__NONEXISTENT)
        imap_done(is, "NO", "[TRYCREATE] Mailbox doesn't exist.");
    else if (a->status == PETREL__STATUS__TOOBIG)
        imap_done(is, "NO", "[TOOBIG] Message too large.");
    else if (a->status == PETREL__STATUS__TEMPFAIL)
        imap_done(is, "NO", "[UNAVAILABLE] Temporary failure, try again later.");
    else if (a->status == PETREL__STATUS__BAD)
        imap_done(is, "BAD", "%s", a->text);
    else
        imap_done(is, "NO", "%s", a->text);
}

static void reply(struct imap_session *is)
{
    struct imap_append *a = is->append;
    if (a->status != PETREL__STATUS__OK) {
        is->append = NULL;
        refused(is, a);
        append_free(a);
        return;
    }
    /* Appending to the selected mailbox: tell the client about it now. */
    if (is->state == IMAP_SELECTED && strcmp(is->sel.name, a->mailbox) == 0)
        imap_sync(is, synced);
    else
        synced(is);
}

static void take_result(struct imap_append *a, const Petrel__AppendResp *ar)
{
    a->uidvalidity = ar->uidvalidity;
    size_t n = ar->n_uids ? ar->n_uids : 1;
    a->uids = malloc(n * sizeof *a->uids);
    if (!a->uids)
        abort();
    if (ar->n_uids)
        memcpy(a->uids, ar->uids, n * sizeof *a->uids);
    else
        a->uids[0] = ar->uid;
    a->nuids = n;
}

static void append_cb(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct imap_append *a = is->append;
    if (resp->more && resp->status == PETREL__STATUS__OK) {   /* a frame was taken */
        a->unacked--;
        if (a->unacked < APPEND_WINDOW && !is->s.closing)
            ev_feed_event(is->s.conn.loop, &is->s.conn.rio, EV_CUSTOM);
        return;
    }
    if (resp->more)
        return;
    a->call = NULL;
    a->answered = true;
    a->status = resp->status;
    snprintf(a->text, sizeof a->text, "%s", resp->text ? resp->text : "");
    if (resp->status == PETREL__STATUS__OK && resp->result_case == PETREL__RESPONSE__RESULT_APPEND)
        take_result(a, resp->append);
    else if (resp->status == PETREL__STATUS__OK)
        a->status = PETREL__STATUS__TEMPFAIL;
    if (a->unacked > 0) {   /* failed midway: the rest of the literals is discarded */
        a->unacked = 0;
        ev_feed_event(is->s.conn.loop, &is->s.conn.rio, EV_CUSTOM);
    }
    if (a->finished)
        reply(is);
}

/* Sends what is buffered of the current message. Its first frame carries its
 * fields: the command's AppendReq, which is multi unless the whole command
 * is known to be this one message (then it is stored with one statement),
 * or an append_next. Every later frame counts against the window. */
static void send_piece(struct imap_session *is, struct imap_append *a, bool whole_command)
{
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__AppendReq ar = PETREL__APPEND_REQ__INIT;
    Petrel__Chunk ch = PETREL__CHUNK__INIT;
    if (!a->header_sent) {
        ar.mailbox = a->mailbox;
        ar.flags = a->flags;
        ar.keywords = a->keywords;
        ar.n_keywords = a->nkw;
        ar.internaldate = a->date;
        ar.tz_offset = a->tz;
        ar.size = a->size;
        ar.data.data = (uint8_t *)buf_head(&a->piece);
        ar.data.len = buf_len(&a->piece);
        a->header_sent = true;
        if (a->nmsg == 1) {
            ar.multi = !whole_command;
            req.op_case = PETREL__REQUEST__OP_APPEND;
            req.append = &ar;
            session_request(&is->s, &req);
            a->call = rpc_call(&req, 0, append_cb, is, &is->s.calls);
            buf_reset(&a->piece);
            return;
        }
        req.op_case = PETREL__REQUEST__OP_APPEND_NEXT;
        req.append_next = &ar;
    } else if (buf_len(&a->piece) > 0) {
        ch.data.data = (uint8_t *)buf_head(&a->piece);
        ch.data.len = buf_len(&a->piece);
        req.op_case = PETREL__REQUEST__OP_APPEND_CHUNK;
        req.append_chunk = &ch;
    } else {
        return;
    }
    if (a->call) {
        rpc_follow(a->call, &req);
        a->unacked++;
    }
    buf_reset(&a->piece);
}

bool imap_append_blocked(const struct imap_session *is)
{
    return is->append && is->append->unacked >= APPEND_WINDOW;
}

void imap_append_data(struct imap_session *is, const char *p, size_t n, bool last)
{
    struct imap_append *a = is->append;
    if (!a || a->answered)
        return;   /* failed already: the client's bytes are read and dropped */
    buf_append(&a->piece, p, n);
    /* The last piece waits until what follows the literal is known: another
     * message, or the end of the command (imap_append_finish). */
    if (buf_len(&a->piece) >= (size_t)frontend->cfg->rpc_chunk && !last)
        send_piece(is, a, false);
}

void imap_append_finish(struct imap_session *is, const char *rest, size_t len)
{
    struct imap_append *a = is->append;
    while (len && (rest[len - 1] == '\r' || rest[len - 1] == '\n' || rest[len - 1] == ' '))
        len--;
    is->busy = true;
    a->finished = true;
    bool wrapper_closed = !a->utf8;
    if (a->utf8 && len && rest[0] == ')') {   /* UTF8 (~{n}...) ends right after the data */
        rest++;
        len--;
        wrapper_closed = true;
    }
    if (len || !wrapper_closed) {
        /* Only a complete, valid command may store anything: a message
         * already streaming is cancelled, so its transaction rolls back. */
        is->append = NULL;
        append_free(a);
        imap_done(is, "BAD", "Unexpected data after the APPEND message.");
        return;
    }
    if (a->answered) {
        reply(is);
        return;
    }
    bool single = a->nmsg == 1 && !a->header_sent;
    send_piece(is, a, single);
    if (!single && a->call) {   /* now the backend may commit */
        Petrel__Request req = PETREL__REQUEST__INIT;
        Petrel__AppendEnd end = PETREL__APPEND_END__INIT;
        req.op_case = PETREL__REQUEST__OP_APPEND_END;
        req.append_end = &end;
        rpc_follow(a->call, &req);
    }
}

/* RFC 6855 4: "UTF8" SP "(" literal8 ")" carries a message whose headers
 * may be UTF-8, for a client that enabled UTF8=ACCEPT. arg is the list,
 * still open, that holds the pending literal8; the ")" comes after the data
 * (imap_append_finish, or before the next message). Returns NULL, or why it
 * is refused. */
static const char *utf8_data(const struct imap_session *is, const struct imap_arg *arg,
                             struct imap_append *a)
{
    if (!is->utf8_accept)
        return "APPEND UTF8 needs ENABLE UTF8=ACCEPT.";
    if (arg->type != IMAP_ARG_LIST || arg->count != 1 || arg->list[0].type != IMAP_ARG_LITERAL ||
        !arg->list[0].pending || !arg->list[0].literal8)
        return "APPEND UTF8 expects (~{size}...).";
    a->utf8 = true;
    return NULL;
}

/* Fills the current message's fields from "[(flags)] [date] {size}" (or
 * "... UTF8 (~{size}") at the end of args, the literal pending. NULL, or
 * why the arguments are bad. */
static const char *message_args(const struct imap_session *is, struct imap_append *a,
                                const struct imap_arg *args, size_t n)
{
    size_t i = 0;
    a->flags = 0;
    a->date = 0;
    a->tz = 0;
    a->utf8 = false;
    /* The message is the last argument, or UTF8 and the list holding it. */
    bool wrapped = n >= 2 && imap_arg_atom_is(&args[n - 2], "UTF8");
    size_t end = wrapped ? n - 2 : n - 1;
    if (n == 0 || end > 2)
        return "APPEND expects optional flags and date, and a message.";
    if (i < end && args[i].type == IMAP_ARG_LIST) {
        if (imap_parse_flags(&args[i], &a->flags, &a->keywords, &a->nkw) < 0)
            return "Invalid flag list.";
        i++;
    }
    if (i < end) {
        if (args[i].type != IMAP_ARG_QUOTED || parse_date(args[i].data, args[i].len, &a->date, &a->tz) < 0)
            return "Invalid date-time.";
        i++;
    }
    if (i != end)
        return "APPEND expects a message literal.";
    if (wrapped)
        return utf8_data(is, &args[n - 1], a);
    if (args[i].type != IMAP_ARG_LITERAL || !args[i].pending)
        return "APPEND expects a message literal.";
    return NULL;
}

/* Answers a command refused at a literal, before its data: a synchronizing
 * client never sends it, a non-synchronizing one's bytes (and the rest of
 * the command) are skipped by the reader. Ends the APPEND, if one runs. */
static void refuse_literal(struct imap_session *is, const struct imap_literal *lit,
                           const char *status, const char *text)
{
    conn_printf(&is->s.conn, "%s %s %s\r\n", is->tag, status, text);
    imap_count_result(is, status);
    is->bad_count = strcmp(status, "BAD") == 0 ? is->bad_count + 1 : 0;
    imap_append_abort(is);
    imap_reader_reject_literal(&is->reader);
}

static void take_literal(struct imap_session *is, struct imap_append *a, const struct imap_literal *lit)
{
    a->size = lit->size;
    a->header_sent = false;
    a->nmsg++;
    if (!lit->nonsync)
        conn_puts(&is->s.conn, "+ OK\r\n");
    imap_reader_stream_literal(&is->reader);
}

static bool too_big(const struct imap_literal *lit)
{
    return lit->size > (uint64_t)frontend->cfg->append_limit;
}

/* Takes the literal of one message, or refuses it (bad: the arguments
 * before it were wrong; else it is empty or over APPENDLIMIT) without
 * reading it. An empty message is no RFC 5322 message at all; Dovecot
 * refuses it with these words, and so does a MULTIAPPEND holding one. */
static void accept_literal(struct imap_session *is, struct imap_append *a,
                           const struct imap_literal *lit, const char *bad)
{
    if (bad)
        refuse_literal(is, lit, "BAD", bad);
    else if (lit->size == 0)
        refuse_literal(is, lit, "NO", "[CANNOT] Can't save a zero byte message.");
    else if (too_big(lit))
        refuse_literal(is, lit, lit->nonsync ? "BAD" : "NO",
                       lit->nonsync ? "Message too large." : "[TOOBIG] Message too large.");
    else
        take_literal(is, a, lit);
}

/* MULTIAPPEND (RFC 3502): another message after a streamed one. */
static void next_message(struct imap_session *is, const struct imap_literal *lit, const char *text,
                         size_t len)
{
    struct imap_append *a = is->append;
    if (a->answered) {   /* the backend failed the command already */
        is->append = NULL;
        imap_reader_reject_literal(&is->reader);
        is->busy = true;
        refused(is, a);
        append_free(a);
        return;
    }
    struct imap_command cmd = { 0 };
    const char *err = NULL, *bad = NULL;
    send_piece(is, a, false);   /* the end of the previous message */
    free_message(a);
    bool unclosed = a->utf8 && !(len && text[0] == ')');
    if (a->utf8 && !unclosed) {   /* the previous message's UTF8 wrapper closes first */
        text++;
        len--;
    }
    if (unclosed)
        bad = "APPEND UTF8 expects (~{size}...).";
    else if (imap_parse_args(text, len, IMAP_PARSE_PREFIX, imap_parse_limits(), &cmd, &err) < 0)
        bad = "Invalid APPEND arguments.";
    else
        bad = message_args(is, a, cmd.args, cmd.arg_count);
    imap_command_free(&cmd);
    accept_literal(is, a, lit, bad);
}

/* Parses "APPEND mailbox [(flags)] [date] {size}" (or, during an APPEND,
 * the next message's "[(flags)] [date] {size}"); 0 if it is an APPEND
 * (started or answered), -1 if the literal belongs to another command. */
int imap_append_literal(struct imap_session *is, const struct imap_literal *lit, const char *text,
                        size_t len)
{
    if (is->append) {
        next_message(is, lit, text, len);
        return 0;
    }
    struct imap_command cmd = { 0 };
    const char *err = NULL;
    if (imap_parse_command(text, len, IMAP_PARSE_PREFIX, imap_parse_limits(), &cmd, &err) < 0 ||
        !cmd.name || cmd.uid || cmd.name_len != 6 || strncasecmp(cmd.name, "APPEND", 6) != 0) {
        imap_command_free(&cmd);
        return -1;
    }
    snprintf(is->tag, sizeof is->tag, "%.*s", (int)cmd.tag_len, cmd.tag);
    const struct imap_arg *args = cmd.args;
    size_t n = cmd.arg_count;
    if (n == 1 && args[0].type == IMAP_ARG_LITERAL && args[0].pending) {
        /* The mailbox name itself is the literal: an ordinary small one. */
        imap_command_free(&cmd);
        return -1;
    }
    struct imap_append *a = calloc(1, sizeof *a);
    if (!a)
        abort();
    const char *bad = NULL;
    if (n < 2)
        bad = "APPEND expects a mailbox, optional flags and date, and a message.";
    else if (!(a->mailbox = imap_mailbox_name(is, &args[0])))
        bad = "Invalid mailbox name.";
    else
        bad = message_args(is, a, args + 1, n - 1);
    imap_command_free(&cmd);
    if (!bad && is->state == IMAP_NOTAUTH)
        bad = "Command requires authentication.";
    is->append = a;
    accept_literal(is, a, lit, bad);
    return 0;
}

/* Reached only when an APPEND line carried no literal: the message is
 * missing. */
void cmd_append(struct imap_session *is, const struct imap_command *cmd)
{
    imap_done(is, "BAD", "APPEND expects a message literal.");
}
