/* IMAP command reader and argument parser.
 *
 * Reader cases are fed whole and one byte at a time; both must give the same
 * transcript of events. Parser cases are also run through the reader, whole
 * and byte by byte, to check the reader builds exactly the buffer the parser
 * is given. */
#include "check.h"

#include "buf.h"
#include "imap/imap_parser.h"

#include <stdlib.h>

static const struct imap_limits small_limits = {
    .max_line = 64,
    .max_literal = 16,
    .max_nonsync_literal = 16,
    .max_literals_total = 24,
    .max_literal_count = 3,
    .max_command = 128,
};

/* LITERAL+ for APPEND: non-synchronizing literals larger than kept ones. */
static const struct imap_limits big_nonsync_limits = {
    .max_line = 64,
    .max_literal = 16,
    .max_nonsync_literal = 32,
    .max_literals_total = 24,
    .max_literal_count = 3,
    .max_command = 128,
};

static const struct imap_limits tight_command_limits = {
    .max_line = 64,
    .max_literal = 64,
    .max_nonsync_literal = 64,
    .max_literals_total = 64,
    .max_literal_count = 3,
    .max_command = 40,
};

/* A string literal with embedded NULs, and its length. */
#define BIN(s) s, sizeof(s) - 1

static void put_escaped(struct buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            buf_puts(out, "\\r");
        else if (c == '\n')
            buf_puts(out, "\\n");
        else if (c < 0x20 || c >= 0x7f)
            buf_printf(out, "\\x%02x", c);
        else
            buf_append(out, &c, 1);
    }
}

/* ---- Reader ---------------------------------------------------------------- */

/* What the test session does at a LITERAL event. */
enum policy { ACCEPT = 'a', REJECT = 'r', STREAM = 's', IGNORE = 'n' };

struct session {
    struct imap_reader r;
    enum policy policy;
    struct buf out;     /* transcript */
    struct buf data;    /* streamed literal so far */
    bool fatal;
};

static void note(struct session *s, const char *what, const char *text, size_t len)
{
    if (buf_len(&s->out))
        buf_puts(&s->out, " | ");
    buf_printf(&s->out, "%s<", what);
    put_escaped(&s->out, text, len);
    buf_puts(&s->out, ">");
}

static void note_error(struct session *s)
{
    enum imap_read_error e = imap_reader_error(&s->r);
    const char *reason = imap_read_error_reason(e);
    s->fatal = imap_read_error_is_fatal(e);
    note(s, s->fatal ? "FATAL" : "ERR", reason, strlen(reason));
}

static void on_literal(struct session *s)
{
    const struct imap_literal *lit = imap_reader_literal(&s->r);
    size_t len;
    const char *text = imap_reader_text(&s->r, &len);
    char what[64];
    snprintf(what, sizeof what, "LIT%s%s%s", lit->nonsync ? "+" : "", lit->binary ? "~" : "",
             lit->fits ? "" : "!");
    note(s, what, text, len);
    enum imap_read_result res = IMAP_READ_MORE;
    if (s->policy == ACCEPT)
        res = imap_reader_accept_literal(&s->r);
    else if (s->policy == REJECT)
        res = imap_reader_reject_literal(&s->r);
    else if (s->policy == STREAM)
        res = imap_reader_stream_literal(&s->r);
    if (res == IMAP_READ_ERROR)
        note_error(s);
}

static void on_chunk(struct session *s)
{
    size_t len;
    bool last;
    const char *p = imap_reader_chunk(&s->r, &len, &last);
    buf_append(&s->data, p, len);
    if (last) {
        /* buf_head() of a never-used buf would be NULL + 0. */
        note(s, "DATA", s->data.data ? buf_head(&s->data) : "", buf_len(&s->data));
        buf_reset(&s->data);
    }
}

static void handle(struct session *s, enum imap_read_result res)
{
    size_t len;
    const char *text;
    switch (res) {
    case IMAP_READ_MORE:
        break;
    case IMAP_READ_COMMAND:
        text = imap_reader_text(&s->r, &len);
        note(s, "CMD", text, len);
        break;
    case IMAP_READ_LITERAL:
        on_literal(s);
        break;
    case IMAP_READ_LITERAL_DATA:
        on_chunk(s);
        break;
    case IMAP_READ_ERROR:
        note_error(s);
        break;
    }
}

/* Feeds input in pieces of at most step bytes, as a session would: the
 * unconsumed rest of a piece is fed again after each event. */
static char *run_reader(const char *in, size_t len, size_t step, const struct imap_limits *lim,
                        enum policy policy)
{
    struct session s = { .policy = policy };
    imap_reader_init(&s.r, lim);
    size_t pos = 0;
    while (pos < len && !s.fatal) {
        size_t piece = len - pos < step ? len - pos : step;
        size_t off = 0;
        do {
            size_t used;
            enum imap_read_result res = imap_reader_feed(&s.r, in + pos + off, piece - off, &used);
            off += used;
            handle(&s, res);
            if (res == IMAP_READ_MORE && off == piece)
                break;
        } while (!s.fatal);
        pos += piece;
    }
    /* An empty streamed literal needs no input to complete. */
    size_t used;
    if (!s.fatal) {
        enum imap_read_result res = imap_reader_feed(&s.r, NULL, 0, &used);
        if (res != IMAP_READ_MORE)
            handle(&s, res);
    }
    buf_append(&s.out, "", 1);
    imap_reader_free(&s.r);
    buf_free(&s.data);
    return s.out.data;
}

struct reader_case {
    const char *name;
    const char *in;
    size_t len;  /* 0: strlen(in) */
    const struct imap_limits *lim;
    enum policy policy;
    const char *want;
};

static const struct reader_case reader_cases[] = {
    { "simple", "A1 NOOP\r\n", 0, NULL, ACCEPT, "CMD<A1 NOOP>" },
    { "pipelined", "A1 NOOP\r\nA2 CAPABILITY\r\n", 0, NULL, ACCEPT,
      "CMD<A1 NOOP> | CMD<A2 CAPABILITY>" },
    { "bare LF", "A1 NOOP\nA2 NOOP\n", 0, NULL, ACCEPT, "CMD<A1 NOOP> | CMD<A2 NOOP>" },
    { "empty lines ignored", "\r\n\n\r\nA1 NOOP\r\n\r\n", 0, NULL, ACCEPT, "CMD<A1 NOOP>" },
    { "incomplete line", "A1 NOO", 0, NULL, ACCEPT, "" },
    { "lone CR recovers", "A1 NO\rOP\r\nA2 NOOP\r\n", 0, NULL, ACCEPT,
      "ERR<CR without LF> | CMD<A2 NOOP>" },
    { "CR CR LF", "A1 NOOP\r\r\nA2 NOOP\r\n", 0, NULL, ACCEPT,
      "ERR<CR without LF> | CMD<A2 NOOP>" },
    { "NUL in line recovers", BIN("A1 LOGIN a\0b c\r\nA2 NOOP\r\n"), NULL, ACCEPT,
      "ERR<NUL byte outside a literal> | CMD<A2 NOOP>" },
    { "8-bit line", "A1 LOGIN \"caf\xc3\xa9\" x\r\n", 0, NULL, ACCEPT,
      "CMD<A1 LOGIN \"caf\\xc3\\xa9\" x>" },
    { "line at max_line", "A1 X 12345678901234567890123456789012345678901234567890123456789\r\n",
      0, NULL, ACCEPT, "CMD<A1 X 12345678901234567890123456789012345678901234567890123456789>" },
    { "line over max_line recovers",
      "A1 X 123456789012345678901234567890123456789012345678901234567890\r\nA2 NOOP\r\n",
      0, NULL, ACCEPT, "ERR<Line too long> | CMD<A2 NOOP>" },
    { "very long line recovers",
      "A1 X xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
      "A2 NOOP\r\n", 0, NULL, ACCEPT, "ERR<Line too long> | CMD<A2 NOOP>" },
    { "sync literals", "A1 LOGIN {3}\r\nbob {2}\r\npw\r\n", 0, NULL, ACCEPT,
      "LIT<A1 LOGIN {3}> | LIT<A1 LOGIN {3}\\r\\nbob {2}> | CMD<A1 LOGIN {3}\\r\\nbob {2}\\r\\npw>" },
    { "literal bare LF", "A1 LOGIN {3}\nbob x\n", 0, NULL, ACCEPT,
      "LIT<A1 LOGIN {3}> | CMD<A1 LOGIN {3}\\r\\nbob x>" },
    { "nonsync literal", "A1 LOGIN {3+}\r\nbob pw\r\n", 0, NULL, ACCEPT,
      "LIT+<A1 LOGIN {3+}> | CMD<A1 LOGIN {3+}\\r\\nbob pw>" },
    { "literal8 with NUL", BIN("A1 APPEND INBOX ~{3}\r\na\0b\r\n"), NULL, ACCEPT,
      "LIT~<A1 APPEND INBOX ~{3}> | CMD<A1 APPEND INBOX ~{3}\\r\\na\\x00b>" },
    { "nonsync literal8", "A1 APPEND INBOX ~{2+}\r\nab\r\n", 0, NULL, ACCEPT,
      "LIT+~<A1 APPEND INBOX ~{2+}> | CMD<A1 APPEND INBOX ~{2+}\\r\\nab>" },
    { "CRLF inside literal", "A1 X {4}\r\n\r\n\r\n\r\n", 0, NULL, ACCEPT,
      "LIT<A1 X {4}> | CMD<A1 X {4}\\r\\n\\r\\n\\r\\n>" },
    { "literal ending the command", "A1 X {1}\r\n)\r\nA2 NOOP\r\n", 0, NULL, ACCEPT,
      "LIT<A1 X {1}> | CMD<A1 X {1}\\r\\n)> | CMD<A2 NOOP>" },
    { "leading zeros in size", "A1 X {003}\r\nabc\r\n", 0, NULL, ACCEPT,
      "LIT<A1 X {003}> | CMD<A1 X {003}\\r\\nabc>" },
    { "literal at max size", "A1 X {16}\r\n0123456789abcdef\r\n", 0, NULL, ACCEPT,
      "LIT<A1 X {16}> | CMD<A1 X {16}\\r\\n0123456789abcdef>" },
    { "sync literal over max refused unread", "A1 X {17}\r\nA2 NOOP\r\n", 0, NULL, ACCEPT,
      "LIT!<A1 X {17}> | ERR<Literal too big> | CMD<A2 NOOP>" },
    { "nonsync over kept max skipped", "A1 X {20+}\r\n01234567890123456789 y\r\nA2 NOOP\r\n", 0,
      &big_nonsync_limits, ACCEPT, "LIT+!<A1 X {20+}> | ERR<Literal too big> | CMD<A2 NOOP>" },
    { "nonsync over max is fatal", "A1 X {17+}\r\n01234567890123456\r\nA2 NOOP\r\n", 0, NULL,
      ACCEPT, "FATAL<Non-synchronizing literal too big>" },
    { "literal size overflow", "A1 LOGIN {99999999999999999999}\r\nA2 NOOP\r\n", 0, NULL,
      ACCEPT, "FATAL<Invalid literal size>" },
    { "literal announcement without CRLF", "A1 LOGIN {5}", 0, NULL, ACCEPT, "" },
    { "not literals", "A1 X {} {+} {a} {1 x\r\n", 0, NULL, ACCEPT, "CMD<A1 X {} {+} {a} {1 x>" },
    { "literal text in quotes", "A1 LOGIN \"{3}\"\r\n", 0, NULL, ACCEPT,
      "CMD<A1 LOGIN \"{3}\">" },
    { "literal text in open quote", "A1 LOGIN \"a\\\" {3}\r\n", 0, NULL, ACCEPT,
      "CMD<A1 LOGIN \"a\\\" {3}>" },
    { "literal after escaped backslash", "A1 LOGIN \"a\\\\\" {1}\r\nx\r\n", 0, NULL, ACCEPT,
      "LIT<A1 LOGIN \"a\\\\\" {1}> | CMD<A1 LOGIN \"a\\\\\" {1}\\r\\nx>" },
    { "too many literals", "A1 X {1}\r\na {1}\r\nb {1}\r\nc {1}\r\nA2 NOOP\r\n", 0, NULL, ACCEPT,
      "LIT<A1 X {1}> | LIT<A1 X {1}\\r\\na {1}> | LIT<A1 X {1}\\r\\na {1}\\r\\nb {1}> | "
      "LIT!<A1 X {1}\\r\\na {1}\\r\\nb {1}\\r\\nc {1}> | ERR<Too many literals> | CMD<A2 NOOP>" },
    { "literal total", "A1 X {16}\r\n0123456789abcdef {9}\r\nA2 NOOP\r\n", 0, NULL, ACCEPT,
      "LIT<A1 X {16}> | LIT!<A1 X {16}\\r\\n0123456789abcdef {9}> | ERR<Literal too big> | "
      "CMD<A2 NOOP>" },
    { "literal over command size", "A1 X {30}\r\nA2 NOOP\r\n", 0, &tight_command_limits, ACCEPT,
      "LIT!<A1 X {30}> | ERR<Command too long> | CMD<A2 NOOP>" },
    { "lines over command size", "A1 X {20}\r\n01234567890123456789 abcdefghijklmnop\r\nA2 NOOP\r\n",
      0, &tight_command_limits, ACCEPT,
      "LIT<A1 X {20}> | ERR<Command too long> | CMD<A2 NOOP>" },
    { "rejected line ending in nonsync literal",
      BIN("A1 X \0 {3+}\r\nabc\r\nA2 NOOP\r\n"), NULL, ACCEPT,
      "ERR<NUL byte outside a literal> | CMD<A2 NOOP>" },
    { "long line ending in nonsync literal chain",
      "A1 X 1234567890123456789012345678901234567890123456789012345678901234567890 {3+}\r\n"
      "abc {2+}\r\nde\r\nA2 NOOP\r\n", 0, NULL, ACCEPT, "ERR<Line too long> | CMD<A2 NOOP>" },
    { "rejected line ending in huge nonsync literal",
      BIN("A1 X \0 {99+}\r\nabc\r\n"), NULL, ACCEPT, "FATAL<Non-synchronizing literal too big>" },
    { "rejected line ending in sync literal", BIN("A1 X \0 {3}\r\nA2 NOOP\r\n"), NULL, ACCEPT,
      "ERR<NUL byte outside a literal> | CMD<A2 NOOP>" },
    { "reject sync", "A1 APPEND Foo {10}\r\nA2 NOOP\r\n", 0, NULL, REJECT,
      "LIT<A1 APPEND Foo {10}> | CMD<A2 NOOP>" },
    { "reject nonsync skips command", "A1 APPEND Foo {5+}\r\nhello {3+}\r\nabc\r\nA2 NOOP\r\n", 0,
      NULL, REJECT, "LIT+<A1 APPEND Foo {5+}> | CMD<A2 NOOP>" },
    { "stream append", "A1 APPEND INBOX (\\Seen) {5}\r\nhello\r\nA2 NOOP\r\n", 0, NULL, STREAM,
      "LIT<A1 APPEND INBOX (\\Seen) {5}> | DATA<hello> | CMD<> | CMD<A2 NOOP>" },
    { "stream multiappend", BIN("A1 APPEND INBOX {3}\r\nabc (\\Seen) {4+}\r\nd\0fg\r\n"), NULL,
      STREAM, "LIT<A1 APPEND INBOX {3}> | DATA<abc> | LIT+< (\\Seen) {4+}> | DATA<d\\x00fg> | CMD<>" },
    { "stream empty literal", "A1 APPEND INBOX {0}\r\n\r\n", 0, NULL, STREAM,
      "LIT<A1 APPEND INBOX {0}> | DATA<> | CMD<>" },
    { "stream big nonsync", "A1 APPEND INBOX {20+}\r\n01234567890123456789\r\n", 0,
      &big_nonsync_limits, STREAM, "LIT+!<A1 APPEND INBOX {20+}> | DATA<01234567890123456789> | CMD<>" },
    { "unresolved literal is misuse", "A1 X {1}\r\na\r\n", 0, NULL, IGNORE,
      "LIT<A1 X {1}> | FATAL<Internal error>" },
};

static void test_reader(void)
{
    for (size_t i = 0; i < sizeof reader_cases / sizeof *reader_cases; i++) {
        const struct reader_case *c = &reader_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        const struct imap_limits *lim = c->lim ? c->lim : &small_limits;
        char *whole = run_reader(c->in, len, len, lim, c->policy);
        char *bytes = run_reader(c->in, len, 1, lim, c->policy);
        CHECK_MSG(strcmp(whole, c->want) == 0, "%s: got \"%s\", want \"%s\"", c->name, whole, c->want);
        CHECK_MSG(strcmp(bytes, c->want) == 0, "%s bytewise: got \"%s\", want \"%s\"", c->name,
                  bytes, c->want);
        free(whole);
        free(bytes);
    }
}

/* The session learns the tag of a rejected line from what the reader kept. */
static void test_reader_error_tag(void)
{
    struct imap_reader r;
    imap_reader_init(&r, &small_limits);
    const char *in = "T7 LOGIN 1234567890123456789012345678901234567890123456789012345678901\r\n";
    size_t used, len, tag_len;
    const char *tag;
    CHECK(imap_reader_feed(&r, in, strlen(in), &used) == IMAP_READ_ERROR);
    CHECK(used == strlen(in));
    const char *text = imap_reader_text(&r, &len);
    CHECK(imap_find_tag(text, len, 64, &tag, &tag_len) && tag_len == 2 && memcmp(tag, "T7", 2) == 0);
    CHECK(!imap_read_error_is_fatal(imap_reader_error(&r)));
    imap_reader_free(&r);
}

/* Raising the line limit after login applies from the next command. */
static void test_reader_set_limits(void)
{
    struct imap_reader r;
    struct imap_limits bigger = small_limits;
    bigger.max_line = 100;
    imap_reader_init(&r, &small_limits);
    const char *in = "A1 X 123456789012345678901234567890123456789012345678901234567890\r\n";
    size_t used;
    CHECK(imap_reader_feed(&r, in, strlen(in), &used) == IMAP_READ_ERROR);
    imap_reader_set_limits(&r, &bigger);
    CHECK(imap_reader_feed(&r, in, strlen(in), &used) == IMAP_READ_COMMAND);
    imap_reader_free(&r);
}

/* ---- Parser ---------------------------------------------------------------- */

static const struct imap_parse_limits parse_limits = {
    .max_tag = 64,
    .max_args = 16,
    .max_depth = 5,
};

static void render_args(struct buf *out, const struct imap_arg *args, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct imap_arg *a = &args[i];
        if (i)
            buf_puts(out, " ");
        switch (a->type) {
        case IMAP_ARG_ATOM:
            put_escaped(out, a->data, a->len);
            break;
        case IMAP_ARG_NIL:
            buf_puts(out, "<NIL>");
            break;
        case IMAP_ARG_QUOTED:
            buf_puts(out, "\"");
            put_escaped(out, a->data, a->len);
            buf_puts(out, "\"");
            break;
        case IMAP_ARG_LITERAL:
            buf_printf(out, "%s{%zu}", a->literal8 ? "~" : "", a->len);
            if (a->pending)
                buf_puts(out, "...");
            else
                put_escaped(out, a->data, a->len);
            break;
        case IMAP_ARG_LIST:
            buf_puts(out, "(");
            render_args(out, a->list, a->count);
            buf_puts(out, ")");
            break;
        }
    }
}

/* "tag|name|args", "tag|UID name|args", or "ERR tag|reason". */
static char *render_command(const char *in, size_t len, unsigned flags, bool args_only)
{
    struct imap_command cmd;
    const char *error = NULL;
    struct buf out = {0};
    int ret = args_only ? imap_parse_args(in, len, flags, &parse_limits, &cmd, &error)
                        : imap_parse_command(in, len, flags, &parse_limits, &cmd, &error);
    if (ret < 0) {
        buf_puts(&out, "ERR ");
        if (cmd.tag)
            buf_append(&out, cmd.tag, cmd.tag_len);
        buf_printf(&out, "|%s", error);
    } else {
        if (cmd.tag)
            buf_append(&out, cmd.tag, cmd.tag_len);
        buf_printf(&out, "|%s", cmd.uid ? "UID " : "");
        if (cmd.name)
            buf_append(&out, cmd.name, cmd.name_len);
        buf_puts(&out, "|");
        render_args(&out, cmd.args, cmd.arg_count);
        if (cmd.literal_pending)
            buf_puts(&out, "|pending");
    }
    buf_append(&out, "", 1);
    imap_command_free(&cmd);
    return out.data;
}

struct parse_case {
    const char *in;
    size_t len;     /* 0: strlen(in) */
    unsigned flags;
    bool raw;       /* not something the reader produces: skip the round trip */
    const char *want;
};

static const struct parse_case parse_cases[] = {
    { "A1 NOOP", 0, 0, false, "A1|NOOP|" },
    { "a001 login SMITH SESAME", 0, 0, false, "a001|login|SMITH SESAME" },
    { "A1  NOOP  ", 0, 0, false, "A1|NOOP|" },
    { "A]1 NOOP", 0, 0, false, "A]1|NOOP|" },
    /* RFC 3501 / 9051 examples */
    { "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])", 0, 0, false,
      "A654|FETCH|2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])" },
    { "A1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)", 0, 0, false,
      "A1|FETCH|1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)" },
    { "A1 UID FETCH 1:5 BODY[]", 0, 0, false, "A1|UID FETCH|1:5 BODY[]" },
    { "A1 uid fetch 1 (BINARY.PEEK[1.2]<0.10> BINARY.SIZE[1])", 0, 0, false,
      "A1|UID fetch|1 (BINARY.PEEK[1.2]<0.10> BINARY.SIZE[1])" },
    { "A1 FETCH 1 BODY[HEADER.FIELDS.NOT (\"X-Foo\")]", 0, 0, false,
      "A1|FETCH|1 BODY[HEADER.FIELDS.NOT (\"X-Foo\")]" },
    { "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"", 0, 0, false,
      "A282|SEARCH|FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"" },
    { "A1 SEARCH OR (FROM a (TO b)) ((SUBJECT \"x y\"))", 0, 0, false,
      "A1|SEARCH|OR (FROM a (TO b)) ((SUBJECT \"x y\"))" },
    { "A003 STORE 2:4 +FLAGS (\\Deleted)", 0, 0, false, "A003|STORE|2:4 +FLAGS (\\Deleted)" },
    { "A1 LIST \"\" *", 0, 0, false, "A1|LIST|\"\" *" },
    { "A1 LIST \"\" %/%", 0, 0, false, "A1|LIST|\"\" %/%" },
    { "A1 SELECT foo[bar", 0, 0, false, "A1|SELECT|foo[bar" },
    { "A1 STATUS blurdybloop (UIDNEXT MESSAGES)", 0, 0, false,
      "A1|STATUS|blurdybloop (UIDNEXT MESSAGES)" },
    { "A1 X NIL nil NILS ()", 0, 0, false, "A1|X|<NIL> <NIL> NILS ()" },
    { "A1 LOGIN \"a\\\"b\" \"c\\\\d\"", 0, 0, false, "A1|LOGIN|\"a\"b\" \"c\\d\"" },
    { "A1 LOGIN \"caf\xc3\xa9\" \"\"", 0, 0, false, "A1|LOGIN|\"caf\\xc3\\xa9\" \"\"" },
    { "A1 LOGIN {3}\r\nbob {2}\r\npw", 0, 0, false, "A1|LOGIN|{3}bob {2}pw" },
    { "A1 LOGIN {3+}\r\nbob x", 0, 0, false, "A1|LOGIN|{3}bob x" },
    { "A1 X ({3}\r\nabc def)", 0, 0, false, "A1|X|({3}abc def)" },
    { "A1 X ({2}\r\n)))", 0, 0, false, "A1|X|({2})))" },
    { "A1 X {0}\r\n", 0, 0, false, "A1|X|{0}" },
    { BIN("A1 APPEND INBOX ~{3}\r\na\0b"), 0, false, "A1|APPEND|INBOX ~{3}a\\x00b" },
    { "A1 APPEND INBOX {3}\r\nabc (\\Seen) {4}\r\ndefg", 0, 0, false,
      "A1|APPEND|INBOX {3}abc (\\Seen) {4}defg" },
    { "A1 X ~foo", 0, 0, false, "A1|X|~foo" },
    { "A1 X (((((a)))))", 0, 0, false, "A1|X|(((((a)))))" },
    /* prefixes at a literal announcement */
    { "A1 APPEND INBOX (\\Seen) \"12-Jan-2024 10:00:00 +0000\" {310}", 0, IMAP_PARSE_PREFIX, false,
      "A1|APPEND|INBOX (\\Seen) \"12-Jan-2024 10:00:00 +0000\" {310}...|pending" },
    { "A1 APPEND INBOX CATENATE (URL \"/x\" TEXT {5}", 0, IMAP_PARSE_PREFIX, false,
      "A1|APPEND|INBOX CATENATE (URL \"/x\" TEXT {5}...)|pending" },
    { "A1 APPEND INBOX ~{5+}", 0, IMAP_PARSE_PREFIX, false, "A1|APPEND|INBOX ~{5}...|pending" },
    { "A1 NOOP", 0, IMAP_PARSE_PREFIX, true, "A1|NOOP|" },
    /* errors */
    { "", 0, 0, true, "ERR |Invalid tag" },
    { "* NOOP", 0, 0, false, "ERR |Invalid tag" },
    { "+ NOOP", 0, 0, false, "ERR |Invalid tag" },
    { "A\"1 NOOP", 0, 0, false, "ERR |Invalid tag" },
    { "A1", 0, 0, false, "ERR A1|Missing command" },
    { "A1 ", 0, 0, false, "ERR A1|Missing command" },
    { "A1 NO\"OP", 0, 0, false, "ERR A1|Invalid command name" },
    { "A1 NOOP(x)", 0, 0, false, "ERR A1|Invalid command name" },
    { "A1 UID", 0, 0, false, "ERR A1|Missing command after UID" },
    { "A1 LOGIN \"abc", 0, 0, false, "ERR A1|Missing '\"'" },
    { "A1 LOGIN \"abc\\", 0, 0, false, "ERR A1|Missing '\"'" },
    { "A1 LOGIN \"a\\bc\"", 0, 0, false, "ERR A1|Invalid escape in quoted string" },
    { BIN("A1 LOGIN \"a\0b\""), 0, true, "ERR A1|NUL in quoted string" },
    { "A1 LOGIN \"a{3}\r\nabc\"", 0, 0, true, "ERR A1|Missing '\"'" },
    { "A1 X (a b", 0, 0, false, "ERR A1|Missing ')'" },
    { "A1 X a)", 0, 0, false, "ERR A1|Unexpected ')'" },
    { "A1 X ((((((a))))))", 0, 0, false, "ERR A1|Too deeply nested lists" },
    { "A1 X ((((((((((((((((((((((((((((((", 0, 0, false, "ERR A1|Too deeply nested lists" },
    { "A1 X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", 0, 0, false,
      "A1|X|1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16" },
    { "A1 X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17", 0, 0, false, "ERR A1|Too many arguments" },
    { "A1 X (1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)", 0, 0, false, "ERR A1|Too many arguments" },
    { "A1 X {99999999999999999999}\r\nabc", 0, 0, true, "ERR A1|Invalid literal size" },
    { "A1 X {5}\r\nabc", 0, 0, true, "ERR A1|Literal data missing" },
    { "A1 X {5}", 0, 0, true, "ERR A1|Missing CRLF after literal" },
    { "A1 X {5}abcde", 0, 0, false, "ERR A1|Missing CRLF after literal" },
    { "A1 X {5}\nabcde", 0, 0, true, "ERR A1|Missing CRLF after literal" },
    { "A1 X {}", 0, 0, false, "ERR A1|Invalid literal size" },
    { "A1 X {+}", 0, 0, false, "ERR A1|Invalid literal size" },
    { "A1 X {3", 0, 0, false, "ERR A1|Missing '}'" },
    { "A1 X {3}\r\nabcd", 0, 0, false, "ERR A1|Missing space between arguments" },
    { "A1 X a\"b", 0, 0, false, "ERR A1|Unexpected '\"'" },
    { "A1 X a{3}", 0, IMAP_PARSE_PREFIX, false, "ERR A1|Unexpected '{'" },
    { "A1 X \"a\"b", 0, 0, false, "ERR A1|Missing space between arguments" },
    { "A1 X (a)(b)", 0, 0, false, "ERR A1|Missing space between arguments" },
    { "A1 X \\Seen\\x", 0, 0, false, "ERR A1|Unexpected '\\'" },
    { "A1 X a\x01", 0, 0, false, "ERR A1|Invalid character in atom" },
    { "A1 X caf\xc3\xa9", 0, 0, false, "ERR A1|Invalid character in atom" },
    { "A1 FETCH 1 BODY[HEADER", 0, 0, false, "ERR A1|Missing ']'" },
    { "A1 FETCH 1 BODY[[]", 0, 0, false, "ERR A1|Unexpected '['" },
    { "A1 FETCH 1 BODY[\x01]", 0, 0, false, "ERR A1|Invalid character in section" },
    { "1234567890123456789012345678901234567890123456789012345678901234 NOOP", 0, 0, false,
      "1234567890123456789012345678901234567890123456789012345678901234|NOOP|" },
    { "12345678901234567890123456789012345678901234567890123456789012345 NOOP", 0, 0, false,
      "ERR |Invalid tag" },
};

static const struct imap_limits roomy_limits = {
    .max_line = 256,
    .max_literal = 64,
    .max_nonsync_literal = 64,
    .max_literals_total = 256,
    .max_literal_count = 8,
    .max_command = 1024,
};

/* Feeds in + CRLF and expects the reader to yield exactly in: as a command,
 * or for a prefix as the text at the last literal. */
static void check_round_trip(const struct parse_case *c, size_t len, size_t step)
{
    char *wire = malloc(len + 2);
    memcpy(wire, c->in, len);
    memcpy(wire + len, "\r\n", 2);
    struct imap_reader r;
    imap_reader_init(&r, &roomy_limits);
    bool prefix = c->flags & IMAP_PARSE_PREFIX;
    bool got = false;
    for (size_t pos = 0; pos < len + 2 && !got;) {
        size_t piece = len + 2 - pos < step ? len + 2 - pos : step, used;
        enum imap_read_result res = imap_reader_feed(&r, wire + pos, piece, &used);
        pos += used;
        if (res == IMAP_READ_LITERAL && !(prefix && pos == len + 2)) {
            CHECK(imap_reader_accept_literal(&r) == IMAP_READ_MORE);
            continue;
        }
        if (res == IMAP_READ_MORE)
            continue;
        size_t text_len;
        const char *text = imap_reader_text(&r, &text_len);
        CHECK_MSG(res == (prefix ? IMAP_READ_LITERAL : IMAP_READ_COMMAND), "%s: result %d", c->in, res);
        CHECK_MSG(text_len == len && memcmp(text, c->in, len) == 0, "%s: round trip differs", c->in);
        got = true;
    }
    CHECK_MSG(got, "%s: reader yielded nothing", c->in);
    imap_reader_free(&r);
    free(wire);
}

static void test_parser(void)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof *parse_cases; i++) {
        const struct parse_case *c = &parse_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        char *got = render_command(c->in, len, c->flags, false);
        CHECK_MSG(strcmp(got, c->want) == 0, "parse \"%s\": got \"%s\", want \"%s\"", c->in, got, c->want);
        free(got);
        if (!c->raw) {
            check_round_trip(c, len, len + 2);
            check_round_trip(c, len, 1);
        }
    }
}

/* After a streamed literal, what follows is parsed without tag or name. */
static void test_parse_args(void)
{
    char *got = render_command(" (\\Seen) {4+}", 13, IMAP_PARSE_PREFIX, true);
    CHECK_STREQ(got, "||(\\Seen) {4}...|pending");
    free(got);
    got = render_command("", 0, 0, true);
    CHECK_STREQ(got, "||");
    free(got);
    got = render_command(" BODY[1] x", 10, IMAP_PARSE_BRACKETS, true);
    CHECK_STREQ(got, "||BODY[1] x");
    free(got);
}

static void test_arg_helpers(void)
{
    struct imap_command cmd;
    const char *error, *data;
    size_t len;
    const char *in = "A1 X nil Foo \"q\" {1}\r\nL (a)";
    CHECK(imap_parse_command(in, strlen(in), 0, &parse_limits, &cmd, &error) == 0);
    CHECK(cmd.arg_count == 5);
    CHECK(imap_arg_atom_is(&cmd.args[0], "NIL"));
    CHECK(imap_arg_atom_is(&cmd.args[1], "foo"));
    CHECK(!imap_arg_atom_is(&cmd.args[1], "fo"));
    CHECK(!imap_arg_atom_is(&cmd.args[2], "q"));
    CHECK(imap_arg_astring(&cmd.args[0], &data, &len) && len == 3 && memcmp(data, "nil", 3) == 0);
    CHECK(imap_arg_astring(&cmd.args[2], &data, &len) && len == 1 && *data == 'q');
    CHECK(imap_arg_astring(&cmd.args[3], &data, &len) && len == 1 && *data == 'L');
    CHECK(!imap_arg_astring(&cmd.args[4], &data, &len));
    imap_command_free(&cmd);
}

int main(void)
{
    test_reader();
    test_reader_error_tag();
    test_reader_set_limits();
    test_parser();
    test_parse_args();
    test_arg_helpers();
    return check_report();
}
