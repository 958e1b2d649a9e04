/* APPEND (RFC 9051 6.3.12, RFC 7888 literals). The message literal is not
 * buffered: the input loop hands it over in pieces, which go to the backend
 * as one AppendReq (a message up to rpc_chunk bytes: one round trip) or as
 * an AppendReq followed by Chunk frames, at most APPEND_WINDOW of them
 * unacknowledged; past that the session stops reading from the client. */
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
    uint32_t flags;
    char **keywords;
    size_t nkw;
    int64_t date;
    int32_t tz;
    uint64_t size;
    uint64_t sent;             /* bytes handed to the backend */
    struct buf piece;          /* bytes not yet sent */
    struct rpc_call *call;
    int unacked;
    bool finished;             /* the command line after the literal arrived */
    bool answered;             /* the backend's final answer arrived */
    bool utf8;                 /* came as UTF8 (~{n}): a ")" follows it */
    Petrel__Status status;
    char text[160];
    uint32_t uidvalidity, uid;
};

static void append_free(struct imap_append *a)
{
    if (a->call)
        rpc_cancel(a->call);
    free(a->mailbox);
    imap_free_keywords(a->keywords, a->nkw);
    buf_free(&a->piece);
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

static void synced(struct imap_session *is)
{
    struct imap_append *a = is->append;
    is->append = NULL;
    imap_done(is, "OK", "[APPENDUID %u %u] Append completed.", a->uidvalidity, a->uid);
    append_free(a);
}

static void reply(struct imap_session *is)
{
    struct imap_append *a = is->append;
    if (a->status != PETREL__STATUS__OK) {
        is->append = NULL;
        if (a->status == PETREL__STATUS__NONEXISTENT)
            imap_done(is, "NO", "[TRYCREATE] Mailbox doesn't exist.");
        else if (a->status == PETREL__STATUS__TOOBIG)
            imap_done(is, "NO", "[TOOBIG] Message too large.");
        else if (a->status == PETREL__STATUS__TEMPFAIL)
            imap_done(is, "NO", "[UNAVAILABLE] Temporary failure, try again later.");
        else
            imap_done(is, "NO", "%s", a->text);
        append_free(a);
        return;
    }
    /* Appending to the selected mailbox: tell the client about it now. */
    if (is->state == IMAP_SELECTED && strcmp(is->sel.name, a->mailbox) == 0)
        imap_sync(is, synced);
    else
        synced(is);
}

static void append_cb(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct imap_append *a = is->append;
    if (resp->more && resp->status == PETREL__STATUS__OK) {   /* a chunk was taken */
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
    if (resp->status == PETREL__STATUS__OK && resp->result_case == PETREL__RESPONSE__RESULT_APPEND) {
        a->uidvalidity = resp->append->uidvalidity;
        a->uid = resp->append->uid;
    } else if (resp->status == PETREL__STATUS__OK) {
        a->status = PETREL__STATUS__TEMPFAIL;
    }
    if (a->unacked > 0) {   /* failed midway: the rest of the literal is discarded */
        a->unacked = 0;
        ev_feed_event(is->s.conn.loop, &is->s.conn.rio, EV_CUSTOM);
    }
    if (a->finished)
        reply(is);
}

static void send_piece(struct imap_session *is, struct imap_append *a)
{
    Petrel__Request req = PETREL__REQUEST__INIT;
    if (a->sent == 0) {
        Petrel__AppendReq ar = PETREL__APPEND_REQ__INIT;
        ar.mailbox = a->mailbox;
        ar.flags = a->flags;
        ar.keywords = a->keywords;
        ar.n_keywords = a->nkw;
        ar.internaldate = a->date;
        ar.tz_offset = a->tz;
        ar.size = a->size;
        ar.data.data = (uint8_t *)buf_head(&a->piece);
        ar.data.len = buf_len(&a->piece);
        req.op_case = PETREL__REQUEST__OP_APPEND;
        req.append = &ar;
        session_request(&is->s, &req);
        a->call = rpc_call(&req, 0, append_cb, is, &is->s.calls);
    } else if (a->call) {
        Petrel__Chunk ch = PETREL__CHUNK__INIT;
        ch.data.data = (uint8_t *)buf_head(&a->piece);
        ch.data.len = buf_len(&a->piece);
        req.op_case = PETREL__REQUEST__OP_APPEND_CHUNK;
        req.append_chunk = &ch;
        rpc_follow(a->call, &req);
        a->unacked++;
    }
    a->sent += buf_len(&a->piece);
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
    /* The last piece waits for the end of the command line: only a complete,
     * valid command may commit a message (imap_append_finish). */
    if (buf_len(&a->piece) >= (size_t)frontend->cfg->rpc_chunk && !last)
        send_piece(is, a);
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
        len--;
        wrapper_closed = true;
    }
    if (len || !wrapper_closed) {
        /* MULTIAPPEND is not offered; a client sending it anyway gets BAD, and
         * a message already streaming is cancelled, so its transaction rolls
         * back: nothing of a refused command is stored. */
        is->append = NULL;
        append_free(a);
        imap_done(is, "BAD", "Unexpected data after the APPEND message.");
        return;
    }
    if (!a->answered)
        send_piece(is, a);   /* the last piece: now the backend may commit */
    else
        reply(is);
}

/* RFC 6855 4: "UTF8" SP "(" literal8 ")" carries a message whose headers
 * may be UTF-8, for a client that enabled UTF8=ACCEPT. arg is the list,
 * still open, that holds the pending literal8; the ")" comes after the data
 * (imap_append_finish). Returns NULL, or why it is refused. */
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

/* Parses "APPEND mailbox [(flags)] [date] {size}"; 0 if it is an APPEND
 * (started or answered), -1 if the literal belongs to another command. */
int imap_append_literal(struct imap_session *is, const struct imap_literal *lit, const char *text,
                        size_t len)
{
    struct imap_command cmd = { 0 };
    struct imap_parse_limits plim = { 64, 64, 4 };
    const char *err = NULL;
    if (is->append || imap_parse_command(text, len, IMAP_PARSE_PREFIX, &plim, &cmd, &err) < 0 ||
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
    const char *bad = NULL;
    /* The message is the last argument, or UTF8 and the list holding it. */
    bool wrapped = n >= 3 && imap_arg_atom_is(&args[n - 2], "UTF8");
    size_t end = wrapped ? n - 2 : n - 1;
    if (n < 2 || end > 3)
        bad = "APPEND expects a mailbox, optional flags and date, and a message.";
    else if (!(a->mailbox = imap_mailbox_name(is, &args[0])))
        bad = "Invalid mailbox name.";
    size_t i = 1;
    if (!bad && i < end && args[i].type == IMAP_ARG_LIST) {
        if (imap_parse_flags(&args[i], &a->flags, &a->keywords, &a->nkw) < 0)
            bad = "Invalid flag list.";
        i++;
    }
    if (!bad && i < end) {
        if (args[i].type != IMAP_ARG_QUOTED || parse_date(args[i].data, args[i].len, &a->date, &a->tz) < 0)
            bad = "Invalid date-time.";
        i++;
    }
    if (!bad && i != end)
        bad = "APPEND expects a message literal.";
    else if (!bad && wrapped)
        bad = utf8_data(is, &args[n - 1], a);
    else if (!bad && (args[i].type != IMAP_ARG_LITERAL || !args[i].pending))
        bad = "APPEND expects a message literal.";
    imap_command_free(&cmd);
    if (!bad && is->state == IMAP_NOTAUTH)
        bad = "Command requires authentication.";
    if (bad || lit->size > (uint64_t)frontend->cfg->append_limit) {
        /* Refused without reading the literal: a synchronizing client never
         * sends it, a non-synchronizing one's bytes are skipped by the reader. */
        if (bad || lit->nonsync)
            conn_printf(&is->s.conn, "%s BAD %s\r\n", is->tag, bad ? bad : "Message too large.");
        else
            conn_printf(&is->s.conn, "%s NO [TOOBIG] Message too large.\r\n", is->tag);
        imap_count_result(is, bad || lit->nonsync ? "BAD" : "NO");
        append_free(a);
        imap_reader_reject_literal(&is->reader);
        return 0;
    }
    a->size = lit->size;
    is->append = a;
    if (!lit->nonsync)
        conn_puts(&is->s.conn, "+ OK\r\n");
    /* Even an empty literal arrives as one (empty, last) chunk. */
    imap_reader_stream_literal(&is->reader);
    return 0;
}

/* Reached only when an APPEND line carried no literal: the message is
 * missing. */
void cmd_append(struct imap_session *is, const struct imap_command *cmd)
{
    imap_done(is, "BAD", "APPEND expects a message literal.");
}
