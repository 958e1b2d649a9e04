/* FETCH and UID FETCH (RFC 9051 6.4.5): metadata comes from one MetaReq in
 * batches; each body section streams from the backend as the client reads,
 * so a 50 MB message never sits whole in this process. */
#include "imap/imap_session.h"

#include "imap/imap_condstore.h"
#include "imap/imap_fetch_binary.h"
#include "imap/imap_write.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum item_kind { I_UID, I_FLAGS, I_SIZE, I_INTERNALDATE, I_BODY, I_ENVELOPE, I_BODYSTRUCTURE,
                 I_BODY_SIMPLE, I_MODSEQ,
                 I_EMAILID, I_THREADID, I_SAVEDATE,   /* RFC 8474, RFC 8514 */
                 I_BINARY };                          /* RFC 3516 */
/* Top-level sections the frontend maps to byte ranges itself; anything else
 * (part numbers, MIME, HEADER.FIELDS) the backend resolves from its parse. */
enum section { SEC_ALL, SEC_HEADER, SEC_TEXT, SEC_PART };

/* Longest section spec accepted, e.g. a HEADER.FIELDS list. */
#define MAX_SECTION 400

struct fetch_item {
    enum item_kind kind;
    enum section section;
    bool peek;
    bool partial;
    uint64_t p_off, p_len;
    char spec[MAX_SECTION];    /* SEC_PART: the section without its field list */
    char fields[MAX_SECTION];  /* SEC_PART: HEADER.FIELDS names, space-separated */
    char label[2 * MAX_SECTION + 40];   /* how the response names it, e.g. "BODY[HEADER]" */
    struct fetch_binary bin;   /* I_BINARY */
};

struct msg {
    uint32_t uid, flags;
    char **keywords;
    size_t nkw;
    int64_t internaldate;
    int32_t tz;
    uint64_t size, header_size;
    uint64_t modseq;
    char *envelope, *bodystructure, *body;   /* owned; NULL unless asked for */
    char *emailid, *threadid;                /* owned; NULL unless asked for; threadid NULL: NIL */
    int64_t savedate;                        /* 0: NIL */
    uint8_t *inline_body;      /* owned: the whole message, when it came with the metadata */
    bool inlined;
};

struct fetch_state {
    int nitems;
    bool set_seen;
    bool want_mime;
    bool want_objectid;        /* EMAILID, THREADID or SAVEDATE */
    bool want_inline;          /* a BODY[], HEADER or TEXT item: ask for small bodies inline */
    struct msg *msgs;
    size_t nmsgs, cap;
    bool meta_done;
    size_t cur;                /* message being written */
    int item;                  /* next item of it; -1: line not begun */
    struct rpc_call *meta;     /* MetaReq in flight (no final Response yet) */
    struct rpc_call *stream;   /* body stream in flight */
    /* A streamed item whose response is not begun: BINARY, or a BODY part
     * the backend finds. Its name waits for the first chunk, so that a
     * failure before it can still close the line and answer NO. */
    const struct fetch_item *head_item;
    bool head_sep;             /* it is not the line's first item */
    bool stream_binary;        /* the stream is a BINARY item's: literal8, NULs stay */
    uint64_t stream_left;      /* bytes the literal still owes */
    bool stream_sized;         /* the literal's size has been written */
    bool ack_pending;          /* ack once the client has read enough */
    bool failed;
    /* RFC 7162 modifiers: (CHANGEDSINCE n [VANISHED]). */
    uint64_t changedsince;
    bool vanished;
    Petrel__UidRanges ranges;  /* VANISHED: the messages, kept for after it */
    struct imap_seqset vset;   /* VANISHED: the UID set as the client sent it */
    struct imap_changes_call *vcall;
    int max_items;             /* room in items[] for the client's own */
    /* Last, sized per command (cmd_fetch): ~2 KB an item, left unzeroed
     * (each item is set when added); clearing a fixed array of them took a
     * tenth of the frontend's CPU per FETCH. */
    struct fetch_item items[];   /* max_items + UID, FLAGS, MODSEQ added */
};
/* Items the frontend may add to the client's: UID, FLAGS and MODSEQ. */
#define ADDED_ITEMS 3

static void fetch_state_free(void *p)
{
    struct fetch_state *st = p;
    for (size_t i = 0; i < st->nmsgs; i++) {
        imap_free_keywords(st->msgs[i].keywords, st->msgs[i].nkw);
        free(st->msgs[i].envelope);
        free(st->msgs[i].bodystructure);
        free(st->msgs[i].body);
        free(st->msgs[i].emailid);
        free(st->msgs[i].threadid);
        free(st->msgs[i].inline_body);
    }
    free(st->msgs);
    imap_ranges_free(&st->ranges);
    imap_seqset_free(&st->vset);
    imap_changes_call_free(st->vcall);
    free(st);
}

/* ---- parsing the item list ---- */

static int parse_partial(const char *p, const char *end, struct fetch_item *it)
{
    if (p == end)
        return 0;
    unsigned long long off, len;
    int used = 0;
    if (*p != '<' || end[-1] != '>' || sscanf(p, "<%llu.%llu>%n", &off, &len, &used) != 2 ||
        p + used != end || len == 0)
        return -1;
    it->partial = true;
    it->p_off = off;
    it->p_len = len;
    return 0;
}

/* Splits "1.2.HEADER.FIELDS (From To)" into the spec and the field names. */
static int split_fields(const char *sec, size_t sl, struct fetch_item *it)
{
    const char *paren = memchr(sec, '(', sl);
    size_t spec_len = paren ? (size_t)(paren - sec) : sl;
    while (spec_len && sec[spec_len - 1] == ' ')
        spec_len--;
    if (spec_len >= sizeof it->spec)
        return -1;
    for (size_t i = 0; i < spec_len; i++)
        it->spec[i] = (char)toupper((unsigned char)sec[i]);
    it->spec[spec_len] = '\0';
    bool wants_fields = strstr(it->spec, "HEADER.FIELDS") != NULL;
    if (!paren)
        return wants_fields ? -1 : 0;
    if (!wants_fields || sec[sl - 1] != ')')
        return -1;
    size_t n = 0;
    for (const char *p = paren + 1; p < sec + sl - 1; p++) {
        if (*p == '"' || *p == '\\')
            continue;   /* quoted field names: the quotes are not part of them */
        if (n + 1 >= sizeof it->fields || (unsigned char)*p < ' ' || (unsigned char)*p > '~')
            return -1;
        it->fields[n++] = (char)toupper((unsigned char)*p);
    }
    it->fields[n] = '\0';
    return n ? 0 : -1;
}

static int parse_body_item(const char *s, size_t n, struct fetch_item *it)
{
    const char *end = s + n;
    size_t pre;
    if (n > 5 && strncasecmp(s, "BODY[", 5) == 0)
        pre = 5;
    else if (n > 10 && strncasecmp(s, "BODY.PEEK[", 10) == 0) {
        pre = 10;
        it->peek = true;
    } else
        return -1;
    const char *sec = s + pre, *close = memrchr(sec, ']', (size_t)(end - sec));
    if (!close)
        return -1;
    size_t sl = (size_t)(close - sec);
    it->kind = I_BODY;
    if (sl == 0)
        it->section = SEC_ALL;
    else if (sl == 6 && strncasecmp(sec, "HEADER", 6) == 0)
        it->section = SEC_HEADER;
    else if (sl == 4 && strncasecmp(sec, "TEXT", 4) == 0)
        it->section = SEC_TEXT;
    else {
        it->section = SEC_PART;
        if (split_fields(sec, sl, it) < 0)
            return -1;
    }
    if (parse_partial(close + 1, end, it) < 0)
        return -1;
    char label[sizeof it->label];
    if (it->section == SEC_PART && it->fields[0])
        snprintf(label, sizeof label, "BODY[%s (%s)]", it->spec, it->fields);
    else if (it->section == SEC_PART)
        snprintf(label, sizeof label, "BODY[%s]", it->spec);
    else
        snprintf(label, sizeof label, "BODY[%s]",
                 it->section == SEC_HEADER ? "HEADER" : it->section == SEC_TEXT ? "TEXT" : "");
    if (it->partial)
        snprintf(label + strlen(label), sizeof label - strlen(label), "<%llu>",
                 (unsigned long long)it->p_off);
    memcpy(it->label, label, sizeof label);
    return 0;
}

static int add_simple(struct fetch_state *st, const char *s, size_t n)
{
    static const struct { const char *name; enum item_kind kind; enum section sec; bool peek; } simple[] = {
        { "UID", I_UID, 0, 0 }, { "FLAGS", I_FLAGS, 0, 0 }, { "RFC822.SIZE", I_SIZE, 0, 0 },
        { "INTERNALDATE", I_INTERNALDATE, 0, 0 }, { "RFC822", I_BODY, SEC_ALL, false },
        { "RFC822.HEADER", I_BODY, SEC_HEADER, true }, { "RFC822.TEXT", I_BODY, SEC_TEXT, false },
        { "ENVELOPE", I_ENVELOPE, 0, 0 }, { "BODYSTRUCTURE", I_BODYSTRUCTURE, 0, 0 },
        { "BODY", I_BODY_SIMPLE, 0, 0 }, { "MODSEQ", I_MODSEQ, 0, 0 },
        { "EMAILID", I_EMAILID, 0, 0 }, { "THREADID", I_THREADID, 0, 0 },
        { "SAVEDATE", I_SAVEDATE, 0, 0 },
    };
    if (st->nitems >= st->max_items)
        return -1;
    struct fetch_item *it = &st->items[st->nitems];
    memset(it, 0, sizeof *it);
    /* The macros (RFC 9051 6.4.5). */
    if (n == 4 && strncasecmp(s, "FAST", 4) == 0)
        return add_simple(st, "FLAGS", 5) | add_simple(st, "INTERNALDATE", 12) |
               add_simple(st, "RFC822.SIZE", 11);
    if (n == 3 && strncasecmp(s, "ALL", 3) == 0)
        return add_simple(st, "FAST", 4) | add_simple(st, "ENVELOPE", 8);
    if (n == 4 && strncasecmp(s, "FULL", 4) == 0)
        return add_simple(st, "ALL", 3) | add_simple(st, "BODY", 4);
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (strlen(simple[i].name) == n && strncasecmp(simple[i].name, s, n) == 0) {
            it->kind = simple[i].kind;
            it->section = simple[i].sec;
            it->peek = simple[i].peek;
            snprintf(it->label, sizeof it->label, "%s", simple[i].name);
            st->nitems++;
            return 0;
        }
    int bin = fetch_binary_parse(s, n, &it->bin);
    if (bin < 0 || (bin == 0 && parse_body_item(s, n, it) < 0))
        return -1;
    if (bin > 0) {
        it->kind = I_BINARY;
        it->peek = it->bin.peek;
    }
    st->nitems++;
    return 0;
}

/* How many items the list asks for, the macros counted as what they stand
 * for, so the state can be sized (and the limit checked) before parsing. */
static size_t items_asked(const struct imap_arg *arg)
{
    const struct imap_arg *list = arg->type == IMAP_ARG_LIST ? arg->list : arg;
    size_t n = arg->type == IMAP_ARG_LIST ? arg->count : 1, total = 0;
    for (size_t i = 0; i < n; i++)
        total += imap_arg_atom_is(&list[i], "FAST") ? 3
               : imap_arg_atom_is(&list[i], "ALL")  ? 4
               : imap_arg_atom_is(&list[i], "FULL") ? 5
                                                    : 1;
    return total;
}

static int parse_items(struct fetch_state *st, const struct imap_arg *arg)
{
    const struct imap_arg *list = arg;
    size_t n = 1;
    if (arg->type == IMAP_ARG_LIST) {
        list = arg->list;
        n = arg->count;
        if (n == 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (list[i].type != IMAP_ARG_ATOM || add_simple(st, list[i].data, list[i].len) < 0)
            return -1;
    return 0;
}

/* ---- writing responses ---- */

static void write_internaldate(struct buf *out, int64_t t, int32_t tz)
{
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t local = (time_t)(t + (int64_t)tz * 60);
    struct tm tm;
    gmtime_r(&local, &tm);
    int a = tz < 0 ? -tz : tz;
    buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"", tm.tm_mday, months[tm.tm_mon],
               tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, tz < 0 ? '-' : '+', a / 60, a % 60);
}

static void body_range(const struct fetch_item *it, const struct msg *m, uint64_t *off, uint64_t *len)
{
    uint64_t start = 0, size = m->size;
    if (it->section == SEC_HEADER)
        size = m->header_size;
    else if (it->section == SEC_TEXT) {
        start = m->header_size;
        size = m->size - m->header_size;
    }
    if (it->partial) {
        uint64_t o = it->p_off < size ? it->p_off : size;
        start += o;
        size = size - o < it->p_len ? size - o : it->p_len;
    }
    *off = start;
    *len = size;
}

static void pump(struct imap_session *is);
static void item_failed(struct imap_session *is, const Petrel__Response *resp);

static void send_ack(struct imap_session *is)
{
    struct fetch_state *st = is->cmd_state;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__StreamAck ack = PETREL__STREAM_ACK__INIT;
    req.op_case = PETREL__REQUEST__OP_ACK;
    req.ack = &ack;
    st->ack_pending = false;
    rpc_follow(st->stream, &req);
}

static void on_drain(struct imap_session *is)
{
    struct fetch_state *st = is->cmd_state;
    if (st && st->ack_pending && st->stream)
        send_ack(is);
}

static void body_cb(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct fetch_state *st = is->cmd_state;
    if (st->head_item && resp->status != PETREL__STATUS__OK) {
        item_failed(is, resp);
        return;
    }
    if (st->head_item && resp->result_case == PETREL__RESPONSE__RESULT_CHUNK) {
        /* The first chunk tells the size (and for BINARY, literal8 or not). */
        const struct fetch_item *it = st->head_item;
        struct buf *out = imap_out(is);
        st->head_item = NULL;
        st->stream_sized = true;
        if (st->head_sep)
            buf_puts(out, " ");
        if (it->kind == I_BINARY) {
            fetch_binary_write_head(out, &it->bin, resp->chunk);
            st->stream_left = it->bin.size_only ? 0 : resp->chunk->total;
        } else if (resp->chunk->nil) {
            buf_printf(out, "%s NIL", it->label);
            st->stream = NULL;
            pump(is);
            return;
        } else {
            st->stream_left = resp->chunk->total;
            buf_printf(out, "%s {%llu}\r\n", it->label, (unsigned long long)st->stream_left);
        }
    }
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_CHUNK ||
        resp->chunk->data.len > st->stream_left) {
        /* The literal's length is already promised: the only honest way out
         * is to end the connection. */
        st->stream = NULL;
        conn_puts(&is->s.conn, "\r\n* BYE Message vanished while being fetched.\r\n");
        session_end(&is->s, "fetch stream failed");
        return;
    }
    const char *bytes = (const char *)resp->chunk->data.data;
    char *fixed = NULL;   /* NUL cannot go into a literal: imap_write.h */
    if (!st->stream_binary && resp->chunk->data.len && memchr(bytes, '\0', resp->chunk->data.len)) {
        fixed = malloc(resp->chunk->data.len);
        memcpy(fixed, bytes, resp->chunk->data.len);
        imap_literal_nul_to_0x80(fixed, resp->chunk->data.len);
        bytes = fixed;
    }
    conn_write(&is->s.conn, bytes, resp->chunk->data.len);
    free(fixed);
    st->stream_left -= resp->chunk->data.len;
    if (!resp->more) {
        st->stream = NULL;
        if (st->stream_left) {
            conn_puts(&is->s.conn, "\r\n* BYE Message changed while being fetched.\r\n");
            session_end(&is->s, "fetch stream short");
            return;
        }
        pump(is);
        return;
    }
    if (buf_len(&is->s.conn.out) < is->s.conn.low_water)
        send_ack(is);
    else
        st->ack_pending = true;
}

/* Sends a body or binary item's BodyReq; its stream answers in body_cb. */
static void send_body_req(struct imap_session *is, struct fetch_state *st, Petrel__BodyReq *br)
{
    Petrel__Request req = PETREL__REQUEST__INIT;
    req.op_case = PETREL__REQUEST__OP_BODY;
    req.body = br;
    session_request(&is->s, &req);
    st->item++;
    imap_flush(is);
    st->stream = rpc_call(&req, RPC_RETRYABLE, body_cb, is, &is->s.calls);
}

/* Starts streaming a body item; false when nothing needs streaming. */
static bool start_body(struct imap_session *is, struct fetch_state *st,
                       const struct fetch_item *it, const struct msg *m)
{
    struct buf *out = imap_out(is);
    Petrel__BodyReq br = PETREL__BODY_REQ__INIT;
    br.mailbox_id = is->sel.mailbox_id;
    br.uid = m->uid;
    st->stream_binary = false;
    char *fields[MAX_SECTION / 2];
    char fieldbuf[MAX_SECTION];
    if (it->section == SEC_PART) {
        /* The backend finds the part; its name and size wait for the data. */
        st->head_item = it;
        st->head_sep = st->item > 0;
        br.section = (char *)it->spec;
        br.partial = it->partial;
        br.offset = it->p_off;
        br.length = it->p_len;
        snprintf(fieldbuf, sizeof fieldbuf, "%s", it->fields);
        char *save = NULL;
        for (char *f = strtok_r(fieldbuf, " ", &save); f && br.n_fields < MAX_SECTION / 2;
             f = strtok_r(NULL, " ", &save))
            fields[br.n_fields++] = f;
        br.fields = fields;
        st->stream_sized = false;
        st->stream_left = 0;
    } else {
        uint64_t off, len;
        body_range(it, m, &off, &len);
        buf_printf(out, "%s {%llu}\r\n", it->label, (unsigned long long)len);
        if (m->inlined) {   /* came with the metadata: no stream needed */
            buf_append(out, m->inline_body + off, (size_t)len);
            return false;
        }
        if (len == 0)
            return false;
        br.offset = off;
        br.length = len;
        st->stream_sized = true;
        st->stream_left = len;
    }
    send_body_req(is, st, &br);
    return true;
}

/* Starts a BINARY item's stream. Unlike BODY, nothing of it is written yet:
 * the first Chunk tells the size and whether it is a literal8, and a
 * failure (UNKNOWN-CTE) must come before its name (body_cb). */
static void start_binary(struct imap_session *is, struct fetch_state *st,
                         const struct fetch_item *it, const struct msg *m)
{
    Petrel__BodyReq br = PETREL__BODY_REQ__INIT;
    br.mailbox_id = is->sel.mailbox_id;
    br.uid = m->uid;
    fetch_binary_request(&it->bin, &br);
    st->head_item = it;
    st->head_sep = st->item > 0;
    st->stream_binary = true;   /* NULs only in a literal8 (op_binary.c) */
    st->stream_sized = false;
    st->stream_left = 0;
    send_body_req(is, st, &br);
}

/* A BINARY item or BODY part failed before its response began
 * (UNKNOWN-CTE, a message expunged since the metadata came, a stored part
 * tree that does not decode): the FETCH line is closed and the command
 * fails, as Dovecot does ("* 5 FETCH (UID 5)" then "NO [UNKNOWN-CTE]"). */
static void item_failed(struct imap_session *is, const Petrel__Response *resp)
{
    struct fetch_state *st = is->cmd_state;
    struct buf *out = imap_out(is);
    st->head_item = NULL;
    if (st->head_sep)
        buf_puts(out, ")\r\n");
    else
        buf_printf(out, "UID %u)\r\n", st->msgs[st->cur].uid);
    st->stream = NULL;
    if (st->meta) {
        rpc_cancel(st->meta);
        st->meta = NULL;
    }
    imap_done_rpc(is, resp);
}

/* Writes the current message's items until one needs a body stream.
 * Returns true when the message is complete. */
static bool write_items(struct imap_session *is, struct fetch_state *st)
{
    struct buf *out = imap_out(is);
    const struct msg *m = &st->msgs[st->cur];
    if (st->item < 0) {
        buf_printf(out, "* %u FETCH (", imap_seq_of_uid(&is->sel, m->uid));
        st->item = 0;
    }
    for (; st->item < st->nitems; st->item++) {
        const struct fetch_item *it = &st->items[st->item];
        if (it->kind == I_BINARY) {   /* the separator too waits for the backend */
            start_binary(is, st, it, m);
            return false;
        }
        if (it->kind == I_BODY && it->section == SEC_PART) {   /* likewise */
            start_body(is, st, it, m);
            return false;
        }
        if (st->item > 0)
            buf_puts(out, " ");
        switch (it->kind) {
        case I_UID:
            buf_printf(out, "UID %u", m->uid);
            break;
        case I_FLAGS:
            buf_puts(out, "FLAGS ");
            imap_write_flags(out, m->flags, m->keywords, m->nkw);
            break;
        case I_SIZE:
            buf_printf(out, "RFC822.SIZE %llu", (unsigned long long)m->size);
            break;
        case I_INTERNALDATE:
            buf_puts(out, "INTERNALDATE ");
            write_internaldate(out, m->internaldate, m->tz);
            break;
        case I_ENVELOPE:
            buf_printf(out, "ENVELOPE (%s)", m->envelope ? m->envelope : "NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL");
            break;
        case I_BODYSTRUCTURE:
            buf_printf(out, "BODYSTRUCTURE %s", m->bodystructure ? m->bodystructure : "NIL");
            break;
        case I_BODY_SIMPLE:
            buf_printf(out, "BODY %s", m->body ? m->body : "NIL");
            break;
        case I_MODSEQ:
            buf_printf(out, "MODSEQ (%llu)", (unsigned long long)m->modseq);
            break;
        case I_EMAILID:
            /* Never NIL (RFC 8474 5.1): every backend that knows want_objectid
             * sends one, and backends are upgraded before frontends. */
            buf_printf(out, "EMAILID (%s)", m->emailid ? m->emailid : "");
            break;
        case I_THREADID:
            if (m->threadid)
                buf_printf(out, "THREADID (%s)", m->threadid);
            else
                buf_puts(out, "THREADID NIL");
            break;
        case I_SAVEDATE:
            /* Dovecot writes the save date in the server's zone; ours is UTC,
             * as there is no zone of the save to keep (unlike INTERNALDATE's). */
            buf_puts(out, "SAVEDATE ");
            if (m->savedate)
                write_internaldate(out, m->savedate, 0);
            else
                buf_puts(out, "NIL");
            break;
        case I_BODY:
            if (start_body(is, st, it, m))
                return false;
            break;
        case I_BINARY:   /* handled above */
            break;
        }
    }
    buf_puts(out, ")\r\n");
    return true;
}

static void pump(struct imap_session *is)
{
    struct fetch_state *st = is->cmd_state;
    while (!st->stream && st->cur < st->nmsgs) {
        if (st->item < 0 && !imap_seq_of_uid(&is->sel, st->msgs[st->cur].uid)) {
            st->cur++;   /* expunged from this session's view meanwhile */
            continue;
        }
        if (!write_items(is, st))
            return;
        st->cur++;
        st->item = -1;
    }
    imap_flush(is);
    if (!st->stream && st->meta_done && st->cur == st->nmsgs)
        imap_done(is, "OK", "Fetch completed.");
}

static void meta_cb(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct fetch_state *st = is->cmd_state;
    if (!resp->more || resp->status != PETREL__STATUS__OK)
        st->meta = NULL;
    if (resp->status != PETREL__STATUS__OK) {
        if (st->stream) {
            rpc_cancel(st->stream);
            st->stream = NULL;
        }
        imap_done_rpc(is, resp);
        return;
    }
    if (resp->result_case == PETREL__RESPONSE__RESULT_META) {
        const Petrel__MetaResp *mr = resp->meta;
        if (st->nmsgs + mr->n_messages > st->cap) {
            st->cap = (st->nmsgs + mr->n_messages) * 2;
            st->msgs = realloc(st->msgs, st->cap * sizeof *st->msgs);
        }
        for (size_t i = 0; i < mr->n_messages; i++) {
            const Petrel__MessageMeta *x = mr->messages[i];
            struct msg *m = &st->msgs[st->nmsgs++];
            m->uid = x->uid;
            m->flags = x->flags;
            m->nkw = x->n_keywords;
            m->keywords = x->n_keywords ? malloc(x->n_keywords * sizeof *m->keywords) : NULL;
            for (size_t k = 0; k < x->n_keywords; k++)
                m->keywords[k] = strdup(x->keywords[k]);
            m->internaldate = x->internaldate;
            m->tz = x->tz_offset;
            m->size = x->size;
            m->header_size = x->header_size > x->size ? x->size : x->header_size;
            m->modseq = x->modseq;
            m->envelope = x->envelope && *x->envelope ? strdup(x->envelope) : NULL;
            m->bodystructure = x->bodystructure && *x->bodystructure ? strdup(x->bodystructure) : NULL;
            m->body = x->body && *x->body ? strdup(x->body) : NULL;
            m->emailid = x->emailid && *x->emailid ? strdup(x->emailid) : NULL;
            m->threadid = x->threadid && *x->threadid ? strdup(x->threadid) : NULL;
            m->savedate = x->savedate;
            /* Only a body of exactly the stored size can stand for it. */
            m->inlined = x->inlined && x->inline_body.len == m->size;
            m->inline_body = m->inlined ? malloc(m->size + 1) : NULL;
            if (m->inlined && m->size) {   /* NUL cannot go into a literal, as in body_cb */
                memcpy(m->inline_body, x->inline_body.data, m->size);
                imap_literal_nul_to_0x80((char *)m->inline_body, m->size);
            }
        }
    }
    st->meta_done = !resp->more;
    /* Its own \Seen changes are not reported back by the next resync. */
    if (st->meta_done && resp->result_case == PETREL__RESPONSE__RESULT_META)
        imap_sel_own_change(is, resp->meta->seen_modseq);
    pump(is);
}

static void start_meta(struct imap_session *is)
{
    struct fetch_state *st = is->cmd_state;
    if (st->ranges.n_bounds == 0) {
        imap_done(is, "OK", "Fetch completed.");
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__MetaReq mr = PETREL__META_REQ__INIT;
    mr.mailbox_id = is->sel.mailbox_id;
    mr.uids = &st->ranges;
    mr.set_seen = st->set_seen;
    mr.want_mime = st->want_mime;
    mr.want_objectid = st->want_objectid;
    mr.changedsince = st->changedsince;
    /* A body of that size, and the batch it ends, must fit in one frame. */
    if (st->want_inline && !st->set_seen && !st->changedsince)
        mr.inline_max = (uint64_t)(frontend->cfg->imap_fetch_inline < frontend->cfg->rpc_max_frame / 4
                                       ? frontend->cfg->imap_fetch_inline
                                       : frontend->cfg->rpc_max_frame / 4);
    req.op_case = PETREL__REQUEST__OP_META;
    req.meta = &mr;
    session_request(&is->s, &req);
    st->meta = rpc_call(&req, st->set_seen ? 0 : RPC_RETRYABLE, meta_cb, is, &is->s.calls);
    imap_ranges_free(&st->ranges);
}

/* UID FETCH (CHANGEDSINCE n VANISHED): the UIDs of the set expunged since n
 * come first as VANISHED (EARLIER) (RFC 7162 3.2.6), then the FETCH lines. */
static void vanished_done(struct imap_session *is, const Petrel__Response *failed,
                          struct imap_changes *ch, void *arg)
{
    struct fetch_state *st = arg;
    if (failed) {
        imap_done_rpc(is, failed);
        return;
    }
    const struct imap_selected *sel = &is->sel;
    imap_write_vanished_earlier(is, ch, &st->vset, sel->count ? sel->uids[sel->count - 1] : 0);
    start_meta(is);
}

/* The RFC 7162 FETCH modifiers; false (BAD sent) when invalid. */
static bool parse_modifiers(struct imap_session *is, struct fetch_state *st,
                            const struct imap_arg *list, bool *changedsince_r)
{
    *changedsince_r = false;
    if (list->type != IMAP_ARG_LIST || list->count == 0)
        goto bad;
    for (size_t i = 0; i < list->count; i++) {
        const struct imap_arg *a = &list->list[i];
        if (imap_arg_atom_is(a, "CHANGEDSINCE") && !*changedsince_r && i + 1 < list->count &&
            imap_parse_modseq(&list->list[i + 1], true, &st->changedsince)) {
            *changedsince_r = true;
            i++;
        } else if (imap_arg_atom_is(a, "VANISHED") && !st->vanished) {
            st->vanished = true;
        } else {
            goto bad;
        }
    }
    /* VANISHED: UID FETCH only, with CHANGEDSINCE, once QRESYNC is on. */
    if (st->vanished && (!is->uid_cmd || !*changedsince_r || !is->qresync)) {
        imap_done(is, "BAD", "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC.");
        return false;
    }
    return true;
bad:
    imap_done(is, "BAD", "Error in IMAP command FETCH: invalid modifier.");
    return false;
}

void cmd_fetch(struct imap_session *is, const struct imap_command *cmd)
{
    if ((cmd->arg_count != 2 && cmd->arg_count != 3) || cmd->args[0].type != IMAP_ARG_ATOM) {
        imap_done(is, "BAD", "FETCH expects a message set and items.");
        return;
    }
    /* RFC 5530 LIMIT: a valid request over what this server takes. */
    size_t asked = items_asked(&cmd->args[1]);
    if (asked > (size_t)frontend->cfg->imap_max_fetch_items) {
        imap_done(is, "NO", "[LIMIT] Too many FETCH items (at most %ld).",
                  frontend->cfg->imap_max_fetch_items);
        return;
    }
    /* One allocation per command, as large as this FETCH needs. */
    struct fetch_state *st = malloc(offsetof(struct fetch_state, items) +
                                    (asked + ADDED_ITEMS) * sizeof st->items[0]);
    if (!st)
        abort();
    memset(st, 0, offsetof(struct fetch_state, items));
    st->max_items = (int)asked;
    st->item = -1;
    is->cmd_state = st;
    is->cmd_free = fetch_state_free;
    is->cmd_drain = on_drain;
    if (parse_items(st, &cmd->args[1]) < 0) {
        imap_done(is, "BAD", "Error in IMAP command FETCH: invalid or unsupported fetch item.");
        return;
    }
    bool changedsince = false;
    if (cmd->arg_count == 3 && !parse_modifiers(is, st, &cmd->args[2], &changedsince))
        return;
    /* UID FETCH always reports the UID (RFC 9051 6.4.9). */
    bool has_uid = false;
    for (int i = 0; i < st->nitems; i++) {
        has_uid |= st->items[i].kind == I_UID;
        st->set_seen |= (st->items[i].kind == I_BODY || st->items[i].kind == I_BINARY) && !st->items[i].peek;
        st->want_inline |= st->items[i].kind == I_BODY && st->items[i].section != SEC_PART;
        st->want_mime |= st->items[i].kind == I_ENVELOPE || st->items[i].kind == I_BODYSTRUCTURE ||
                         st->items[i].kind == I_BODY_SIMPLE;
        st->want_objectid |= st->items[i].kind == I_EMAILID || st->items[i].kind == I_THREADID ||
                             st->items[i].kind == I_SAVEDATE;
    }
    if (is->uid_cmd && !has_uid) {
        memmove(&st->items[1], &st->items[0], (size_t)st->nitems * sizeof st->items[0]);
        memset(&st->items[0], 0, sizeof st->items[0]);
        st->items[0].kind = I_UID;
        st->nitems++;
    }
    if (is->sel.read_only)
        st->set_seen = false;
    /* Setting \Seen implicitly reports the new flags (RFC 3501 6.4.5). */
    bool has_flags = false;
    for (int i = 0; i < st->nitems; i++)
        has_flags |= st->items[i].kind == I_FLAGS;
    if (st->set_seen && !has_flags) {
        memset(&st->items[st->nitems], 0, sizeof st->items[0]);
        st->items[st->nitems++].kind = I_FLAGS;
    }
    /* CONDSTORE (RFC 7162 3.1): MODSEQ and CHANGEDSINCE enable it; then
     * CHANGEDSINCE reports MODSEQ, and setting \Seen reports UID and MODSEQ. */
    bool has_modseq = false;
    has_uid = false;
    for (int i = 0; i < st->nitems; i++) {
        has_modseq |= st->items[i].kind == I_MODSEQ;
        has_uid |= st->items[i].kind == I_UID;
    }
    if (has_modseq || changedsince)
        imap_condstore_enable(is);
    if (is->condstore && st->set_seen && !has_uid) {
        memset(&st->items[st->nitems], 0, sizeof st->items[0]);
        st->items[st->nitems++].kind = I_UID;
    }
    if ((changedsince || (is->condstore && st->set_seen)) && !has_modseq) {
        memset(&st->items[st->nitems], 0, sizeof st->items[0]);
        st->items[st->nitems++].kind = I_MODSEQ;
    }
    const char *err;
    if (imap_resolve_set(is, cmd->args[0].data, cmd->args[0].len, is->uid_cmd, &st->ranges, &err) < 0) {
        imap_done_set_error(is, "FETCH", err);
        return;
    }
    if (st->vanished) {
        const struct imap_selected *sel = &is->sel;
        if (imap_seqset_parse(cmd->args[0].data, cmd->args[0].len, IMAP_SEQSET_UID,
                              sel->count ? sel->uids[sel->count - 1] : 0,
                              (size_t)frontend->cfg->imap_max_set_ranges, &st->vset, &err) < 0) {
            imap_done_set_error(is, "FETCH", err);
            return;
        }
        st->vcall = imap_changes_start(is, sel->mailbox_id, st->changedsince, vanished_done, st);
        return;
    }
    start_meta(is);
}
