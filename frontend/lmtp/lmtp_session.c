/* LMTP (RFC 2033) with PIPELINING (RFC 2920), ENHANCEDSTATUSCODES (RFC 2034,
 * RFC 3463), 8BITMIME (RFC 6152), SIZE (RFC 1870) and SMTPUTF8 (RFC 6531).
 *
 * A session is LHLO, then transactions: MAIL FROM, RCPT TO (each recipient
 * looked up on a backend at once, RcptReq: an unknown one is refused there
 * with 550 5.1.1), DATA, and after the final "." one reply per accepted
 * recipient, in RCPT order. "250 2.0.0 <addr> Saved" means the backend has
 * committed the message; one recipient's failure (451 4.3.0, 550 5.1.1) does
 * not fail the others.
 *
 * Commands run strictly one at a time, in order: while one waits for the
 * backend (RCPT, the end of DATA) or the client does not read its replies,
 * reading is paused and pipelined input stays in conn.in.
 *
 * DATA is not buffered: lines are dot-unstuffed, given CRLF line ends and
 * passed on, behind a "Return-Path:" and a "Received:" header, in pieces of
 * rpc_chunk bytes: the first as a DeliverReq (the only one for a message
 * that fits, whose backend then stores it with one statement), the others as
 * Chunk frames with at most DELIVER_WINDOW unacknowledged, past which the
 * session stops reading from the client. The last piece carries last = true.
 * A client that vanishes mid-DATA has its call cancelled (session close):
 * the backend rolls back and nothing is stored. A message over
 * lmtp_max_message_size or with a line over lmtp_max_line is dropped (the
 * call cancelled), the rest of DATA read and discarded, and every recipient
 * gets 552 5.3.4 or 500 5.5.2.
 *
 * Plus-addressing: RCPT TO:<user+folder@domain> reaches user@domain (unless
 * an account has that exact address) and, with lmtp_save_to_detail_mailbox,
 * delivers into "folder" when it exists, else INBOX (as Dovecot). Recipients
 * that end up in the same mailbox of one account get one copy (the backend
 * merges them); each still gets its own reply.
 *
 * Draining (SIGTERM): "421 4.3.2" between transactions; one in progress is
 * finished first. */
#include "frontend.h"

#include "line_reader.h"
#include "lmtp/lmtp_parser.h"
#include "log.h"
#include "unicode_nfc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DELIVER_WINDOW 2          /* Chunk frames in flight to the backend */
#define LMTP_MAX_OUTPUT 262144    /* unread replies before we stop reading commands */

struct lmtp_rcpt {
    char *address;             /* as the client wrote it, without <> */
    int64_t account_id;
    char *mailbox;             /* "" for INBOX */
    Petrel__Status status;     /* the delivery's result */
};

enum data_error {
    DE_NONE,
    DE_TOO_LONG,               /* a line over lmtp_max_line */
    DE_TOO_BIG,                /* over lmtp_max_message_size */
    DE_FAILED,                 /* the backend refused or failed midway */
};

/* The DATA of one transaction. */
struct lmtp_data {
    struct rpc_call *call;
    struct buf piece;          /* bytes not yet sent */
    uint64_t client_bytes;     /* message bytes from the client */
    int unacked;               /* Chunk frames not yet acknowledged */
    bool started;              /* the DeliverReq went out */
    bool ended;                /* the final "." arrived */
    enum data_error error;
    Petrel__Status status;     /* the backend's overall answer */
};

struct lmtp {
    struct session s;          /* first: a struct session * is a struct lmtp * */
    struct line_reader lr;
    bool lhlo;
    char helo[256];
    bool busy;                 /* a command waits for the backend */
    bool processing;           /* inside process_input() */
    unsigned errors;
    unsigned long transactions;

    /* the transaction */
    bool mail;
    char *sender;
    bool utf8;                 /* MAIL FROM ... SMTPUTF8 */
    struct lmtp_rcpt *rcpts;
    size_t nrcpts, cap;
    char *rcpt_pending;        /* address being looked up */
    bool in_data;
    struct lmtp_data d;
};

static void process_input(struct lmtp *l);

/* ---- helpers ---- */

static struct conn *out(struct lmtp *l) { return &l->s.conn; }
static bool gone(struct lmtp *l) { return l->s.closing || l->s.conn.closed; }
static const char *node(void) { return frontend->cfg->node; }

static void reply(struct lmtp *l, const char *line)
{
    conn_puts(out(l), line);
    conn_puts(out(l), "\r\n");
}

/* An error caused by the client: counted, and too many end the session. */
static void bad(struct lmtp *l, const char *line)
{
    reply(l, line);
    if (++l->errors >= frontend->cfg->lmtp_max_bad_commands) {
        conn_printf(out(l), "421 4.7.0 %s Too many errors, closing connection\r\n", node());
        log_info("\"too many bad lmtp commands\" session=%s", l->s.id);
        session_end(&l->s, "too many bad commands");
    }
}

/* A copy of s safe inside a quoted log field. */
static const char *log_safe(const char *s, char *buf, size_t n)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < n; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == '\\' || s[i] == 0x7f ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

static bool data_blocked(const struct lmtp *l)
{
    return l->in_data && l->d.call && l->d.unacked >= DELIVER_WINDOW;
}

static bool stalled(struct lmtp *l)
{
    return l->busy || data_blocked(l) || buf_len(&out(l)->out) >= LMTP_MAX_OUTPUT;
}

/* Picks up buffered input again after a wait ended. */
static void resume(struct lmtp *l)
{
    if (l->processing || gone(l))
        return;
    process_input(l);
    if (!gone(l) && !stalled(l))
        conn_resume(out(l));
}

/* Draining: "421" once between transactions (after a DATA's replies,
 * before the next MAIL); a transaction in progress is finished first. */
static bool maybe_bye(struct lmtp *l)
{
    if (!l->s.bye_pending || gone(l) || l->busy || l->in_data || l->mail)
        return false;
    conn_printf(out(l), "421 4.3.2 %s Server shutting down\r\n", node());
    session_end(&l->s, "server shutting down");
    return true;
}

static void command_done(struct lmtp *l)
{
    l->busy = false;
    if (!maybe_bye(l))
        resume(l);
}

static void data_reset(struct lmtp *l)
{
    struct lmtp_data *d = &l->d;
    if (d->call)
        rpc_cancel(d->call);
    buf_free(&d->piece);
    *d = (struct lmtp_data){ 0 };
}

static void transaction_reset(struct lmtp *l)
{
    data_reset(l);
    for (size_t i = 0; i < l->nrcpts; i++) {
        free(l->rcpts[i].address);
        free(l->rcpts[i].mailbox);
    }
    l->nrcpts = 0;
    free(l->sender);
    l->sender = NULL;
    free(l->rcpt_pending);
    l->rcpt_pending = NULL;
    l->mail = false;
    l->utf8 = false;
    l->in_data = false;
}

/* ---- LHLO, MAIL, RCPT, RSET, NOOP, QUIT ---- */

static void cmd_lhlo(struct lmtp *l, const char *args)
{
    while (*args == ' ')
        args++;
    if (!*args) {
        bad(l, "501 5.5.4 Missing hostname");
        return;
    }
    size_t n = 0;
    for (; args[n] && args[n] != ' ' && n + 1 < sizeof l->helo; n++)
        l->helo[n] = (unsigned char)args[n] > 0x20 && (unsigned char)args[n] < 0x7f ? args[n] : '?';
    l->helo[n] = '\0';
    transaction_reset(l);
    l->lhlo = true;
    conn_printf(out(l),
                "250-%s\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                "250-SIZE %ld\r\n250 SMTPUTF8\r\n",
                node(), frontend->cfg->lmtp_max_message_size);
}

static void cmd_mail(struct lmtp *l, const char *args)
{
    if (!l->lhlo) {
        bad(l, "503 5.5.1 LHLO first");
        return;
    }
    if (l->mail) {
        bad(l, "503 5.5.1 MAIL already given");
        return;
    }
    const char *p = lmtp_after_prefix(args, " FROM:");
    char *addr = p ? lmtp_parse_path(&p) : NULL;
    if (!addr) {
        bad(l, "501 5.5.4 Invalid parameters: expected MAIL FROM:<address>");
        return;
    }
    char key[LMTP_PARAM_KEY];
    const char *val;
    size_t vlen;
    bool utf8 = false;
    while (lmtp_next_param(&p, key, sizeof key, &val, &vlen)) {
        if (strcmp(key, "SIZE") == 0) {
            uint64_t size;
            if (!lmtp_parse_size(val, vlen, &size)) {
                free(addr);
                bad(l, "501 5.5.4 Invalid SIZE parameter");
                return;
            }
            if (size > (uint64_t)frontend->cfg->lmtp_max_message_size) {
                free(addr);
                reply(l, "552 5.3.4 Message size exceeds fixed maximum message size");
                return;
            }
        } else if (strcmp(key, "BODY") == 0) {
            if (!lmtp_value_is(val, vlen, "7BIT") && !lmtp_value_is(val, vlen, "8BITMIME")) {
                free(addr);
                bad(l, "501 5.5.4 Unsupported BODY parameter");
                return;
            }
        } else if (strcmp(key, "SMTPUTF8") == 0 && !val) {
            utf8 = true;
        } else {
            free(addr);
            bad(l, "555 5.5.4 Unsupported parameter");
            return;
        }
    }
    l->mail = true;
    l->sender = addr;
    l->utf8 = utf8;
    reply(l, "250 2.1.0 OK");
}

static void rcpt_done(const Petrel__Response *resp, void *ctx)
{
    struct lmtp *l = ctx;
    if (gone(l))
        return;
    char *addr = l->rcpt_pending;
    l->rcpt_pending = NULL;
    char line[LMTP_MAX_ADDRESS + 64];
    if (resp->status == PETREL__STATUS__OK && resp->result_case == PETREL__RESPONSE__RESULT_RCPT) {
        if (l->nrcpts == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 8;
            l->rcpts = realloc(l->rcpts, l->cap * sizeof *l->rcpts);
            if (!l->rcpts)
                abort();
        }
        const char *detail = frontend->cfg->lmtp_save_to_detail_mailbox && resp->rcpt->detail
                                 ? resp->rcpt->detail : "";
        /* A mailbox name, so in NFC like every other (unicode_nfc.h). */
        char *mailbox = utf8_nfc(detail, strlen(detail), NULL);
        l->rcpts[l->nrcpts++] = (struct lmtp_rcpt){
            .address = addr, .account_id = resp->rcpt->account_id,
            .mailbox = mailbox ? mailbox : strdup(detail),
        };
        reply(l, "250 2.1.5 OK");
    } else if (resp->status == PETREL__STATUS__NONEXISTENT || resp->status == PETREL__STATUS__NO) {
        snprintf(line, sizeof line, "550 5.1.1 <%s> User doesn't exist", addr);
        reply(l, line);
        free(addr);
    } else if (resp->status == PETREL__STATUS__BAD) {
        snprintf(line, sizeof line, "501 5.1.3 <%s> Invalid recipient address", addr);
        reply(l, line);
        free(addr);
    } else {
        char a[128];
        log_warn("\"lmtp recipient lookup failed\" session=%s rcpt=\"%s\" status=%d text=\"%s\"",
                 l->s.id, log_safe(addr, a, sizeof a), (int)resp->status, resp->text);
        snprintf(line, sizeof line, "451 4.3.0 <%s> Temporary internal error", addr);
        reply(l, line);
        free(addr);
    }
    command_done(l);
}

static void cmd_rcpt(struct lmtp *l, const char *args)
{
    if (!l->mail) {
        bad(l, "503 5.5.1 MAIL needed first");
        return;
    }
    const char *p = lmtp_after_prefix(args, " TO:");
    char *addr = p ? lmtp_parse_path(&p) : NULL;
    if (!addr) {
        bad(l, "501 5.5.4 Invalid parameters: expected RCPT TO:<address>");
        return;
    }
    char key[LMTP_PARAM_KEY];
    const char *val;
    size_t vlen;
    if (lmtp_next_param(&p, key, sizeof key, &val, &vlen)) {
        free(addr);
        bad(l, "555 5.5.4 Unsupported parameter");
        return;
    }
    if (!*addr || !strchr(addr, '@')) {
        char line[LMTP_MAX_ADDRESS + 64];
        snprintf(line, sizeof line, "501 5.1.3 <%s> Invalid recipient address", addr);
        free(addr);
        bad(l, line);
        return;
    }
    if (l->nrcpts >= (size_t)frontend->cfg->lmtp_max_recipients) {
        free(addr);
        reply(l, "452 4.5.3 Too many recipients");
        return;
    }
    l->rcpt_pending = addr;
    l->busy = true;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__RcptReq rr = PETREL__RCPT_REQ__INIT;
    rr.address = addr;
    session_request(&l->s, &req);
    req.op_case = PETREL__REQUEST__OP_RCPT;
    req.rcpt = &rr;
    rpc_call(&req, RPC_RETRYABLE, rcpt_done, l, &l->s.calls);
}

/* ---- DATA ---- */

static void data_replies(struct lmtp *l)
{
    struct lmtp_data *d = &l->d;
    for (size_t i = 0; i < l->nrcpts; i++) {
        const char *a = l->rcpts[i].address;
        Petrel__Status st = d->error == DE_NONE ? l->rcpts[i].status : d->status;
        if (d->error == DE_TOO_LONG)
            conn_printf(out(l), "500 5.5.2 <%s> Line too long, message not delivered\r\n", a);
        else if (d->error == DE_TOO_BIG || st == PETREL__STATUS__TOOBIG)
            conn_printf(out(l), "552 5.3.4 <%s> Message size exceeds fixed maximum message size\r\n", a);
        else if (st == PETREL__STATUS__OK)
            conn_printf(out(l), "250 2.0.0 <%s> Saved\r\n", a);
        else if (st == PETREL__STATUS__NONEXISTENT)
            conn_printf(out(l), "550 5.1.1 <%s> User doesn't exist\r\n", a);
        else
            conn_printf(out(l), "451 4.3.0 <%s> Temporary internal error\r\n", a);
    }
}

static void data_finished(struct lmtp *l)
{
    size_t ok = 0;
    for (size_t i = 0; i < l->nrcpts && l->d.error == DE_NONE; i++)
        ok += l->rcpts[i].status == PETREL__STATUS__OK;
    char from[128];
    log_info("\"lmtp transaction\" session=%s from=\"%s\" rcpts=%zu delivered=%zu size=%" PRIu64
             " error=%d status=%d", l->s.id, log_safe(l->sender, from, sizeof from), l->nrcpts, ok,
             l->d.client_bytes, (int)l->d.error, (int)l->d.status);
    data_replies(l);
    transaction_reset(l);
}

/* Drops the message: the rest of DATA is read and discarded. */
static void data_fail(struct lmtp *l, enum data_error e)
{
    struct lmtp_data *d = &l->d;
    if (d->error != DE_NONE)
        return;
    d->error = e;
    if (d->call) {
        rpc_cancel(d->call);
        d->call = NULL;
    }
    d->unacked = 0;
    buf_free(&d->piece);
}

static void deliver_cb(const Petrel__Response *resp, void *ctx)
{
    struct lmtp *l = ctx;
    struct lmtp_data *d = &l->d;
    if (!resp->more)
        d->call = NULL;   /* the call is over; its handle is gone */
    if (gone(l))
        return;
    if (resp->more) {     /* a chunk was stored */
        if (d->unacked > 0)
            d->unacked--;
        session_touch(&l->s);
        if (!data_blocked(l))
            resume(l);
        return;
    }
    d->unacked = 0;
    d->status = resp->status;
    bool have = resp->status == PETREL__STATUS__OK &&
                resp->result_case == PETREL__RESPONSE__RESULT_DELIVER &&
                resp->deliver->n_results == l->nrcpts;
    if (!have && resp->status == PETREL__STATUS__OK)
        d->status = PETREL__STATUS__TEMPFAIL;
    if (!have) {
        char from[128];
        log_warn("\"lmtp delivery failed\" session=%s from=\"%s\" status=%d text=\"%s\"", l->s.id,
                 log_safe(l->sender, from, sizeof from), (int)resp->status, resp->text);
    }
    if (!d->ended) {      /* failed midway: the rest of DATA is discarded */
        if (d->error == DE_NONE)
            d->error = DE_FAILED;
        resume(l);
        return;
    }
    if (have)
        for (size_t i = 0; i < l->nrcpts; i++)
            l->rcpts[i].status = resp->deliver->results[i]->status;
    else if (d->error == DE_NONE)
        d->error = DE_FAILED;
    data_finished(l);
    command_done(l);
}

static void send_piece(struct lmtp *l, bool last)
{
    struct lmtp_data *d = &l->d;
    Petrel__Request req = PETREL__REQUEST__INIT;
    if (!d->started) {
        Petrel__DeliverReq dr = PETREL__DELIVER_REQ__INIT;
        Petrel__DeliverRcpt *rc = calloc(l->nrcpts, sizeof *rc);
        Petrel__DeliverRcpt **rcp = calloc(l->nrcpts, sizeof *rcp);
        if (!rc || !rcp)
            abort();
        for (size_t i = 0; i < l->nrcpts; i++) {
            petrel__deliver_rcpt__init(&rc[i]);
            rc[i].account_id = l->rcpts[i].account_id;
            rc[i].mailbox = l->rcpts[i].mailbox;
            rcp[i] = &rc[i];
        }
        dr.recipients = rcp;
        dr.n_recipients = l->nrcpts;
        dr.data.data = (uint8_t *)buf_head(&d->piece);
        dr.data.len = buf_len(&d->piece);
        dr.last = last;
        session_request(&l->s, &req);
        req.op_case = PETREL__REQUEST__OP_DELIVER;
        req.deliver = &dr;
        d->started = true;
        d->call = rpc_call(&req, 0, deliver_cb, l, &l->s.calls);
        free(rcp);
        free(rc);
    } else if (d->call) {
        Petrel__Chunk ch = PETREL__CHUNK__INIT;
        ch.data.data = (uint8_t *)buf_head(&d->piece);
        ch.data.len = buf_len(&d->piece);
        ch.last = last;
        req.op_case = PETREL__REQUEST__OP_APPEND_CHUNK;
        req.append_chunk = &ch;
        rpc_follow(d->call, &req);
        if (!last)
            d->unacked++;
    }
    buf_reset(&d->piece);
}

/* The trace headers put in front of the message (RFC 5321 4.4). */
static void trace_headers(struct lmtp *l)
{
    struct buf *b = &l->d.piece;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    buf_printf(b, "Return-Path: <%s>\r\n", l->sender);
    buf_printf(b, "Received: from %s ([%s])\r\n\tby %s with %s id %s-%lu", l->helo, l->s.client_ip,
               node(), l->utf8 ? "UTF8LMTP" : "LMTP", l->s.id, l->transactions);
    if (l->nrcpts == 1)
        buf_printf(b, "\r\n\tfor <%s>", l->rcpts[0].address);
    buf_printf(b, ";\r\n\t%s\r\n", date);
}

static void cmd_data(struct lmtp *l, const char *args)
{
    if (!l->mail) {
        bad(l, "503 5.5.1 MAIL needed first");
        return;
    }
    if (l->nrcpts == 0) {
        bad(l, "503 5.5.1 No valid recipients");
        return;
    }
    if (*args) {
        bad(l, "501 5.5.4 DATA takes no parameters");
        return;
    }
    data_reset(l);
    l->in_data = true;
    l->transactions++;
    trace_headers(l);
    reply(l, "354 OK");
}

/* The final "." of DATA. */
static void data_end(struct lmtp *l)
{
    struct lmtp_data *d = &l->d;
    l->in_data = false;
    d->ended = true;
    if (d->error != DE_NONE) {
        data_finished(l);
        return;
    }
    l->busy = true;
    send_piece(l, true);
}

static void data_line(struct lmtp *l, enum line_read_result r, const char *line, size_t len)
{
    struct lmtp_data *d = &l->d;
    if (r == LINE_READ_TOO_LONG) {
        data_fail(l, DE_TOO_LONG);
        return;
    }
    if (len == 1 && line[0] == '.') {
        data_end(l);
        return;
    }
    if (d->error != DE_NONE)
        return;
    if (len > 0 && line[0] == '.') {   /* dot-unstuffing (RFC 5321 4.5.2) */
        line++;
        len--;
    }
    d->client_bytes += len + 2;
    if (d->client_bytes > (uint64_t)frontend->cfg->lmtp_max_message_size) {
        data_fail(l, DE_TOO_BIG);
        return;
    }
    buf_append(&d->piece, line, len);
    buf_append(&d->piece, "\r\n", 2);
    if (buf_len(&d->piece) >= (size_t)frontend->cfg->rpc_chunk)
        send_piece(l, false);
}

/* ---- dispatch ---- */

static void cmd_rset(struct lmtp *l, const char *args)
{
    transaction_reset(l);
    reply(l, "250 2.0.0 OK");
}

static void cmd_noop(struct lmtp *l, const char *args) { reply(l, "250 2.0.0 OK"); }

static void cmd_quit(struct lmtp *l, const char *args)
{
    conn_printf(out(l), "221 2.0.0 %s Bye\r\n", node());
    session_end(&l->s, "quit");
}

static void cmd_vrfy(struct lmtp *l, const char *args)
{
    reply(l, "252 2.3.3 Try RCPT instead");
}

static const struct {
    const char *name;
    void (*fn)(struct lmtp *l, const char *args);
} commands[] = {
    { "LHLO", cmd_lhlo }, { "MAIL", cmd_mail }, { "RCPT", cmd_rcpt }, { "DATA", cmd_data },
    { "RSET", cmd_rset }, { "NOOP", cmd_noop }, { "QUIT", cmd_quit }, { "VRFY", cmd_vrfy },
};

static void command(struct lmtp *l, const char *line, size_t len)
{
    if (memchr(line, '\0', len)) {
        bad(l, "500 5.5.2 Invalid command syntax");
        return;
    }
    size_t vlen = strcspn(line, " ");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (vlen != 4 || strncasecmp(line, commands[i].name, 4) != 0)
            continue;
        log_debug("\"lmtp command\" session=%s cmd=%s", l->s.id, commands[i].name);
        commands[i].fn(l, line + vlen);
        return;
    }
    if (vlen == 4 && (strncasecmp(line, "HELO", 4) == 0 || strncasecmp(line, "EHLO", 4) == 0))
        bad(l, "500 5.5.1 This is LMTP: use LHLO");
    else
        bad(l, "500 5.5.1 Unknown command");
}

static void process_input(struct lmtp *l)
{
    struct conn *c = out(l);
    l->processing = true;
    while (!stalled(l) && !gone(l) && !maybe_bye(l) && buf_len(&c->in) > 0) {
        size_t used = 0, len = 0;
        const char *line = NULL;
        enum line_read_result r =
            line_reader_feed(&l->lr, buf_head(&c->in), buf_len(&c->in), &used, &line, &len);
        buf_consume(&c->in, used);
        if (r == LINE_READ_MORE)
            break;
        if (l->in_data)
            data_line(l, r, line, len);
        else if (r == LINE_READ_TOO_LONG)
            bad(l, "500 5.5.2 Line too long");
        else
            command(l, line, len);
    }
    l->processing = false;
    if (!gone(l) && stalled(l))
        conn_pause(c);   /* input waits in conn.in */
    else
        maybe_bye(l);
}

/* ---- protocol hooks ---- */

static struct session *lmtp_create(void)
{
    struct lmtp *l = calloc(1, sizeof *l);
    if (!l)
        abort();
    return &l->s;
}

static void lmtp_start(struct session *s)
{
    struct lmtp *l = (struct lmtp *)s;
    line_reader_init(&l->lr, (size_t)frontend->cfg->lmtp_max_line);
    session_set_idle_timeout(s, (double)frontend->cfg->lmtp_idle_timeout);
    conn_printf(out(l), "220 %s Petrel LMTP ready\r\n", node());
}

static void lmtp_on_read(struct session *s)
{
    struct lmtp *l = (struct lmtp *)s;
    if (!l->processing)
        process_input(l);
}

static void lmtp_on_drain(struct session *s)
{
    struct lmtp *l = (struct lmtp *)s;
    if (!gone(l) && !l->busy && !data_blocked(l))
        resume(l);
}

static void lmtp_on_timeout(struct session *s)
{
    struct lmtp *l = (struct lmtp *)s;
    if (l->busy || data_blocked(l)) {   /* waiting for the backend, not the client */
        session_touch(s);
        return;
    }
    log_info("\"lmtp idle timeout\" session=%s in_data=%d", s->id, (int)l->in_data);
    conn_printf(out(l), "421 4.4.2 %s Idle timeout, closing connection\r\n", node());
    session_end(s, "idle timeout");
}

static void lmtp_shutdown(struct session *s)
{
    struct lmtp *l = (struct lmtp *)s;
    s->bye_pending = true;
    maybe_bye(l);
}

static void lmtp_destroy(struct session *s)
{
    struct lmtp *l = (struct lmtp *)s;
    /* session.c cancelled every call of ours before this. */
    l->d.call = NULL;
    transaction_reset(l);
    free(l->rcpts);
    line_reader_free(&l->lr);
    free(l);
}

const struct protocol lmtp_protocol = {
    .name = "lmtp",
    .create = lmtp_create,
    .start = lmtp_start,
    .on_read = lmtp_on_read,
    .on_drain = lmtp_on_drain,
    .on_timeout = lmtp_on_timeout,
    .destroy = lmtp_destroy,
    .shutdown = lmtp_shutdown,
};
