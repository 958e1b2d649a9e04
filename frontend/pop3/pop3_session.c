/* POP3 (RFC 1939, RFC 2449 CAPA, RFC 3206 response codes, RFC 5034 SASL).
 *
 * A session is AUTHORIZATION until USER/PASS (or AUTH PLAIN/LOGIN) logs in; the
 * login then opens INBOX (SelectReq) and fetches every message's size
 * (MetaReq), which fixes the maildrop for the session: message number n is
 * msgs[n-1] until QUIT. TRANSACTION commands mark and read; QUIT enters
 * UPDATE, expunges the marked messages (ExpungeReq, require_deleted=false)
 * and answers only once the backend has confirmed. A connection that drops
 * before QUIT changes nothing.
 *
 * Commands run strictly one at a time, in order (PIPELINING): while one waits
 * for the backend or for the client to take its output, reading is paused
 * and further input stays in conn.in. Completion picks up buffered input
 * again; `processing` guards against running the input loop re-entrantly
 * when a command completes synchronously.
 *
 * RETR/TOP stream the body: every Chunk is converted on the fly (bare LF to
 * CRLF, dot-stuffing, a line split across chunks handled by a little state)
 * and written to the client; the StreamAck that lets the backend send the
 * next chunk goes out only while the client's output buffer is below its low
 * watermark, else from on_drain, so a 50 MB message never sits in memory.
 * LIST and UIDL listings are written in slices the same way.
 *
 * Sizes (STAT, LIST, "+OK n octets") are what RETR sends, before
 * dot-stuffing as RFC 1939 counts: MessageMeta.crlf_size, which the backend
 * counts at APPEND (a bare LF sent as CRLF, an unterminated last line ended;
 * backend/crlf_size.h). Bodies stored before that was counted, and LMTP
 * deliveries (always CRLF), report their stored size. Bodies arriving now
 * have CRLF lines already (backend/crlf_norm.h); the conversion here is for
 * those stored as sent before. */
#include "frontend.h"

#include "frontend_metrics.h"
#include "auth_policy.h"
#include "cluster_state.h"
#include "line_reader.h"
#include "log.h"
#include "pop3/pop3_parser.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POP3_MAX_ARGS 2          /* TOP msg n */

enum pop3_state { ST_AUTHORIZATION = 1, ST_TRANSACTION = 2, ST_UPDATE = 4 };

struct pop3_msg {
    uint32_t uid;
    bool present;     /* seen in the MetaResp (not expunged meanwhile) */
    bool deleted;     /* DELE */
    bool retrieved;   /* a complete RETR: \Seen at QUIT */
    uint64_t size;    /* stored bytes: what BodyReq reads */
    uint64_t octets;  /* what RETR sends: STAT, LIST, "+OK n octets" */
};

/* A RETR or TOP in progress. */
struct pop3_stream {
    struct rpc_call *call;
    size_t idx;            /* message index */
    bool top;
    bool started;          /* +OK sent */
    bool in_body;          /* past the blank line ending the header */
    uint32_t top_lines;    /* body lines TOP may still send */
    bool at_line_start;
    bool prev_cr;          /* the last byte sent of this line was CR */
    uint64_t line_len;     /* bytes of the current line so far (CR included) */
    unsigned pending_acks; /* acks deferred until the client drains */
};

/* A LIST or UIDL listing being written in slices. */
struct pop3_listing {
    bool active;
    bool uidl;
    size_t next;
};

struct pop3 {
    struct session s;          /* first: a struct session * is a struct pop3 * */
    enum pop3_state state;
    struct line_reader lr;
    struct pop3_arg args[POP3_MAX_ARGS];
    bool busy;                 /* a command is in progress */
    bool processing;           /* inside process_input() */
    bool sasl_wait;            /* the next line answers an AUTH "+ " challenge */
    enum { SASL_PLAIN, SASL_LOGIN_USER, SASL_LOGIN_PASS } sasl_step;   /* which one */
    unsigned bad_commands;
    unsigned auth_failures;
    char *login_user;          /* from USER */

    int64_t mailbox_id;
    uint32_t uidvalidity;
    struct pop3_msg *msgs;
    size_t nmsgs;
    size_t ndeleted;
    uint64_t deleted_size;
    uint64_t total_size;

    struct pop3_stream st;
    struct pop3_listing ls;
    bool expunged_any;         /* QUIT removed messages */
    char *quit_line;           /* QUIT's answer, sent once the maildrop lock is released */

    /* Metrics of the command in progress: its result is that of its first
     * status line ("+OK", "-ERR"; BAD for the client's errors). */
    bool m_open;
    int m_cmd, m_result;
    double m_t0;
};

struct pop3_cmd {
    const char *name;
    unsigned states;           /* enum pop3_state bits */
    void (*fn)(struct pop3 *p, const struct pop3_command *cmd);
};

static void process_input(struct pop3 *p);

/* ---- metrics ---- */

static void metric_begin(struct pop3 *p, int cmd)
{
    p->m_open = true;
    p->m_cmd = cmd;
    p->m_result = -1;
    p->m_t0 = metrics_now();
}

static void metric_result(struct pop3 *p, int result)
{
    if (p->m_open && p->m_result < 0)
        p->m_result = result;
}

/* The command has finished (answered in full). */
static void metric_end(struct pop3 *p)
{
    if (!p->m_open)
        return;
    p->m_open = false;
    int r = p->m_result < 0 ? MR_OK : p->m_result;
    metrics_inc(FM_COMMANDS, (int[]){ p->s.m_proto, p->m_cmd, r });
    metrics_observe(FM_COMMAND_DURATION, (int[]){ p->s.m_proto, p->m_cmd },
                    metrics_now() - p->m_t0);
}

/* ---- output helpers ---- */

static struct conn *out(struct pop3 *p) { return &p->s.conn; }

static void reply(struct pop3 *p, const char *line)
{
    if (line[0] == '-')
        metric_result(p, MR_NO);
    else if (line[0] == '+' && line[1] == 'O')
        metric_result(p, MR_OK);
    conn_puts(out(p), line);
    conn_puts(out(p), "\r\n");
}

/* An error caused by the client: counted, and too many end the session. */
static void bad(struct pop3 *p, const char *line)
{
    metric_result(p, MR_BAD);
    reply(p, line);
    if (++p->bad_commands >= frontend->cfg->pop3_max_bad_commands) {
        reply(p, "-ERR Too many bad commands.");
        log_info("\"too many bad pop3 commands\" session=%s", p->s.id);
        session_end(&p->s, "too many bad commands");
    }
}

static bool gone(struct pop3 *p) { return p->s.closing || p->s.conn.closed; }

/* The command in progress has finished: go on with buffered input. */
static void command_done(struct pop3 *p)
{
    p->busy = false;
    metric_end(p);
    if (p->s.bye_pending && !gone(p)) {   /* draining: this command was the last */
        reply(p, "-ERR [SYS/TEMP] Server shutting down.");
        session_end(&p->s, "server shutting down");
        return;
    }
    if (p->processing || gone(p))
        return;   /* the running input loop continues by itself */
    process_input(p);
    if (!p->busy && !gone(p))
        conn_resume(&p->s.conn);
}

/* Fatal backend trouble after login: answer and end the session. */
static void fail_session(struct pop3 *p, const char *line, const char *why)
{
    reply(p, line);
    session_end(&p->s, why);
    p->busy = false;
    metric_end(p);
}

static void tempfail_line(char *dst, size_t n, const Petrel__Response *resp, const char *dflt)
{
    const char *text = resp->text && *resp->text ? resp->text : dflt;
    snprintf(dst, n, "-ERR [SYS/TEMP] %s", text);
}

/* UIDs as [lo, hi, ...] ranges; uids ascending. Caller frees ->bounds. */
static void uid_ranges(Petrel__UidRanges *r, const struct pop3_msg *msgs, size_t n,
                       bool (*want)(const struct pop3_msg *))
{
    petrel__uid_ranges__init(r);
    r->bounds = malloc(2 * n * sizeof *r->bounds + sizeof *r->bounds);
    if (!r->bounds)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (!want(&msgs[i]))
            continue;
        if (r->n_bounds > 0 && r->bounds[r->n_bounds - 1] + 1 == msgs[i].uid) {
            r->bounds[r->n_bounds - 1] = msgs[i].uid;
        } else {
            r->bounds[r->n_bounds++] = msgs[i].uid;
            r->bounds[r->n_bounds++] = msgs[i].uid;
        }
    }
}

static bool want_all(const struct pop3_msg *m) { return true; }
static bool want_deleted(const struct pop3_msg *m) { return m->deleted; }
static bool want_seen(const struct pop3_msg *m) { return m->retrieved && !m->deleted; }

/* ---- cluster hooks (cluster_state.c) ---- */

static void pop3_kick(struct session *s)
{
    reply((struct pop3 *)s, "-ERR Session kicked.");
    session_end(s, "kicked by administrator");
}

static const struct cluster_hooks pop3_cluster_hooks = { .kick = pop3_kick };

/* ---- login: LoginReq, then SelectReq INBOX, then MetaReq for sizes ---- */

static void meta_done(const Petrel__Response *resp, void *ctx);

static void logged_in(struct pop3 *p)
{
    /* Messages expunged between SELECT and META are not in the maildrop. */
    size_t n = 0;
    for (size_t i = 0; i < p->nmsgs; i++)
        if (p->msgs[i].present) {
            p->msgs[n++] = p->msgs[i];
            p->total_size += p->msgs[i].octets;
        }
    p->nmsgs = n;
    p->state = ST_TRANSACTION;
    cluster_session_login(&p->s, &pop3_cluster_hooks);
    session_set_state(&p->s, MS_AUTH);
    log_info("\"pop3 login\" session=%s user=%s messages=%zu size=%" PRIu64, p->s.id, p->s.user,
             p->nmsgs, p->total_size);
    reply(p, "+OK Logged in.");
    command_done(p);
}

static void select_done(const Petrel__Response *resp, void *ctx)
{
    struct pop3 *p = ctx;
    if (gone(p))
        return;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_SELECT) {
        char line[256];
        log_warn("\"pop3 cannot open INBOX\" session=%s status=%d text=\"%s\"", p->s.id,
                 (int)resp->status, resp->text);
        tempfail_line(line, sizeof line, resp, "Cannot open INBOX");
        fail_session(p, line, "cannot open INBOX");
        return;
    }
    const Petrel__SelectResp *sr = resp->select;
    p->mailbox_id = sr->mailbox_id;
    p->uidvalidity = sr->uidvalidity;
    p->nmsgs = sr->n_uids;
    p->msgs = calloc(sr->n_uids + 1, sizeof *p->msgs);
    if (!p->msgs)
        abort();
    for (size_t i = 0; i < sr->n_uids; i++)
        p->msgs[i].uid = sr->uids[i];
    if (p->nmsgs == 0) {
        logged_in(p);
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__MetaReq mr = PETREL__META_REQ__INIT;
    Petrel__UidRanges ranges;
    uid_ranges(&ranges, p->msgs, p->nmsgs, want_all);
    mr.mailbox_id = p->mailbox_id;
    mr.uids = &ranges;
    mr.want_crlf_size = true;
    session_request(&p->s, &req);
    req.op_case = PETREL__REQUEST__OP_META;
    req.meta = &mr;
    rpc_call(&req, RPC_RETRYABLE, meta_done, p, &p->s.calls);
    free(ranges.bounds);
}

static struct pop3_msg *find_uid(struct pop3 *p, uint32_t uid)
{
    size_t lo = 0, hi = p->nmsgs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->nmsgs && p->msgs[lo].uid == uid ? &p->msgs[lo] : NULL;
}

static void meta_done(const Petrel__Response *resp, void *ctx)
{
    struct pop3 *p = ctx;
    if (gone(p))
        return;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_META) {
        char line[256];
        log_warn("\"pop3 cannot read INBOX sizes\" session=%s status=%d text=\"%s\"", p->s.id,
                 (int)resp->status, resp->text);
        tempfail_line(line, sizeof line, resp, "Cannot read INBOX");
        fail_session(p, line, "cannot read INBOX");
        return;
    }
    for (size_t i = 0; i < resp->meta->n_messages; i++) {
        const Petrel__MessageMeta *m = resp->meta->messages[i];
        struct pop3_msg *msg = find_uid(p, m->uid);
        if (msg) {
            msg->present = true;
            msg->size = m->size;
            /* 0 from a backend that does not count it: the stored size. */
            msg->octets = m->crlf_size ? m->crlf_size : m->size;
        }
    }
    if (!resp->more)
        logged_in(p);
}

/* A user name for a log line: printable ASCII without quotes, bounded. */
static void log_safe(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < n; i++)
        dst[i] = src[i] > 0x20 && src[i] < 0x7f && src[i] != '"' && src[i] != '\\' ? src[i] : '?';
    dst[i] = '\0';
}

static void auth_failed(struct pop3 *p)
{
    char user[65];
    log_safe(user, sizeof user, p->login_user);
    log_info("\"pop3 authentication failed\" session=%s user=\"%s\" client=%s", p->s.id, user,
             p->s.client_ip);
    session_auth_result(&p->s, MA_FAILURE);
    auth_result(&p->s, p->login_user, false);
    free(p->login_user);
    p->login_user = NULL;
    reply(p, "-ERR [AUTH] Authentication failed.");
    if (++p->auth_failures >= frontend->cfg->pop3_max_auth_failures) {
        reply(p, "-ERR Too many authentication failures.");
        session_end(&p->s, "too many authentication failures");
    }
}

/* The cluster-wide maildrop lock is ours (or Redis is away: allowed,
 * degraded): open INBOX. Held by another session: back to AUTHORIZATION. */
static void maildrop_locked(struct session *s, enum cluster_lock_result r)
{
    struct pop3 *p = (struct pop3 *)s;
    if (gone(p))
        return;
    if (r == CLUSTER_LOCK_BUSY) {
        log_info("\"pop3 maildrop locked by another session\" session=%s user=%s", s->id, s->user);
        free(s->user);
        s->user = NULL;
        s->account_id = 0;
        reply(p, "-ERR [IN-USE] Mailbox is locked by another POP3 session.");
        command_done(p);
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__SelectReq sel = PETREL__SELECT_REQ__INIT;
    sel.mailbox = "INBOX";
    session_request(&p->s, &req);
    req.op_case = PETREL__REQUEST__OP_SELECT;
    req.select = &sel;
    rpc_call(&req, RPC_RETRYABLE, select_done, p, &p->s.calls);
}

static void login_done(const Petrel__Response *resp, void *ctx)
{
    struct pop3 *p = ctx;
    if (gone(p))
        return;
    if (resp->status == PETREL__STATUS__NO ||
        (resp->status == PETREL__STATUS__OK && resp->result_case != PETREL__RESPONSE__RESULT_LOGIN)) {
        auth_failed(p);
        command_done(p);   /* also when auth_failed ended the session */
        return;
    }
    if (resp->status != PETREL__STATUS__OK) {
        char line[256];
        log_warn("\"pop3 login failed\" session=%s status=%d text=\"%s\"", p->s.id,
                 (int)resp->status, resp->text);
        free(p->login_user);
        p->login_user = NULL;
        session_auth_result(&p->s, MA_TEMPFAIL);
        tempfail_line(line, sizeof line, resp, "Temporary authentication failure.");
        reply(p, line);
        command_done(p);
        return;
    }
    session_auth_result(&p->s, MA_SUCCESS);
    auth_result(&p->s, p->login_user, true);
    p->s.account_id = resp->login->account_id;
    p->s.user = strdup(resp->login->address);
    free(p->login_user);
    p->login_user = NULL;
    /* RFC 1939 4: the maildrop is locked before it is opened. */
    cluster_pop3_lock(&p->s, maildrop_locked);
}

static const char PLAINTEXT_REFUSED[] =
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections.";

/* After the throttling delay (auth_policy.h). */
static void login_checked(struct session *s, enum auth_verdict v, const char *user, const char *pass)
{
    struct pop3 *p = (struct pop3 *)s;
    if (v == AUTH_LOCKED) {
        free(p->login_user);
        p->login_user = NULL;
        session_auth_result(&p->s, MA_TEMPFAIL);
        reply(p, "-ERR [SYS/TEMP] Too many failed logins, try again later.");
        command_done(p);
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__LoginReq lr = PETREL__LOGIN_REQ__INIT;
    lr.username = p->login_user;
    lr.password = (char *)(pass ? pass : "");
    lr.client_ip = p->s.client_ip;
    lr.protocol = "pop3";
    session_request(&p->s, &req);
    req.op_case = PETREL__REQUEST__OP_LOGIN;
    req.login = &lr;
    rpc_call(&req, RPC_RETRYABLE, login_done, p, &p->s.calls);
}

static void start_login(struct pop3 *p, const char *user, const char *pass)
{
    if (user != p->login_user) {
        char *copy = strdup(user);
        free(p->login_user);
        p->login_user = copy;
    }
    if (!auth_allowed(&p->s)) {
        free(p->login_user);
        p->login_user = NULL;
        reply(p, PLAINTEXT_REFUSED);
        return;
    }
    p->busy = true;
    auth_throttle_check(&p->s, p->login_user, pass, login_checked);
}

/* ---- AUTHORIZATION commands ---- */

static void cmd_user(struct pop3 *p, const struct pop3_command *cmd)
{
    if (cmd->argc != 1) {
        bad(p, "-ERR USER needs one argument.");
        return;
    }
    if (!auth_allowed(&p->s)) {
        reply(p, PLAINTEXT_REFUSED);
        return;
    }
    free(p->login_user);
    p->login_user = strndup(cmd->args[0].data, cmd->args[0].len);
    reply(p, "+OK");
}

static void cmd_pass(struct pop3 *p, const struct pop3_command *cmd)
{
    if (!p->login_user) {
        bad(p, "-ERR No username given.");
        return;
    }
    char *pass = strndup(cmd->rest ? cmd->rest : "", cmd->rest_len);
    if (!pass)
        abort();
    start_login(p, p->login_user, pass);
    explicit_bzero(pass, strlen(pass));
    free(pass);
}

/* RFC 4648 base64; returns the decoded length or -1. out has room for
 * len * 3 / 4 + 1 bytes. */
static long base64_decode(const char *in, size_t len, char *dst)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') { pad++; continue; }
        else return -1;
        if (pad)
            return -1;   /* data after padding */
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (char)(acc >> bits & 0xff);
        }
    }
    if (len % 4 != 0 || pad > 2)
        return -1;
    return (long)o;
}

/* SASL PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd. */
static void sasl_plain(struct pop3 *p, const char *b64, size_t len)
{
    char *buf = malloc(len * 3 / 4 + 2);
    if (!buf)
        abort();
    long n = base64_decode(b64, len, buf);
    if (n < 0) {
        free(buf);
        bad(p, "-ERR Invalid base64 data in AUTH response.");
        return;
    }
    buf[n] = '\0';
    const char *authz = buf;
    const char *nul1 = memchr(buf, '\0', (size_t)n);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(buf + n - nul1 - 1)) : NULL;
    if (!nul1 || !nul2 || memchr(nul2 + 1, '\0', (size_t)(buf + n - nul2 - 1))) {
        explicit_bzero(buf, (size_t)n);
        free(buf);
        bad(p, "-ERR Invalid AUTH PLAIN response.");
        return;
    }
    const char *authc = nul1 + 1, *pass = nul2 + 1;
    if (*authz && strcmp(authz, authc) != 0) {
        /* No proxy authorization: logging in as someone else is refused. */
        free(p->login_user);
        p->login_user = strdup(authc);
        explicit_bzero(buf, (size_t)n);
        free(buf);
        auth_failed(p);
        return;
    }
    start_login(p, authc, pass);
    explicit_bzero(buf, (size_t)n);
    free(buf);
}

/* A LOGIN response (user name or password) decoded into a NUL-terminated
 * string; NULL, after -ERR, for bad base64 or an embedded NUL. */
static char *sasl_login_decode(struct pop3 *p, const char *b64, size_t len)
{
    char *buf = malloc(len * 3 / 4 + 2);
    if (!buf)
        abort();
    long n = base64_decode(b64, len, buf);
    if (n < 0 || memchr(buf, '\0', (size_t)n)) {
        if (n > 0)
            explicit_bzero(buf, (size_t)n);
        free(buf);
        bad(p, n < 0 ? "-ERR Invalid base64 data in AUTH response."
                     : "-ERR Invalid AUTH LOGIN response.");
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* SASL LOGIN (draft-murchison-sasl-login): the user name, then the password,
 * each answering a challenge; the login is then that of PLAIN. */
static void sasl_login_user(struct pop3 *p, const char *b64, size_t len)
{
    char *user = sasl_login_decode(p, b64, len);
    if (!user)
        return;
    free(p->login_user);
    p->login_user = user;
    p->sasl_step = SASL_LOGIN_PASS;
    p->sasl_wait = true;
    reply(p, "+ UGFzc3dvcmQ6");   /* "Password:" */
}

static void sasl_login_pass(struct pop3 *p, const char *b64, size_t len)
{
    char *pass = sasl_login_decode(p, b64, len);
    if (!pass) {
        free(p->login_user);
        p->login_user = NULL;
        return;
    }
    start_login(p, p->login_user, pass);
    explicit_bzero(pass, strlen(pass));
    free(pass);
}

/* An exchange ends unfinished: a LOGIN user name given so far is dropped. */
static void sasl_reset(struct pop3 *p)
{
    if (p->sasl_wait && p->sasl_step == SASL_LOGIN_PASS) {
        free(p->login_user);
        p->login_user = NULL;
    }
    p->sasl_wait = false;
}

static void cmd_auth(struct pop3 *p, const struct pop3_command *cmd)
{
    if (cmd->argc == 0) {
        /* The pre-RFC 5034 form, still sent by some clients: list mechanisms. */
        conn_puts(out(p), "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
        return;
    }
    const struct pop3_arg *mech = &cmd->args[0];
    bool login = mech->len == 5 && strncasecmp(mech->data, "LOGIN", 5) == 0;
    if (!login && (mech->len != 5 || strncasecmp(mech->data, "PLAIN", 5) != 0)) {
        bad(p, "-ERR Unsupported authentication mechanism.");
        return;
    }
    if (!auth_allowed(&p->s)) {
        reply(p, PLAINTEXT_REFUSED);
        return;
    }
    if (cmd->argc == 2) {
        const struct pop3_arg *ir = &cmd->args[1];
        bool empty = ir->len == 1 && ir->data[0] == '=';   /* an empty initial response */
        if (login)
            sasl_login_user(p, empty ? "" : ir->data, empty ? 0 : ir->len);
        else
            sasl_plain(p, empty ? "" : ir->data, empty ? 0 : ir->len);
        return;
    }
    p->sasl_wait = true;
    p->sasl_step = login ? SASL_LOGIN_USER : SASL_PLAIN;
    reply(p, login ? "+ VXNlcm5hbWU6" : "+ ");   /* "Username:" */
}

static void sasl_line(struct pop3 *p, const char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        sasl_reset(p);
        bad(p, "-ERR Authentication aborted by client.");
        return;
    }
    p->sasl_wait = false;
    switch (p->sasl_step) {
    case SASL_PLAIN: sasl_plain(p, line, len); break;
    case SASL_LOGIN_USER: sasl_login_user(p, line, len); break;
    case SASL_LOGIN_PASS: sasl_login_pass(p, line, len); break;
    }
}

/* ---- commands for any state ---- */

/* STLS (RFC 2595) may be used now: before login, not yet TLS, TLS configured. */
static bool stls_usable(const struct pop3 *p)
{
    return p->state == ST_AUTHORIZATION && !p->s.tls && frontend->tls;
}

/* STLS: "+OK" goes out in cleartext, then the handshake. Whatever the client
 * pipelined after STLS was sent in cleartext and is dropped unread, line
 * reader included, so it can never run inside TLS (CVE-2011-0411). */
static void cmd_stls(struct pop3 *p, const struct pop3_command *cmd)
{
    if (cmd->argc != 0) {
        bad(p, "-ERR STLS takes no arguments.");
        return;
    }
    if (p->s.tls) {
        bad(p, "-ERR TLS is already active.");
        return;
    }
    if (!frontend->tls) {
        bad(p, "-ERR TLS support isn't enabled.");
        return;
    }
    line_reader_free(&p->lr);
    line_reader_init(&p->lr, (size_t)frontend->cfg->pop3_max_line);
    p->s.tls = true;
    reply(p, "+OK Begin TLS negotiation now.");
    conn_start_tls(&p->s.conn, frontend->tls);   /* drops conn.in */
}

static void cmd_capa(struct pop3 *p, const struct pop3_command *cmd)
{
    /* RFC 2449 5: what AUTHORIZATION announces must be in both lists. */
    conn_puts(out(p), "+OK Capability list follows\r\n"
                      "CAPA\r\n"
                      "TOP\r\n"
                      "UIDL\r\n"
                      "RESP-CODES\r\n"
                      "PIPELINING\r\n"
                      "AUTH-RESP-CODE\r\n");
    if (stls_usable(p))
        conn_puts(out(p), "STLS\r\n");
    /* No password mechanism where cleartext is refused (auth_policy.h). */
    if (auth_allowed(&p->s))
        conn_puts(out(p), "USER\r\n"
                          "SASL PLAIN LOGIN\r\n");
    /* RFC 2449 6.7: nothing here deletes mail the client leaves on the
     * server; 6.5: no minimum time between logins is enforced (the delay
     * after a failed login is not one). Both hold for every user and state. */
    conn_puts(out(p), "EXPIRE NEVER\r\n"
                      "LOGIN-DELAY 0\r\n"
                      "IMPLEMENTATION Petrel\r\n"
                      ".\r\n");
}

static void cmd_noop(struct pop3 *p, const struct pop3_command *cmd) { reply(p, "+OK"); }

/* ---- QUIT and the UPDATE state ---- */

static void quit_unlocked(struct session *s)
{
    struct pop3 *p = (struct pop3 *)s;
    reply(p, p->quit_line);
    session_end(&p->s, "logged out");
    p->busy = false;
    metric_end(p);
}

/* RFC 1939 6: the lock is released before QUIT is answered, so a client that
 * logs in again right after the +OK finds the maildrop free. */
static void quit_finish(struct pop3 *p, const char *line)
{
    free(p->quit_line);
    p->quit_line = strdup(line);
    if (!p->quit_line)
        abort();
    cluster_pop3_unlock(&p->s, quit_unlocked);
}

static void store_done(const Petrel__Response *resp, void *ctx)
{
    struct pop3 *p = ctx;
    if (resp->more)
        return;
    if (resp->status != PETREL__STATUS__OK)
        log_warn("\"pop3 could not set \\\\Seen\" session=%s status=%d text=\"%s\"", p->s.id,
                 (int)resp->status, resp->text);
    quit_finish(p, p->expunged_any ? "+OK Logging out, messages deleted." : "+OK Logging out.");
}

/* RETR-ieved messages become \Seen at QUIT, as with Dovecot; none when the
 * session just drops. */
static void update_seen(struct pop3 *p)
{
    Petrel__UidRanges ranges;
    uid_ranges(&ranges, p->msgs, p->nmsgs, want_seen);
    if (ranges.n_bounds == 0) {
        free(ranges.bounds);
        quit_finish(p, p->expunged_any ? "+OK Logging out, messages deleted." : "+OK Logging out.");
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__StoreReq sr = PETREL__STORE_REQ__INIT;
    sr.mailbox_id = p->mailbox_id;
    sr.uids = &ranges;
    sr.mode = PETREL__STORE_MODE__ADD;
    sr.flags = PETREL__FLAG__SEEN;
    session_request(&p->s, &req);
    req.op_case = PETREL__REQUEST__OP_STORE;
    req.store = &sr;
    rpc_call(&req, 0, store_done, p, &p->s.calls);
    free(ranges.bounds);
}

static void expunge_done(const Petrel__Response *resp, void *ctx)
{
    struct pop3 *p = ctx;
    if (resp->more)
        return;
    if (resp->status != PETREL__STATUS__OK) {
        char line[256];
        log_warn("\"pop3 expunge failed\" session=%s status=%d text=\"%s\"", p->s.id,
                 (int)resp->status, resp->text);
        /* RFC 1939: "-ERR some deleted messages not removed". */
        snprintf(line, sizeof line, "-ERR [SYS/TEMP] Some deleted messages were not removed: %s",
                 resp->text && *resp->text ? resp->text : "backend error");
        quit_finish(p, line);
        return;
    }
    size_t n = resp->result_case == PETREL__RESPONSE__RESULT_EXPUNGE ? resp->expunge->n_uids : 0;
    p->expunged_any = n > 0;
    log_info("\"pop3 expunged\" session=%s marked=%zu removed=%zu", p->s.id, p->ndeleted, n);
    update_seen(p);
}

static void cmd_quit(struct pop3 *p, const struct pop3_command *cmd)
{
    if (p->state == ST_AUTHORIZATION) {
        reply(p, "+OK Logging out.");
        session_end(&p->s, "logged out");
        return;
    }
    p->state = ST_UPDATE;
    session_set_state(&p->s, MS_LOGOUT);
    p->busy = true;
    if (p->ndeleted == 0) {
        update_seen(p);
        return;
    }
    Petrel__UidRanges ranges;
    uid_ranges(&ranges, p->msgs, p->nmsgs, want_deleted);
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__ExpungeReq er = PETREL__EXPUNGE_REQ__INIT;
    er.mailbox_id = p->mailbox_id;
    er.uids = &ranges;
    er.require_deleted = false;
    session_request(&p->s, &req);
    req.op_case = PETREL__REQUEST__OP_EXPUNGE;
    req.expunge = &er;
    rpc_call(&req, 0, expunge_done, p, &p->s.calls);
    free(ranges.bounds);
}

/* ---- TRANSACTION commands ---- */

/* The message a number argument names, or NULL after answering -ERR. */
static struct pop3_msg *get_msg(struct pop3 *p, const struct pop3_arg *arg, size_t *idx_r)
{
    uint32_t n;
    if (!pop3_parse_msgnum(arg->data, arg->len, &n)) {
        char line[128];
        snprintf(line, sizeof line, "-ERR Invalid message number: %.*s",
                 (int)(arg->len > 40 ? 40 : arg->len), arg->data);
        bad(p, line);
        return NULL;
    }
    if (n > p->nmsgs) {
        char line[64];
        snprintf(line, sizeof line, "-ERR There's no message %" PRIu32 ".", n);
        bad(p, line);
        return NULL;
    }
    if (p->msgs[n - 1].deleted) {
        bad(p, "-ERR Message is deleted.");
        return NULL;
    }
    *idx_r = n - 1;
    return &p->msgs[n - 1];
}

static bool args_between(struct pop3 *p, const struct pop3_command *cmd, size_t min, size_t max)
{
    if (cmd->argc >= min && cmd->argc <= max)
        return true;
    bad(p, cmd->argc < min ? "-ERR Missing argument." : "-ERR Too many arguments.");
    return false;
}

static void cmd_stat(struct pop3 *p, const struct pop3_command *cmd)
{
    if (!args_between(p, cmd, 0, 0))
        return;
    conn_printf(out(p), "+OK %zu %" PRIu64 "\r\n", p->nmsgs - p->ndeleted,
                p->total_size - p->deleted_size);
}

static void listing_continue(struct pop3 *p)
{
    struct conn *c = out(p);
    while (p->ls.next < p->nmsgs && buf_len(&c->out) < c->low_water && !c->closed) {
        const struct pop3_msg *m = &p->msgs[p->ls.next++];
        if (m->deleted)
            continue;
        if (p->ls.uidl)
            conn_printf(c, "%zu %" PRIu32 ".%" PRIu32 "\r\n", p->ls.next, p->uidvalidity, m->uid);
        else
            conn_printf(c, "%zu %" PRIu64 "\r\n", p->ls.next, m->octets);
    }
    if (p->ls.next == p->nmsgs) {
        conn_puts(c, ".\r\n");
        p->ls.active = false;
        command_done(p);
    } else {
        session_touch(&p->s);
    }
}

static void start_listing(struct pop3 *p, bool uidl)
{
    p->ls = (struct pop3_listing){ .active = true, .uidl = uidl, .next = 0 };
    p->busy = true;
    listing_continue(p);
}

static void cmd_list(struct pop3 *p, const struct pop3_command *cmd)
{
    if (!args_between(p, cmd, 0, 1))
        return;
    if (cmd->argc == 1) {
        size_t idx;
        const struct pop3_msg *m = get_msg(p, &cmd->args[0], &idx);
        if (m)
            conn_printf(out(p), "+OK %zu %" PRIu64 "\r\n", idx + 1, m->octets);
        return;
    }
    conn_printf(out(p), "+OK %zu messages:\r\n", p->nmsgs - p->ndeleted);
    start_listing(p, false);
}

static void cmd_uidl(struct pop3 *p, const struct pop3_command *cmd)
{
    if (!args_between(p, cmd, 0, 1))
        return;
    if (cmd->argc == 1) {
        size_t idx;
        const struct pop3_msg *m = get_msg(p, &cmd->args[0], &idx);
        if (m)
            conn_printf(out(p), "+OK %zu %" PRIu32 ".%" PRIu32 "\r\n", idx + 1, p->uidvalidity,
                        m->uid);
        return;
    }
    reply(p, "+OK");
    start_listing(p, true);
}

static void cmd_dele(struct pop3 *p, const struct pop3_command *cmd)
{
    if (!args_between(p, cmd, 1, 1))
        return;
    size_t idx;
    struct pop3_msg *m = get_msg(p, &cmd->args[0], &idx);
    if (!m)
        return;
    m->deleted = true;
    p->ndeleted++;
    p->deleted_size += m->octets;
    reply(p, "+OK Marked to be deleted.");
}

static void cmd_rset(struct pop3 *p, const struct pop3_command *cmd)
{
    if (!args_between(p, cmd, 0, 0))
        return;
    for (size_t i = 0; i < p->nmsgs; i++)
        p->msgs[i].deleted = false;
    p->ndeleted = 0;
    p->deleted_size = 0;
    reply(p, "+OK");
}

/* ---- RETR / TOP streaming ---- */

static void send_ack(struct pop3 *p)
{
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__StreamAck ack = PETREL__STREAM_ACK__INIT;
    req.op_case = PETREL__REQUEST__OP_ACK;
    req.ack = &ack;
    rpc_follow(p->st.call, &req);
}

/* Writes a piece of the message as POP3 multi-line data. Returns true once
 * TOP has sent everything it should. */
static bool emit(struct pop3 *p, const uint8_t *d, size_t n)
{
    struct pop3_stream *st = &p->st;
    struct conn *c = out(p);
    size_t i = 0;
    while (i < n) {
        if (st->at_line_start) {
            if (st->top && st->in_body) {
                if (st->top_lines == 0)
                    return true;
                st->top_lines--;
            }
            if (d[i] == '.')
                conn_write(c, ".", 1);   /* dot-stuffing */
            st->at_line_start = false;
            st->line_len = 0;
        }
        const uint8_t *lf = memchr(d + i, '\n', n - i);
        size_t end = lf ? (size_t)(lf - d) : n;
        if (end > i) {
            conn_write(c, d + i, end - i);
            st->prev_cr = d[end - 1] == '\r';
            st->line_len += end - i;
        }
        if (!lf)
            break;
        /* Bare LF becomes CRLF; a CRLF split across chunks stays one. */
        if (st->prev_cr)
            conn_write(c, "\n", 1);
        else
            conn_write(c, "\r\n", 2);
        if (!st->in_body && st->line_len == (st->prev_cr ? 1u : 0u))
            st->in_body = true;   /* the blank line ending the header */
        st->prev_cr = false;
        st->at_line_start = true;
        i = end + 1;
    }
    return st->top && st->in_body && st->at_line_start && st->top_lines == 0;
}

static void stream_finish(struct pop3 *p)
{
    struct pop3_stream *st = &p->st;
    struct conn *c = out(p);
    if (!st->at_line_start)
        conn_puts(c, st->prev_cr ? "\n" : "\r\n");
    conn_puts(c, ".\r\n");
    if (!st->top)
        p->msgs[st->idx].retrieved = true;
    *st = (struct pop3_stream){ 0 };
    command_done(p);
}

static void body_cb(const Petrel__Response *resp, void *ctx)
{
    struct pop3 *p = ctx;
    struct pop3_stream *st = &p->st;
    if (!resp->more)
        st->call = NULL;   /* the call is over; its handle is gone */
    if (gone(p))
        return;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_CHUNK) {
        bool started = st->started;
        if (st->call)
            rpc_cancel(st->call);
        uint32_t uid = p->msgs[st->idx].uid;
        *st = (struct pop3_stream){ 0 };
        if (started) {
            /* Part of the message is out: no way to say -ERR now. Ending the
             * connection without the terminating dot tells the client the
             * answer is incomplete. */
            log_warn("\"pop3 message stream failed\" session=%s uid=%" PRIu32 " status=%d text=\"%s\"",
                     p->s.id, uid, (int)resp->status, resp->text);
            session_end(&p->s, "message stream failed");
            p->busy = false;
            metric_result(p, MR_NO);
            metric_end(p);
            return;
        }
        if (resp->status == PETREL__STATUS__NONEXISTENT) {
            log_info("\"pop3 message expunged by another session\" session=%s uid=%" PRIu32, p->s.id, uid);
            reply(p, "-ERR Message was deleted by another session.");
        } else {
            char line[256];
            log_warn("\"pop3 cannot read message\" session=%s uid=%" PRIu32 " status=%d text=\"%s\"",
                     p->s.id, uid, (int)resp->status, resp->text);
            tempfail_line(line, sizeof line, resp, "Cannot read the message.");
            reply(p, line);
        }
        command_done(p);
        return;
    }
    session_touch(&p->s);
    if (!st->started) {
        st->started = true;
        if (st->top)
            reply(p, "+OK");
        else
            conn_printf(out(p), "+OK %" PRIu64 " octets\r\n", p->msgs[st->idx].octets);
    }
    bool top_done = emit(p, resp->chunk->data.data, resp->chunk->data.len);
    if (top_done || !resp->more) {
        if (st->call) {
            rpc_cancel(st->call);
            st->call = NULL;
        }
        stream_finish(p);
        return;
    }
    struct conn *c = out(p);
    if (buf_len(&c->out) < c->low_water)
        send_ack(p);
    else
        st->pending_acks++;   /* sent from on_drain */
}

static void start_stream(struct pop3 *p, size_t idx, bool top, uint32_t lines)
{
    p->st = (struct pop3_stream){ .idx = idx, .top = top, .top_lines = lines,
                                  .at_line_start = true };
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__BodyReq br = PETREL__BODY_REQ__INIT;
    br.mailbox_id = p->mailbox_id;
    br.uid = p->msgs[idx].uid;
    br.offset = 0;
    br.length = p->msgs[idx].size;
    session_request(&p->s, &req);
    req.op_case = PETREL__REQUEST__OP_BODY;
    req.body = &br;
    p->busy = true;
    p->st.call = rpc_call(&req, RPC_RETRYABLE, body_cb, p, &p->s.calls);
}

static void cmd_retr(struct pop3 *p, const struct pop3_command *cmd)
{
    if (!args_between(p, cmd, 1, 1))
        return;
    size_t idx;
    if (get_msg(p, &cmd->args[0], &idx))
        start_stream(p, idx, false, 0);
}

static void cmd_top(struct pop3 *p, const struct pop3_command *cmd)
{
    if (!args_between(p, cmd, 2, 2))
        return;
    size_t idx;
    uint32_t lines;
    if (!pop3_parse_number(cmd->args[1].data, cmd->args[1].len, &lines)) {
        bad(p, "-ERR Invalid number of lines.");
        return;
    }
    if (get_msg(p, &cmd->args[0], &idx))
        start_stream(p, idx, true, lines);
}

/* ---- dispatch ---- */

static const struct pop3_cmd commands[] = {
    { "CAPA", ST_AUTHORIZATION | ST_TRANSACTION, cmd_capa },
    { "STLS", ST_AUTHORIZATION, cmd_stls },
    { "QUIT", ST_AUTHORIZATION | ST_TRANSACTION, cmd_quit },
    { "NOOP", ST_TRANSACTION, cmd_noop },
    { "USER", ST_AUTHORIZATION, cmd_user },
    { "PASS", ST_AUTHORIZATION, cmd_pass },
    { "AUTH", ST_AUTHORIZATION, cmd_auth },
    { "STAT", ST_TRANSACTION, cmd_stat },
    { "LIST", ST_TRANSACTION, cmd_list },
    { "UIDL", ST_TRANSACTION, cmd_uidl },
    { "RETR", ST_TRANSACTION, cmd_retr },
    { "TOP", ST_TRANSACTION, cmd_top },
    { "DELE", ST_TRANSACTION, cmd_dele },
    { "RSET", ST_TRANSACTION, cmd_rset },
};

static void handle_line(struct pop3 *p, const char *line, size_t len)
{
    if (p->sasl_wait) {
        sasl_line(p, line, len);
        return;
    }
    metric_begin(p, fm_command(NULL));
    struct pop3_limits limits = { .max_args = POP3_MAX_ARGS,
                                  .max_arg_len = (size_t)frontend->cfg->pop3_max_line };
    struct pop3_command cmd = { .args = p->args };
    const char *error;
    if (pop3_parse_command(line, len, &limits, &cmd, &error) < 0) {
        char msg[128];
        if (strcmp(error, "Invalid command") == 0 || strcmp(error, "Empty command") == 0)
            snprintf(msg, sizeof msg, "-ERR Unknown command.");
        else
            snprintf(msg, sizeof msg, "-ERR %s.", error);
        bad(p, msg);
        return;
    }
    p->m_cmd = fm_command(cmd.keyword);
    bool secret = strcmp(cmd.keyword, "PASS") == 0 || strcmp(cmd.keyword, "AUTH") == 0;
    log_debug("\"pop3 command\" session=%s cmd=%s args=%zu%s", p->s.id, cmd.keyword, cmd.argc,
              secret ? " (redacted)" : "");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, cmd.keyword) != 0)
            continue;
        if (!(commands[i].states & p->state)) {
            bad(p, p->state == ST_AUTHORIZATION ? "-ERR Not logged in." : "-ERR Already logged in.");
            return;
        }
        commands[i].fn(p, &cmd);
        return;
    }
    bad(p, "-ERR Unknown command.");
}

static void process_input(struct pop3 *p)
{
    struct conn *c = &p->s.conn;
    p->processing = true;
    while (!p->busy && !gone(p) && buf_len(&c->in) > 0) {
        size_t used = 0, len = 0;
        const char *line = NULL;
        enum line_read_result r =
            line_reader_feed(&p->lr, buf_head(&c->in), buf_len(&c->in), &used, &line, &len);
        buf_consume(&c->in, used);
        if (r == LINE_READ_MORE)
            break;
        if (r == LINE_READ_TOO_LONG) {
            sasl_reset(p);
            if (!p->m_open)
                metric_begin(p, fm_command(NULL));
            bad(p, "-ERR Line too long.");
            metric_end(p);
            continue;
        }
        handle_line(p, line, len);
        if (!p->busy && !p->sasl_wait)
            metric_end(p);
    }
    p->processing = false;
    if (p->busy && !gone(p))
        conn_pause(c);   /* input waits in conn.in until the command is done */
}

/* ---- protocol hooks ---- */

static struct session *pop3_create(void)
{
    struct pop3 *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->state = ST_AUTHORIZATION;
    return &p->s;
}

static void pop3_start(struct session *s)
{
    struct pop3 *p = (struct pop3 *)s;
    line_reader_init(&p->lr, (size_t)frontend->cfg->pop3_max_line);
    session_set_idle_timeout(s, (double)frontend->cfg->pop3_idle_timeout);
    reply(p, "+OK Petrel ready.");
}

static void pop3_on_read(struct session *s)
{
    struct pop3 *p = (struct pop3 *)s;
    if (!p->busy)
        process_input(p);
}

static void pop3_on_drain(struct session *s)
{
    struct pop3 *p = (struct pop3 *)s;
    if (gone(p))
        return;
    if (p->st.call && p->st.pending_acks > 0) {
        session_touch(s);
        while (p->st.pending_acks > 0) {
            p->st.pending_acks--;
            send_ack(p);
        }
    }
    if (p->ls.active)
        listing_continue(p);
}

static void pop3_on_timeout(struct session *s)
{
    /* RFC 1939 3: the autologout timer closes "without sending any response
     * to the client"; nothing is deleted. */
    log_info("\"pop3 idle timeout\" session=%s user=%s", s->id, s->user ? s->user : "-");
    session_end(s, "idle timeout");
}

/* Draining: goodbye now when no command runs, else after it. */
static void pop3_shutdown(struct session *s)
{
    struct pop3 *p = (struct pop3 *)s;
    if (p->busy) {
        s->bye_pending = true;
        return;
    }
    reply(p, "-ERR [SYS/TEMP] Server shutting down.");
    session_end(s, "server shutting down");
}

static void pop3_destroy(struct session *s)
{
    struct pop3 *p = (struct pop3 *)s;
    line_reader_free(&p->lr);
    if (p->login_user)
        explicit_bzero(p->login_user, strlen(p->login_user));
    free(p->login_user);
    free(p->msgs);
    free(p->quit_line);
    free(p);
}

const struct protocol pop3_protocol = {
    .name = "pop3",
    .create = pop3_create,
    .start = pop3_start,
    .on_read = pop3_on_read,
    .on_drain = pop3_on_drain,
    .on_timeout = pop3_on_timeout,
    .destroy = pop3_destroy,
    .shutdown = pop3_shutdown,
};
