#include "imap/imap_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Allocation failure aborts, as in common/buf.c: every size here is bounded by
 * a limit checked beforehand. */
static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "out of memory allocating %zu bytes\n", n);
        abort();
    }
    return q;
}

/* ---- Reader --------------------------------------------------------------- */

enum reader_state {
    RS_LINE,          /* storing a line */
    RS_SKIP_LINE,     /* discarding the rest of a rejected line */
    RS_SKIP_LITERAL,  /* discarding the data of a non-synchronizing literal */
    RS_LITERAL_WAIT,  /* LITERAL event returned, caller must resolve it */
    RS_ABSORB,        /* copying literal data into the buffer */
    RS_STREAM,        /* handing literal data out as chunks */
    RS_DONE,          /* event returned; the next feed starts a new command */
    RS_FATAL,
};

/* Recognises a literal announcement at the end of a line as the line goes
 * by, so a line being skipped (not stored) is still understood. */
enum tail_state { T_NONE, T_TILDE, T_OPEN, T_DIGITS, T_PLUS, T_CLOSE };

static void reset_line_state(struct imap_reader *r)
{
    r->cr = false;
    r->in_quote = false;
    r->escape = false;
    r->tail = T_NONE;
}

static void start_command(struct imap_reader *r)
{
    r->len = 0;
    r->line_start = 0;
    if (r->buf)
        r->buf[0] = '\0';
    r->command_start = true;
    r->quiet = false;
    r->literal_count = 0;
    r->literals_total = 0;
    r->error = IMAP_RERR_NONE;
    r->state = RS_LINE;
    reset_line_state(r);
}

void imap_reader_init(struct imap_reader *r, const struct imap_limits *limits)
{
    memset(r, 0, sizeof *r);
    r->limits = *limits;
    start_command(r);
}

void imap_reader_free(struct imap_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

void imap_reader_set_limits(struct imap_reader *r, const struct imap_limits *limits)
{
    r->limits = *limits;
}

/* Room for extra more bytes plus the terminating NUL. Callers have checked
 * extra against max_command, so this cannot grow without bound. */
static void reserve(struct imap_reader *r, size_t extra)
{
    if (r->cap - r->len > extra)
        return;
    size_t cap = r->cap ? r->cap : 64;
    while (cap - r->len <= extra)
        cap *= 2;
    r->buf = xrealloc(r->buf, cap);
    r->cap = cap;
}

static void append(struct imap_reader *r, const void *p, size_t n)
{
    reserve(r, n);
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    r->buf[r->len] = '\0';
    r->command_start = false;
}

static enum imap_read_result fatal(struct imap_reader *r, enum imap_read_error e)
{
    r->error = e;
    r->state = RS_FATAL;
    return IMAP_READ_ERROR;
}

/* Only the first problem of a line is reported. */
static void reject_line(struct imap_reader *r, enum imap_read_error e)
{
    if (r->state != RS_LINE)
        return;
    r->error = e;
    r->state = RS_SKIP_LINE;
}

static void track_digit(struct imap_reader *r, unsigned digit)
{
    if (r->tail_size > (UINT64_MAX - digit) / 10)
        r->tail_overflow = true;
    else
        r->tail_size = r->tail_size * 10 + digit;
    r->tail = T_DIGITS;
}

static void track(struct imap_reader *r, unsigned char c)
{
    if (r->in_quote) {
        if (r->escape)
            r->escape = false;
        else if (c == '\\')
            r->escape = true;
        else if (c == '"')
            r->in_quote = false;
        r->tail = T_NONE;
        return;
    }
    switch (c) {
    case '"':
        r->in_quote = true;
        r->tail = T_NONE;
        break;
    case '~':
        r->tail = T_TILDE;
        break;
    case '{':
        r->tail_binary = r->tail == T_TILDE;
        r->tail_nonsync = false;
        r->tail_overflow = false;
        r->tail_size = 0;
        r->tail = T_OPEN;
        break;
    case '+':
        r->tail = r->tail == T_DIGITS ? T_PLUS : T_NONE;
        break;
    case '}':
        r->tail_nonsync = r->tail == T_PLUS;
        r->tail = r->tail == T_DIGITS || r->tail == T_PLUS ? T_CLOSE : T_NONE;
        break;
    default:
        if (c >= '0' && c <= '9' && (r->tail == T_OPEN || r->tail == T_DIGITS))
            track_digit(r, c - '0');
        else
            r->tail = T_NONE;
    }
}

static enum imap_read_error literal_problem(const struct imap_reader *r, uint64_t size)
{
    const struct imap_limits *l = &r->limits;
    if (r->literal_count >= l->max_literal_count)
        return IMAP_RERR_TOO_MANY_LITERALS;
    if (size > l->max_literal || size > l->max_literals_total - r->literals_total)
        return IMAP_RERR_LITERAL_TOO_BIG;
    /* The literal costs its announcement's CRLF plus its data. */
    if (r->len + 2 > l->max_command || size > l->max_command - r->len - 2)
        return IMAP_RERR_COMMAND_TOO_BIG;
    return IMAP_RERR_NONE;
}

static enum imap_read_result announce_literal(struct imap_reader *r)
{
    if (r->tail_overflow)
        return fatal(r, IMAP_RERR_LITERAL_SIZE);
    if (r->tail_nonsync && r->tail_size > r->limits.max_nonsync_literal)
        return fatal(r, IMAP_RERR_NONSYNC_TOO_BIG);
    r->lit = (struct imap_literal){
        .size = r->tail_size,
        .nonsync = r->tail_nonsync,
        .binary = r->tail_binary,
        .fits = literal_problem(r, r->tail_size) == IMAP_RERR_NONE,
    };
    r->state = RS_LITERAL_WAIT;
    return IMAP_READ_LITERAL;
}

/* Data the client sends without waiting for us must be skipped to stay in
 * step; anything else it sends only after a "+" we will never send. */
static void skip_rest_of_command(struct imap_reader *r, uint64_t nonsync_size)
{
    r->quiet = true;
    r->lit_left = nonsync_size;
    r->state = RS_SKIP_LITERAL;
}

/* A rejected line ended: report it once, then skip whatever else of the
 * command the client sends unasked. */
static enum imap_read_result end_rejected_line(struct imap_reader *r, bool literal)
{
    bool report = !r->quiet;
    if (literal && r->tail_overflow)
        return fatal(r, IMAP_RERR_LITERAL_SIZE);
    if (literal && r->tail_nonsync) {
        if (r->tail_size > r->limits.max_nonsync_literal)
            return fatal(r, IMAP_RERR_NONSYNC_TOO_BIG);
        skip_rest_of_command(r, r->tail_size);
    } else if (report) {
        r->state = RS_DONE;
    } else {
        start_command(r);
    }
    return report ? IMAP_READ_ERROR : IMAP_READ_MORE;
}

static enum imap_read_result end_of_line(struct imap_reader *r)
{
    bool literal = r->tail == T_CLOSE && !r->in_quote;
    if (r->state == RS_SKIP_LINE)
        return end_rejected_line(r, literal);
    if (literal)
        return announce_literal(r);
    if (r->command_start) {
        /* Empty lines between commands are ignored, as some clients send
         * an extra CRLF after an APPEND. */
        reset_line_state(r);
        return IMAP_READ_MORE;
    }
    r->state = RS_DONE;
    return IMAP_READ_COMMAND;
}

static enum imap_read_result line_byte(struct imap_reader *r, unsigned char c)
{
    if (r->cr) {
        r->cr = false;
        if (c == '\n')
            return end_of_line(r);
        reject_line(r, IMAP_RERR_BARE_CR);
    }
    if (c == '\n')
        return end_of_line(r);
    if (c == '\r') {
        r->cr = true;
        return IMAP_READ_MORE;
    }
    track(r, c);
    if (r->state != RS_LINE)
        return IMAP_READ_MORE;
    if (c == '\0')
        reject_line(r, IMAP_RERR_NUL);
    else if (r->len - r->line_start >= r->limits.max_line)
        reject_line(r, IMAP_RERR_LINE_TOO_LONG);
    else if (r->len >= r->limits.max_command)
        reject_line(r, IMAP_RERR_COMMAND_TOO_BIG);
    else
        append(r, &c, 1);
    return IMAP_READ_MORE;
}

static void begin_continuation_line(struct imap_reader *r)
{
    r->line_start = r->len;
    r->state = RS_LINE;
    reset_line_state(r);
}

static size_t take(uint64_t *left, size_t avail)
{
    size_t n = *left < avail ? (size_t)*left : avail;
    *left -= n;
    return n;
}

static enum imap_read_result stream_chunk(struct imap_reader *r, const char *p, size_t avail,
                                          size_t *pos)
{
    if (avail == 0 && r->lit_left > 0)
        return IMAP_READ_MORE;
    size_t n = take(&r->lit_left, avail);
    r->chunk = p;
    r->chunk_len = n;
    r->chunk_last = r->lit_left == 0;
    *pos += n;
    if (r->chunk_last) {
        /* What follows the literal starts a fresh text: see the header. */
        r->len = 0;
        r->command_start = false;
        begin_continuation_line(r);
    }
    return IMAP_READ_LITERAL_DATA;
}

enum imap_read_result imap_reader_feed(struct imap_reader *r, const void *in, size_t len,
                                       size_t *used_r)
{
    const char *p = in ? in : "";
    size_t pos = 0;
    enum imap_read_result res = IMAP_READ_MORE;

    if (r->state == RS_DONE)
        start_command(r);
    while (res == IMAP_READ_MORE) {
        size_t avail = len - pos;
        switch ((enum reader_state)r->state) {
        case RS_LINE:
        case RS_SKIP_LINE:
            if (avail == 0)
                goto out;
            res = line_byte(r, (unsigned char)p[pos++]);
            break;
        case RS_ABSORB:
            if (r->lit_left == 0) {
                begin_continuation_line(r);
                break;
            }
            if (avail == 0)
                goto out;
            size_t n = take(&r->lit_left, avail);
            append(r, p + pos, n);
            pos += n;
            break;
        case RS_SKIP_LITERAL:
            if (r->lit_left == 0) {
                r->state = RS_SKIP_LINE;
                reset_line_state(r);
                break;
            }
            if (avail == 0)
                goto out;
            pos += take(&r->lit_left, avail);
            break;
        case RS_STREAM:
            res = stream_chunk(r, p + pos, avail, &pos);
            if (res == IMAP_READ_MORE)
                goto out;
            break;
        case RS_LITERAL_WAIT:
            res = fatal(r, IMAP_RERR_MISUSE);
            break;
        case RS_FATAL:
            res = IMAP_READ_ERROR;
            break;
        case RS_DONE:
            start_command(r);
            break;
        }
    }
out:
    *used_r = pos;
    return res;
}

const char *imap_reader_text(const struct imap_reader *r, size_t *len_r)
{
    *len_r = r->len;
    return r->buf ? r->buf : "";
}

const struct imap_literal *imap_reader_literal(const struct imap_reader *r)
{
    return &r->lit;
}

const char *imap_reader_chunk(const struct imap_reader *r, size_t *len_r, bool *last_r)
{
    *len_r = r->chunk_len;
    *last_r = r->chunk_last;
    return r->chunk;
}

enum imap_read_error imap_reader_error(const struct imap_reader *r)
{
    return r->error;
}

bool imap_read_error_is_fatal(enum imap_read_error e)
{
    return e == IMAP_RERR_LITERAL_SIZE || e == IMAP_RERR_NONSYNC_TOO_BIG ||
           e == IMAP_RERR_MISUSE;
}

const char *imap_read_error_reason(enum imap_read_error e)
{
    switch (e) {
    case IMAP_RERR_NONE: return "No error";
    case IMAP_RERR_LINE_TOO_LONG: return "Line too long";
    case IMAP_RERR_COMMAND_TOO_BIG: return "Command too long";
    case IMAP_RERR_NUL: return "NUL byte outside a literal";
    case IMAP_RERR_BARE_CR: return "CR without LF";
    case IMAP_RERR_LITERAL_TOO_BIG: return "Literal too big";
    case IMAP_RERR_TOO_MANY_LITERALS: return "Too many literals";
    case IMAP_RERR_LITERAL_SIZE: return "Invalid literal size";
    case IMAP_RERR_NONSYNC_TOO_BIG: return "Non-synchronizing literal too big";
    case IMAP_RERR_MISUSE: return "Internal error";
    }
    return "Unknown error";
}

enum imap_read_result imap_reader_accept_literal(struct imap_reader *r)
{
    if (r->state != RS_LITERAL_WAIT)
        return fatal(r, IMAP_RERR_MISUSE);
    enum imap_read_error problem = literal_problem(r, r->lit.size);
    if (problem != IMAP_RERR_NONE) {
        r->error = problem;
        if (r->lit.nonsync)
            skip_rest_of_command(r, r->lit.size);
        else
            r->state = RS_DONE;
        return IMAP_READ_ERROR;
    }
    append(r, "\r\n", 2);
    reserve(r, (size_t)r->lit.size);
    r->literal_count++;
    r->literals_total += r->lit.size;
    r->lit_left = r->lit.size;
    r->state = RS_ABSORB;
    return IMAP_READ_MORE;
}

enum imap_read_result imap_reader_reject_literal(struct imap_reader *r)
{
    if (r->state != RS_LITERAL_WAIT)
        return fatal(r, IMAP_RERR_MISUSE);
    if (r->lit.nonsync)
        skip_rest_of_command(r, r->lit.size);
    else
        r->state = RS_DONE;
    return IMAP_READ_MORE;
}

enum imap_read_result imap_reader_stream_literal(struct imap_reader *r)
{
    if (r->state != RS_LITERAL_WAIT)
        return fatal(r, IMAP_RERR_MISUSE);
    r->len = 0;
    if (r->buf)
        r->buf[0] = '\0';
    r->lit_left = r->lit.size;
    r->state = RS_STREAM;
    return IMAP_READ_MORE;
}

/* ---- Parser --------------------------------------------------------------- */

struct imap_arena_block {
    struct imap_arena_block *next;
    max_align_t data[];
};

static void *arena_alloc(struct imap_arena *a, size_t size)
{
    struct imap_arena_block *b = xrealloc(NULL, sizeof *b + size);
    b->next = a->head;
    a->head = b;
    return b->data;
}

static void arena_free(struct imap_arena *a)
{
    while (a->head) {
        struct imap_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

struct parser {
    const char *p, *end;
    unsigned flags;
    const struct imap_parse_limits *limits;
    struct imap_arena *arena;
    size_t nargs;
    bool pending;
    const char *error;
};

static int fail(struct parser *ps, const char *reason)
{
    ps->error = reason;
    return -1;
}

static bool skip_spaces(struct parser *ps)
{
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p == ' ')
        ps->p++;
    return ps->p != start;
}

static bool is_tag_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\+", c);
}

/* ATOM-CHAR plus the list wildcards and ']' that sequence sets, LIST
 * patterns and astrings put in atoms; '\' only as a flag's first byte. */
static bool is_atom_char(unsigned char c, bool first)
{
    if (c <= 0x20 || c >= 0x7f)
        return false;
    if (c == '\\')
        return first;
    return !strchr("(){\"", c);
}

static const char *atom_error(unsigned char c)
{
    switch (c) {
    case '"': return "Unexpected '\"'";
    case '{': return "Unexpected '{'";
    case '\\': return "Unexpected '\\'";
    case '\0': return "NUL in argument";
    }
    return "Invalid character in atom";
}

/* A section "[...]" inside an atom, kept as part of the atom. Nested
 * brackets and literals do not occur in section syntax. */
static int skip_brackets(struct parser *ps)
{
    ps->p++;
    while (ps->p < ps->end && *ps->p != ']') {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '[')
            return fail(ps, "Unexpected '['");
        if (c < 0x20 || c >= 0x7f)
            return fail(ps, "Invalid character in section");
        ps->p++;
    }
    if (ps->p == ps->end)
        return fail(ps, "Missing ']'");
    ps->p++;
    return 0;
}

static int parse_atom(struct parser *ps, struct imap_arg *arg)
{
    const char *start = ps->p;
    while (ps->p < ps->end) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == ' ' || c == '(' || c == ')')
            break;
        if (c == '[' && (ps->flags & IMAP_PARSE_BRACKETS)) {
            if (skip_brackets(ps) < 0)
                return -1;
            continue;
        }
        if (!is_atom_char(c, ps->p == start))
            return fail(ps, atom_error(c));
        ps->p++;
    }
    arg->data = start;
    arg->len = (size_t)(ps->p - start);
    arg->type = arg->len == 3 && strncasecmp(start, "NIL", 3) == 0 ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
    return 0;
}

static void decode_quoted(struct parser *ps, struct imap_arg *arg, const char *from, size_t out_len)
{
    char *out = arena_alloc(ps->arena, out_len + 1);
    size_t n = 0;
    for (const char *q = from; n < out_len; q++) {
        if (*q == '\\')
            q++;
        out[n++] = *q;
    }
    out[n] = '\0';
    arg->data = out;
    arg->len = out_len;
}

static int parse_quoted(struct parser *ps, struct imap_arg *arg)
{
    const char *start = ++ps->p;
    size_t out_len = 0;
    bool escaped = false;
    while (ps->p < ps->end && *ps->p != '"') {
        char c = *ps->p;
        if (c == '\\') {
            if (ps->end - ps->p < 2)
                return fail(ps, "Missing '\"'");
            if (ps->p[1] != '"' && ps->p[1] != '\\')
                return fail(ps, "Invalid escape in quoted string");
            escaped = true;
            ps->p++;
        } else if (c == '\0') {
            return fail(ps, "NUL in quoted string");
        } else if (c == '\r' || c == '\n') {
            return fail(ps, "Missing '\"'");
        }
        ps->p++;
        out_len++;
    }
    if (ps->p == ps->end)
        return fail(ps, "Missing '\"'");
    arg->type = IMAP_ARG_QUOTED;
    if (escaped) {
        decode_quoted(ps, arg, start, out_len);
    } else {
        arg->data = start;
        arg->len = out_len;
    }
    ps->p++;
    return 0;
}

static int parse_literal(struct parser *ps, struct imap_arg *arg)
{
    size_t size = 0, digits = 0;
    arg->type = IMAP_ARG_LITERAL;
    if (*ps->p == '~') {
        arg->literal8 = true;
        ps->p++;
    }
    ps->p++;
    for (; ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9'; ps->p++, digits++) {
        unsigned d = (unsigned)(*ps->p - '0');
        if (size > (SIZE_MAX - d) / 10)
            return fail(ps, "Invalid literal size");
        size = size * 10 + d;
    }
    if (digits == 0)
        return fail(ps, "Invalid literal size");
    if (ps->p < ps->end && *ps->p == '+')
        ps->p++;
    if (ps->p == ps->end || *ps->p != '}')
        return fail(ps, "Missing '}'");
    ps->p++;
    arg->len = size;
    if (ps->p == ps->end && (ps->flags & IMAP_PARSE_PREFIX)) {
        arg->pending = true;
        ps->pending = true;
        return 0;
    }
    if (ps->end - ps->p < 2 || ps->p[0] != '\r' || ps->p[1] != '\n')
        return fail(ps, "Missing CRLF after literal");
    ps->p += 2;
    if (size > (size_t)(ps->end - ps->p))
        return fail(ps, "Literal data missing");
    arg->data = ps->p;
    ps->p += size;
    return 0;
}

static int parse_items(struct parser *ps, size_t depth, bool in_list,
                       struct imap_arg **args_r, size_t *count_r);

static int parse_arg(struct parser *ps, size_t depth, struct imap_arg *arg)
{
    memset(arg, 0, sizeof *arg);
    if (++ps->nargs > ps->limits->max_args)
        return fail(ps, "Too many arguments");
    switch (*ps->p) {
    case '"':
        return parse_quoted(ps, arg);
    case '{':
        return parse_literal(ps, arg);
    case '~':
        if (ps->end - ps->p >= 2 && ps->p[1] == '{')
            return parse_literal(ps, arg);
        return parse_atom(ps, arg);
    case '(':
        if (depth >= ps->limits->max_depth)
            return fail(ps, "Too deeply nested lists");
        ps->p++;
        arg->type = IMAP_ARG_LIST;
        return parse_items(ps, depth + 1, true, &arg->list, &arg->count);
    }
    return parse_atom(ps, arg);
}

struct argvec {
    struct imap_arg *v;
    size_t n, cap;
};

static struct imap_arg *argvec_push(struct argvec *vec)
{
    if (vec->n == vec->cap) {
        vec->cap = vec->cap ? vec->cap * 2 : 8;
        vec->v = xrealloc(vec->v, vec->cap * sizeof *vec->v);
    }
    return &vec->v[vec->n++];
}

/* Items up to the closing ')' (in_list) or the end of input. The children
 * are gathered in a scratch vector and moved to the arena once complete, so
 * every list's children are one array. */
static int parse_items(struct parser *ps, size_t depth, bool in_list,
                       struct imap_arg **args_r, size_t *count_r)
{
    struct argvec vec = {0};
    bool need_space = false;
    int ret = 0;

    for (;;) {
        bool spaced = skip_spaces(ps);
        if (ps->p == ps->end) {
            if (in_list && !ps->pending)
                ret = fail(ps, "Missing ')'");
            break;
        }
        if (*ps->p == ')') {
            if (!in_list)
                ret = fail(ps, "Unexpected ')'");
            ps->p++;
            break;
        }
        if (need_space && !spaced) {
            ret = fail(ps, "Missing space between arguments");
            break;
        }
        if (parse_arg(ps, depth, argvec_push(&vec)) < 0) {
            ret = -1;
            break;
        }
        need_space = true;
    }
    *args_r = NULL;
    *count_r = 0;
    if (ret == 0 && vec.n > 0) {
        *args_r = arena_alloc(ps->arena, vec.n * sizeof *vec.v);
        memcpy(*args_r, vec.v, vec.n * sizeof *vec.v);
        *count_r = vec.n;
    }
    free(vec.v);
    return ret;
}

static bool is_name_char(unsigned char c)
{
    return is_atom_char(c, false) && !strchr("%*]", c);
}

static int parse_name(struct parser *ps, const char **name_r, size_t *len_r)
{
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p != ' ') {
        if (!is_name_char((unsigned char)*ps->p))
            return fail(ps, "Invalid command name");
        ps->p++;
    }
    *name_r = start;
    *len_r = (size_t)(ps->p - start);
    return 0;
}

static bool word_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static int parse_head(struct parser *ps, struct imap_command *cmd)
{
    if (!imap_find_tag(ps->p, (size_t)(ps->end - ps->p), ps->limits->max_tag,
                       &cmd->tag, &cmd->tag_len))
        return fail(ps, "Invalid tag");
    ps->p += cmd->tag_len;
    skip_spaces(ps);
    if (ps->p == ps->end)
        return fail(ps, "Missing command");
    if (parse_name(ps, &cmd->name, &cmd->name_len) < 0)
        return -1;
    if (word_is(cmd->name, cmd->name_len, "UID")) {
        cmd->uid = true;
        skip_spaces(ps);
        if (ps->p == ps->end)
            return fail(ps, "Missing command after UID");
        if (parse_name(ps, &cmd->name, &cmd->name_len) < 0)
            return -1;
    }
    if (word_is(cmd->name, cmd->name_len, "FETCH"))
        ps->flags |= IMAP_PARSE_BRACKETS;
    return 0;
}

static int finish(struct parser *ps, struct imap_command *cmd, int ret, const char **error_r)
{
    cmd->literal_pending = ret == 0 && ps->pending;
    if (ret < 0)
        *error_r = ps->error;
    return ret;
}

int imap_parse_command(const char *buf, size_t len, unsigned flags,
                       const struct imap_parse_limits *limits,
                       struct imap_command *cmd, const char **error_r)
{
    memset(cmd, 0, sizeof *cmd);
    struct parser ps = {
        .p = buf, .end = buf + len, .flags = flags, .limits = limits, .arena = &cmd->arena,
    };
    int ret = parse_head(&ps, cmd);
    if (ret == 0)
        ret = parse_items(&ps, 0, false, &cmd->args, &cmd->arg_count);
    return finish(&ps, cmd, ret, error_r);
}

int imap_parse_args(const char *buf, size_t len, unsigned flags,
                    const struct imap_parse_limits *limits,
                    struct imap_command *cmd, const char **error_r)
{
    memset(cmd, 0, sizeof *cmd);
    struct parser ps = {
        .p = buf, .end = buf + len, .flags = flags, .limits = limits, .arena = &cmd->arena,
    };
    int ret = parse_items(&ps, 0, false, &cmd->args, &cmd->arg_count);
    return finish(&ps, cmd, ret, error_r);
}

void imap_command_free(struct imap_command *cmd)
{
    arena_free(&cmd->arena);
    memset(cmd, 0, sizeof *cmd);
}

bool imap_find_tag(const char *text, size_t len, size_t max_tag,
                   const char **tag_r, size_t *tag_len_r)
{
    size_t n = 0;
    while (n < len && text[n] != ' ') {
        if (!is_tag_char((unsigned char)text[n]) || n == max_tag)
            return false;
        n++;
    }
    if (n == 0)
        return false;
    *tag_r = text;
    *tag_len_r = n;
    return true;
}

bool imap_arg_atom_is(const struct imap_arg *arg, const char *word)
{
    return (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
           word_is(arg->data, arg->len, word);
}

bool imap_arg_astring(const struct imap_arg *arg, const char **data_r, size_t *len_r)
{
    switch (arg->type) {
    case IMAP_ARG_LITERAL:
        if (arg->pending || arg->literal8)
            return false;
        break;
    case IMAP_ARG_ATOM:
    case IMAP_ARG_NIL:
    case IMAP_ARG_QUOTED:
        break;
    case IMAP_ARG_LIST:
        return false;
    }
    *data_r = arg->data;
    *len_r = arg->len;
    return true;
}
