/* backend/mime: part offsets and line counts, sections, the stored form,
 * limits (depth, parts, header bytes), deep nesting without recursion,
 * piecewise feeding, and the searchable text. The comparison with Dovecot's
 * BODYSTRUCTURE/ENVELOPE strings is in test_mime_dovecot.c. */
#include "check.h"
#include "mime/mime.h"

#include <stdlib.h>

static void parse_steps(const char *msg, size_t len, size_t step, const struct mime_limits *lim,
                        struct mime_result *r)
{
    struct mime_parser *p = mime_parser_new(lim);
    if (step == 0)
        step = len ? len : 1;
    for (size_t i = 0; i < len; i += step)
        mime_parser_feed(p, msg + i, len - i < step ? len - i : step);
    mime_parser_finish(p, r);
}

static const char *bs(struct mime_result *r) { return buf_head(&r->bodystructure); }

/* Section text of a message as a NUL-terminated copy (static buffer). */
static const char *section(const char *msg, const struct mime_tree *t, const char *spec)
{
    static char out[4096];
    struct mime_range rg;
    if (mime_find_section(t, spec, &rg) < 0)
        return "(none)";
    size_t n = (size_t)(rg.end - rg.start);
    if (n >= sizeof out)
        n = sizeof out - 1;
    memcpy(out, msg + rg.start, n);
    out[n] = '\0';
    return out;
}

/* ---- a nested message: offsets, lines, sections ---- */

static const char nested[] =
    "From: a@example.com\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=outer\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "one\r\n"
    "two\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "Content-Type: multipart/alternative; boundary=in\r\n"
    "\r\n"
    "--in\r\n"
    "\r\n"
    "plain\r\n"
    "--in\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<b>html</b>\r\n"
    "--in--\r\n"
    "--outer--\r\n"
    "epilogue\r\n";

static void test_nested_sections(void)
{
    size_t len = sizeof nested - 1;
    struct mime_result r;
    parse_steps(nested, len, 0, NULL, &r);
    const struct mime_tree *t = &r.tree;
    /* root, text, rfc822, inner message, inner text, inner html */
    CHECK(t->count == 6);
    CHECK(r.header_size == 89);
    CHECK(t->parts[0].end_off == len);
    CHECK(t->parts[1].body_lines == 1);            /* "one\r\ntwo": the last CRLF is the boundary's */
    CHECK(t->parts[1].end_off - t->parts[1].body_off == 8);
    CHECK(t->parts[2].flags & MIME_PART_MESSAGE);
    CHECK(t->parts[3].parent == 2 && (t->parts[3].flags & MIME_PART_MULTIPART));
    CHECK(t->parts[2].end_off == t->parts[3].end_off);
    CHECK_STREQ(section(nested, t, "1"), "one\r\ntwo");
    CHECK_STREQ(section(nested, t, "1.MIME"), "Content-Type: text/plain\r\n\r\n");
    CHECK_STREQ(section(nested, t, "2.HEADER"),
                "Subject: inner\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n");
    CHECK_STREQ(section(nested, t, "2.1"), "plain");
    CHECK_STREQ(section(nested, t, "2.2"), "<b>html</b>");
    CHECK_STREQ(section(nested, t, "2.2.MIME"), "Content-Type: text/html\r\n\r\n");
    CHECK_STREQ(section(nested, t, "2.header.fields (Subject)"),
                "Subject: inner\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n");
    CHECK(strncmp(section(nested, t, "2.TEXT"), "--in\r\n", 6) == 0);
    CHECK(strncmp(section(nested, t, "TEXT"), "preamble\r\n", 10) == 0);
    CHECK(strncmp(section(nested, t, "HEADER"), "From:", 5) == 0);
    CHECK(strlen(section(nested, t, "")) == len);
    CHECK_STREQ(section(nested, t, "3"), "(none)");
    CHECK_STREQ(section(nested, t, "1.1"), "(none)");
    /* part 1 is not a message: empty, as Dovecot answers */
    CHECK_STREQ(section(nested, t, "1.HEADER"), "");
    CHECK_STREQ(section(nested, t, "1.TEXT"), "");
    CHECK_STREQ(section(nested, t, "1.HEADER.FIELDS (From)"), "");
    CHECK_STREQ(section(nested, t, "0"), "(none)");
    CHECK_STREQ(section(nested, t, "2.3"), "(none)");
    CHECK_STREQ(section(nested, t, "FOO"), "(none)");
    CHECK_STREQ(bs(&r),
                "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1 NIL NIL NIL NIL)"
                "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 137 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
                "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)"
                "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) "
                "\"alternative\" (\"boundary\" \"in\") NIL NIL NIL) 11 NIL NIL NIL NIL) "
                "\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)");

    /* same tree whatever the piece size */
    for (size_t step = 1; step <= 13; step += 3) {
        struct mime_result r2;
        parse_steps(nested, len, step, NULL, &r2);
        CHECK(r2.tree.count == t->count);
        for (unsigned i = 0; i < t->count && i < r2.tree.count; i++) {
            CHECK(r2.tree.parts[i].hdr_off == t->parts[i].hdr_off);
            CHECK(r2.tree.parts[i].body_off == t->parts[i].body_off);
            CHECK(r2.tree.parts[i].end_off == t->parts[i].end_off);
            CHECK(r2.tree.parts[i].body_lines == t->parts[i].body_lines);
        }
        CHECK_STREQ(bs(&r2), bs(&r));
        CHECK_STREQ(buf_head(&r2.text), buf_head(&r.text));
        mime_result_free(&r2);
    }

    /* stored form */
    struct buf enc = {0};
    mime_tree_encode(t, &enc);
    struct mime_tree d;
    CHECK(mime_tree_decode(buf_head(&enc), buf_len(&enc), &d) == 0);
    struct buf again = {0};
    mime_write_bodystructure(&again, &d, 0, 1, 0);
    buf_append(&again, "", 1);
    CHECK_STREQ(buf_head(&again), bs(&r));
    CHECK_STREQ(section(nested, &d, "2.2"), "<b>html</b>");
    mime_tree_free(&d);
    /* every truncation and every single-byte change is rejected or harmless */
    int rejected = 0;
    for (size_t n = 0; n < buf_len(&enc); n++) {
        if (mime_tree_decode(buf_head(&enc), n, &d) < 0)
            rejected++;
        else
            mime_tree_free(&d);
    }
    CHECK(rejected == (int)buf_len(&enc));
    char *copy = malloc(buf_len(&enc));
    for (size_t n = 0; n < buf_len(&enc); n++) {
        memcpy(copy, buf_head(&enc), buf_len(&enc));
        copy[n] ^= 0x5A;
        if (mime_tree_decode(copy, buf_len(&enc), &d) == 0) {
            struct buf w = {0};
            mime_write_bodystructure(&w, &d, 0, 1, 0);
            struct mime_range rg;
            (void)mime_find_section(&d, "2.1", &rg);
            buf_free(&w);
            mime_tree_free(&d);
        }
    }
    free(copy);
    buf_free(&again);
    buf_free(&enc);
    mime_result_free(&r);
}

/* ---- a single-part message ---- */

static void test_single_part(void)
{
    const char msg[] = "Subject: hi\r\n\r\nbody line\r\nsecond";
    struct mime_result r;
    parse_steps(msg, sizeof msg - 1, 0, NULL, &r);
    CHECK(r.tree.count == 1);
    CHECK(r.header_size == 15);
    CHECK_STREQ(section(msg, &r.tree, "1"), "body line\r\nsecond");
    CHECK_STREQ(section(msg, &r.tree, "TEXT"), "body line\r\nsecond");
    CHECK_STREQ(section(msg, &r.tree, "1.MIME"), "Subject: hi\r\n\r\n");
    CHECK_STREQ(section(msg, &r.tree, "2"), "(none)");
    CHECK_STREQ(bs(&r), "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 1 NIL NIL NIL NIL)");
    CHECK_STREQ(buf_head(&r.body), "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 1)");
    CHECK_STREQ(buf_head(&r.envelope), "NIL \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL");
    mime_result_free(&r);

    /* empty input and a header without a blank line */
    parse_steps("", 0, 0, NULL, &r);
    CHECK(r.tree.count == 1 && r.header_size == 0 && r.size == 0);
    CHECK_STREQ(bs(&r), "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
    mime_result_free(&r);
    parse_steps("a:b\n", 4, 0, NULL, &r);
    CHECK(r.header_size == 4 && r.tree.parts[0].body_off == 4 && r.tree.parts[0].end_off == 4);
    mime_result_free(&r);
}

/* ---- bare LF: raw sizes stored, CRLF sizes on request ---- */

static void test_bare_lf(void)
{
    const char msg[] = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nl1\nl2\n--b--\n";
    struct mime_result r;
    parse_steps(msg, sizeof msg - 1, 1, NULL, &r);
    CHECK(r.tree.count == 2);
    const struct mime_part *p = &r.tree.parts[1];
    CHECK(p->end_off - p->body_off == 5 && p->body_vsize == 6 && p->body_lines == 1);
    CHECK(p->hdr_off + 1 == p->body_off && p->hdr_vsize == 2 && p->hdr_lines == 1);
    struct buf b = {0};
    mime_write_bodystructure(&b, &r.tree, 0, 0, 1);
    buf_append(&b, "", 1);
    CHECK_STREQ(buf_head(&b), "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1) \"mixed\")");
    CHECK_STREQ(buf_head(&r.body), "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1) \"mixed\")");
    buf_free(&b);
    mime_result_free(&r);
}

/* ---- boundaries that misbehave ---- */

static void test_bad_boundaries(void)
{
    const char missing[] = "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\nfirst\r\n--m\r\n\r\nlast\r\n";
    struct mime_result r;
    parse_steps(missing, sizeof missing - 1, 0, NULL, &r);
    CHECK(r.tree.count == 3);
    CHECK(r.tree.parts[2].end_off == sizeof missing - 1);   /* the last part runs to the end */
    CHECK(r.tree.parts[2].body_lines == 1);
    mime_result_free(&r);

    const char never[] = "Content-Type: multipart/mixed; boundary=zz\r\n\r\ntext\r\n--z\r\n";
    parse_steps(never, sizeof never - 1, 0, NULL, &r);
    CHECK(r.tree.count == 1 && r.tree.parts[0].first_child < 0);
    CHECK_STREQ(bs(&r), "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) "
                        "\"mixed\" (\"boundary\" \"zz\") NIL NIL NIL)");
    mime_result_free(&r);

    /* a boundary longer than one feed piece and than MIME_BOUNDARY_MAX */
    char big[1024];
    char b[101];
    memset(b, 'k', 100);
    b[100] = '\0';
    int n = snprintf(big, sizeof big,
                     "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n\r\nx\r\n--%s--\r\n", b, b, b);
    parse_steps(big, (size_t)n, 3, NULL, &r);
    /* compared on 80 bytes (as Dovecot), so "--kkk...k--" is not seen as the
     * close: an empty third part follows */
    CHECK(r.tree.count == 3 && r.tree.parts[1].end_off - r.tree.parts[1].body_off == 1);
    mime_result_free(&r);
}

/* ---- Dovecot's max_total_mime_parts test (test-message-parser.c) ---- */

static void test_part_limit(void)
{
    const char msg[] =
        "Content-Type: multipart/mixed; boundary=\"1\"\n\n"
        "--1\nContent-Type: multipart/mixed; boundary=\"2\"\n\n"
        "--2\nContent-Type: text/plain\n\n1\n"
        "--2\nContent-Type: text/plain\n\n22\n"
        "--1\nContent-Type: text/plain\n\n333\n";
    struct mime_limits lim = { .max_parts = 4 };
    for (size_t step = 0; step <= 5; step += 5) {
        struct mime_result r;
        parse_steps(msg, sizeof msg - 1, step, &lim, &r);
        const struct mime_part *p = r.tree.parts;
        CHECK(r.tree.count == 4);
        CHECK(p[0].body_off == 45 && p[0].end_off - p[0].body_off == 148 && p[0].body_lines == 15);
        CHECK(p[1].body_off - p[1].hdr_off == 45 && p[1].end_off - p[1].body_off == 99 && p[1].body_lines == 12);
        CHECK(p[2].body_off - p[2].hdr_off == 26 && p[2].end_off - p[2].body_off == 1 && p[2].body_lines == 0);
        CHECK(p[3].body_off - p[3].hdr_off == 26 && p[3].end_off - p[3].body_off == 37 && p[3].body_lines == 5);
        CHECK(p[3].flags & MIME_PART_OVERFLOW);
        mime_result_free(&r);
    }
}

/* ---- 10,000 levels: no recursion anywhere ---- */

static char *deep_multipart(unsigned n, size_t *len)
{
    struct buf b = {0};
    /* fixed width: no boundary is a prefix of another */
    buf_puts(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b00000\r\n\r\n");
    for (unsigned i = 1; i < n; i++)
        buf_printf(&b, "--b%05u\r\nContent-Type: multipart/mixed; boundary=b%05u\r\n\r\n", i - 1, i);
    buf_printf(&b, "--b%05u\r\nContent-Type: text/plain\r\n\r\nleaf\r\n", n - 1);
    for (unsigned i = n; i-- > 0;)
        buf_printf(&b, "--b%05u--\r\n", i);
    *len = buf_len(&b);
    return buf_head(&b);
}

static char *deep_rfc822(unsigned n, size_t *len)
{
    struct buf b = {0};
    for (unsigned i = 0; i < n; i++)
        buf_puts(&b, "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n");
    buf_puts(&b, "Subject: leaf\r\n\r\nleaf body\r\n");
    *len = buf_len(&b);
    return buf_head(&b);
}

static unsigned tree_depth(const struct mime_tree *t)
{
    unsigned d = 0;
    for (unsigned i = 0; i < t->count; i++)
        if (t->parts[i].depth > d)
            d = t->parts[i].depth;
    return d;
}

static void test_deep(void)
{
    size_t len;
    char *m = deep_multipart(10000, &len);
    struct mime_result r;
    parse_steps(m, len, 0, NULL, &r);
    CHECK(r.tree.count == 100);                        /* the 100th level is an opaque leaf */
    CHECK(tree_depth(&r.tree) == 99);
    CHECK(r.tree.parts[99].type && strcmp(r.tree.parts[99].type, "application") == 0);
    CHECK(r.tree.parts[0].end_off == len);
    mime_result_free(&r);

    /* with the limit lifted the tree really is 10,000 deep; writer, encoder
     * and section lookup must cope */
    struct mime_limits lim = { .max_depth = 20000, .max_parts = 30000 };
    parse_steps(m, len, 4096, &lim, &r);
    CHECK(r.tree.count == 10001);
    CHECK(tree_depth(&r.tree) == 10000);
    CHECK(strncmp(bs(&r), "((((((((((", 10) == 0);
    CHECK(buf_len(&r.bodystructure) > 10000 * 20);
    struct buf enc = {0};
    mime_tree_encode(&r.tree, &enc);
    struct mime_tree d;
    CHECK(mime_tree_decode(buf_head(&enc), buf_len(&enc), &d) == 0);
    struct buf w = {0};
    mime_write_bodystructure(&w, &d, 0, 1, 0);
    buf_append(&w, "", 1);
    CHECK_STREQ(buf_head(&w), bs(&r));
    struct buf spec = {0};
    for (unsigned i = 0; i < 10000; i++)
        buf_puts(&spec, i ? ".1" : "1");
    buf_append(&spec, "", 1);
    struct mime_range rg;
    CHECK(mime_find_section(&d, buf_head(&spec), &rg) == 0 && rg.end - rg.start == 4);
    CHECK(memcmp(m + rg.start, "leaf", 4) == 0);
    buf_free(&spec);
    buf_free(&w);
    buf_free(&enc);
    mime_tree_free(&d);
    mime_result_free(&r);
    free(m);

    m = deep_rfc822(10000, &len);
    parse_steps(m, len, 0, NULL, &r);
    CHECK(r.tree.count == 100);
    CHECK(r.tree.parts[0].end_off == len);
    mime_result_free(&r);
    parse_steps(m, len, 65536, &lim, &r);
    CHECK(r.tree.count == 10001 && tree_depth(&r.tree) == 10000);
    CHECK(strstr(bs(&r), "(NIL \"leaf\" NIL") != NULL);
    mime_result_free(&r);
    free(m);
}

/* ---- huge and broken headers ---- */

static void test_huge_header(void)
{
    struct buf b = {0};
    buf_puts(&b, "Subject: ");
    for (int i = 0; i < 300000; i++)
        buf_append(&b, "y", 1);
    buf_puts(&b, "\r\n");
    for (int i = 0; i < 5000; i++)
        buf_printf(&b, "X-Filler-%d: value\r\n", i);
    buf_puts(&b, "Content-Type: text/html\r\n\r\nbody\r\n");
    size_t len = buf_len(&b);
    struct mime_limits lim = { .max_header_bytes = 64 * 1024 };
    struct mime_result r;
    parse_steps(buf_head(&b), len, 7, &lim, &r);
    /* the header is too big to parse, but its size and the body are right */
    CHECK(r.tree.parts[0].flags & MIME_PART_HDR_CAPPED);
    CHECK(r.header_size == len - 6);
    CHECK(r.tree.parts[0].end_off - r.tree.parts[0].body_off == 6);
    CHECK(strstr(bs(&r), "\"7bit\" 6 1") != NULL);
    mime_result_free(&r);
    /* with room, the last field is seen */
    parse_steps(buf_head(&b), len, 0, NULL, &r);
    CHECK(strncmp(bs(&r), "(\"text\" \"plain\"", 15) == 0);   /* the 2000-field limit hides it */
    mime_result_free(&r);
    struct mime_limits roomy = { .max_header_bytes = 1 << 20, .max_header_lines = 10000 };
    parse_steps(buf_head(&b), len, 0, &roomy, &r);
    CHECK(strncmp(bs(&r), "(\"text\" \"html\"", 14) == 0);
    CHECK(strlen(buf_head(&r.envelope)) > 300000);
    mime_result_free(&r);
    buf_free(&b);

    /* 8-bit and NUL bytes in headers become literals, never a crash */
    const char h8[] = "Subject: Gr\xc3\xbc\xc3\x9f""e\r\nFrom: J\xc3\xb6rg <j@x.de>\r\nTo: a\0b@c\r\n\r\nx";
    parse_steps(h8, sizeof h8 - 1, 1, NULL, &r);
    CHECK(strncmp(buf_head(&r.envelope), "NIL {7}\r\nGr\xc3\xbc\xc3\x9f""e ((\"J\xc3\xb6rg\"", 10) == 0);
    CHECK(strstr(buf_head(&r.envelope), "{5}\r\nJ\xc3\xb6rg NIL \"j\" \"x.de\"") != NULL);
    mime_result_free(&r);
}

/* ---- searchable text ---- */

struct sink {
    struct buf hdr, body;
    unsigned calls;
    unsigned last_part;
};

static void sink_fn(void *ctx, enum mime_text_kind kind, unsigned part, const char *name, const char *data,
                    size_t len)
{
    struct sink *s = ctx;
    s->calls++;
    s->last_part = part;
    if (kind == MIME_TEXT_HEADER) {
        buf_printf(&s->hdr, "%u %s=", part, name);
        buf_append(&s->hdr, data, len);
        buf_append(&s->hdr, "\n", 1);
    } else {
        buf_append(&s->body, data, len);
    }
}

static const char textmsg[] =
    "From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@example.dk>\r\n"
    "Subject: =?UTF-8?B?SGVsbG8=?= =?utf-8?q?_W=C3=B6rld?= and\r\n more\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=T\r\n"
    "\r\n"
    "--T\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=C3=A9 au lait, a long soft=\r\n"
    "ly broken line\r\n"
    "--T\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "R3L832U=\r\n"
    "--T\r\n"
    "Content-Type: text/html; charset=windows-1252\r\n"
    "\r\n"
    "<p>price <b>\x80""5</b></p><!-- hidden -->\r\n"
    "--T\r\n"
    "Content-Type: text/plain; charset=koi8-r\r\n"
    "\r\n"
    "\xf0\xd2\xc9\xd7\xc5\xd4\r\n"
    "--T\r\n"
    "Content-Type: image/png\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "iVBORw0KGgo=\r\n"
    "--T--\r\n";

static void test_text_empty_field(void)
{
    /* fields with empty values are searchable text too (SEARCH FROM "") */
    const char msg[] = "X-Empty:\r\nFrom:   \r\nTo: a@b\r\n\r\nbody\r\n";
    struct sink s = {0};
    struct mime_parser *p = mime_parser_new(NULL);
    mime_parser_set_text_sink(p, sink_fn, &s);
    mime_parser_feed(p, msg, sizeof msg - 1);
    struct mime_result r;
    mime_parser_finish(p, &r);
    buf_append(&s.hdr, "", 1);
    CHECK(strstr(buf_head(&s.hdr), "0 X-Empty=\n") != NULL);
    CHECK(strstr(buf_head(&s.hdr), "0 From=\n") != NULL);
    CHECK(strstr(buf_head(&s.hdr), "0 To=a@b\n") != NULL);
    buf_free(&s.hdr);
    buf_free(&s.body);
    mime_result_free(&r);
}

static void test_text(void)
{
    struct buf whole = {0};
    for (size_t step = 0; step <= 3; step += 1) {
        struct sink s = {0};
        struct mime_parser *p = mime_parser_new(NULL);
        mime_parser_set_text_sink(p, sink_fn, &s);
        size_t len = sizeof textmsg - 1, st = step ? step : len;
        for (size_t i = 0; i < len; i += st)
            mime_parser_feed(p, textmsg + i, len - i < st ? len - i : st);
        struct mime_result r;
        mime_parser_finish(p, &r);
        buf_append(&s.hdr, "", 1);
        buf_append(&s.body, "", 1);
        CHECK(strstr(buf_head(&s.hdr), "0 From=Keld J\xc3\xb8rn Simonsen <keld@example.dk>\n") != NULL);
        CHECK(strstr(buf_head(&s.hdr), "0 Subject=Hello W\xc3\xb6rld and more\n") != NULL);
        CHECK(strstr(buf_head(&s.body), "Caf\xc3\xa9 au lait, a long softly broken line") != NULL);
        CHECK(strstr(buf_head(&s.body), "Gr\xc3\xbc\xc3\x9f""e") != NULL);
        CHECK(strstr(buf_head(&s.body), "price \xe2\x82\xac""5") != NULL);
        CHECK(strstr(buf_head(&s.body), "hidden") == NULL);
        CHECK(strstr(buf_head(&s.body), "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82") != NULL);   /* Привет */
        CHECK(strstr(buf_head(&s.body), "PNG") == NULL);
        CHECK(buf_len(&r.text) == 0);   /* a sink was set */
        if (step == 0) {
            buf_append(&whole, buf_head(&s.body), buf_len(&s.body));
        } else {
            CHECK_STREQ(buf_head(&s.body), buf_head(&whole));
        }
        buf_free(&s.hdr);
        buf_free(&s.body);
        mime_result_free(&r);
    }
    buf_free(&whole);

    /* the cap: text stops at max_text, on a character boundary */
    struct mime_limits lim = { .max_text = 40 };
    struct mime_result r;
    parse_steps(textmsg, sizeof textmsg - 1, 5, &lim, &r);
    CHECK(r.text_truncated);
    CHECK(buf_len(&r.text) <= 40 + 40);   /* plus "Name: " and newlines of the default format */
    mime_result_free(&r);

    struct buf o = {0};
    const char *ew = "=?utf-8?q?a?= =?utf-8?q?b?= c =?bogus?q?d?= =?x?";
    mime_decode_header_value(&o, ew, strlen(ew));
    buf_append(&o, "", 1);
    CHECK_STREQ(buf_head(&o), "ab c d =?x?");
    buf_reset(&o);
    mime_charset_to_utf8(&o, "windows-1252", "\x93q\x94", 3);
    buf_append(&o, "", 1);
    CHECK_STREQ(buf_head(&o), "\xe2\x80\x9cq\xe2\x80\x9d");
    buf_reset(&o);
    mime_charset_to_utf8(&o, "utf-8", "ok\xff", 3);   /* invalid UTF-8 read as windows-1252 */
    buf_append(&o, "", 1);
    CHECK_STREQ(buf_head(&o), "ok\xc3\xbf");
    buf_free(&o);
}

/* Answers of Dovecot 2.3.19 found by tests/integration/test_dovecot_diff.py. */
static void test_dovecot_diff_findings(void)
{
    struct mime_result r;
    /* an angle address the field ends inside: domain SYNTAX_ERROR */
    const char unterminated[] = "To: broken <unterminated@example.com\r\n\r\nx";
    parse_steps(unterminated, sizeof unterminated - 1, 0, NULL, &r);
    CHECK_STREQ(buf_head(&r.envelope),
                "NIL NIL NIL NIL NIL ((\"broken\" NIL \"unterminated\" \"SYNTAX_ERROR\")) NIL NIL NIL NIL");
    mime_result_free(&r);
    /* a message that starts with its blank line has an empty header */
    const char headless[] = "\r\nThis message has no header at all.\r\n";
    parse_steps(headless, sizeof headless - 1, 0, NULL, &r);
    CHECK(r.header_size == 2);
    CHECK_STREQ(section(headless, &r.tree, "HEADER"), "\r\n");
    CHECK_STREQ(section(headless, &r.tree, "TEXT"), "This message has no header at all.\r\n");
    mime_result_free(&r);
    parse_steps(headless, sizeof headless - 1, 1, NULL, &r);
    CHECK(r.header_size == 2);
    mime_result_free(&r);
    /* a multipart without parts: its placeholder part 1 and its sections are "" */
    const char partless[] = "Content-Type: multipart/mixed; boundary=nothere\r\n\r\njust text\r\n";
    parse_steps(partless, sizeof partless - 1, 0, NULL, &r);
    CHECK_STREQ(section(partless, &r.tree, "1"), "");
    CHECK_STREQ(section(partless, &r.tree, "1.MIME"), "");
    CHECK_STREQ(section(partless, &r.tree, "1.HEADER"), "");
    CHECK_STREQ(section(partless, &r.tree, "1.TEXT"), "");
    CHECK_STREQ(section(partless, &r.tree, "2"), "(none)");
    CHECK_STREQ(section(partless, &r.tree, "1.1"), "(none)");
    CHECK_STREQ(section(partless, &r.tree, "1.FOO"), "(none)");
    mime_result_free(&r);
    /* an empty part: the empty line ending its header is the boundary's
     * newline, so MIME has no blank line (Dovecot: "Content-Type: text/plain\r\n",
     * then "" for a part that is only the empty line, "\r\n" when text follows) */
    const char empty_parts[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                               "--b\r\nContent-Type: text/plain\r\n\r\n--b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
    const char empty_lf[] = "Content-Type: multipart/mixed; boundary=b\n\n"
                            "--b\nContent-Type: text/plain\n\n--b\n\n--b--\n";
    for (size_t step = 0; step <= 1; step++) {
        parse_steps(empty_parts, sizeof empty_parts - 1, step, NULL, &r);
        CHECK_STREQ(section(empty_parts, &r.tree, "1.MIME"), "Content-Type: text/plain\r\n");
        CHECK_STREQ(section(empty_parts, &r.tree, "1"), "");
        CHECK_STREQ(section(empty_parts, &r.tree, "2.MIME"), "");
        CHECK_STREQ(section(empty_parts, &r.tree, "3.MIME"), "\r\n");
        CHECK_STREQ(section(empty_parts, &r.tree, "3"), "x");
        CHECK_STREQ(bs(&r), "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
                            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
                            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL)"
                            " \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)");
        mime_result_free(&r);
        parse_steps(empty_lf, sizeof empty_lf - 1, step, NULL, &r);
        CHECK_STREQ(section(empty_lf, &r.tree, "1.MIME"), "Content-Type: text/plain\n");
        CHECK_STREQ(section(empty_lf, &r.tree, "2.MIME"), "");
        mime_result_free(&r);
    }
    const char local_only[] = "To: <user\r\n\r\nx";
    parse_steps(local_only, sizeof local_only - 1, 0, NULL, &r);
    CHECK_STREQ(buf_head(&r.envelope), "NIL NIL NIL NIL NIL ((NIL NIL \"user\" \"SYNTAX_ERROR\")) NIL NIL NIL NIL");
    mime_result_free(&r);
}

/* The search text of a body in a charset glibc's iconv converts must not
 * depend on how the body arrived in pieces, even when it is invalid: an
 * unterminated UTF-7 base64 run (found by fuzz_mime), UTF-16 cut anywhere. */
static void test_text_pieces(void)
{
    static const char utf7[] = "Content-Type: text/plain; charset=utf-7\r\n\r\n"
                               "+rtfcttf\r\nHi Mom -+Jjo--! +ZeVnLIqe-\r\n+rtf";
    static const char utf16[] = "Content-Type: text/plain; charset=utf-16\r\n\r\n"
                                "\xff\xfeh\0\xe9\0\n\0x\0\0\xd8";
    const struct { const char *msg; size_t len; } cases[] = {
        { utf7, sizeof utf7 - 1 },
        { utf16, sizeof utf16 - 1 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        struct mime_result whole;
        parse_steps(cases[c].msg, cases[c].len, 0, NULL, &whole);
        CHECK(buf_len(&whole.text) > 0);
        for (size_t step = 1; step <= 16; step++) {
            struct mime_result r;
            parse_steps(cases[c].msg, cases[c].len, step, NULL, &r);
            CHECK_MSG(buf_len(&r.text) == buf_len(&whole.text) &&
                      memcmp(buf_head(&r.text), buf_head(&whole.text), buf_len(&r.text)) == 0,
                      "case %zu, pieces of %zu", c, step);
            mime_result_free(&r);
        }
        mime_result_free(&whole);
    }
}

int main(void)
{
    test_dovecot_diff_findings();
    test_nested_sections();
    test_single_part();
    test_bare_lf();
    test_bad_boundaries();
    test_part_limit();
    test_deep();
    test_huge_header();
    test_text();
    test_text_empty_field();
    test_text_pieces();
    return check_report();
}
