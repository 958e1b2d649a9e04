/* IMAP string output: atom, quoted, literal and NIL choices. */
#include "check.h"

#include "buf.h"
#include "imap/imap_write.h"

#define BIN(s) s, sizeof(s) - 1

enum form { STRING, NSTRING, ASTRING, UTF8_ASTRING };

struct write_case {
    enum form form;
    const char *in;   /* NULL for NIL */
    size_t len;
    bool ok;
    const char *want;
};

static const size_t max_quoted = 16;

static const struct write_case cases[] = {
    { ASTRING, BIN("INBOX"), true, "INBOX" },
    { ASTRING, BIN("a]b"), true, "a]b" },
    { ASTRING, BIN("two words"), true, "\"two words\"" },
    { ASTRING, BIN(""), true, "\"\"" },
    { ASTRING, BIN("nil"), true, "\"nil\"" },
    { ASTRING, BIN("a%b"), true, "\"a%b\"" },
    { ASTRING, BIN("say \"hi\" \\o/"), true, "\"say \\\"hi\\\" \\\\o/\"" },
    { ASTRING, BIN("0123456789abcdefg"), true, "{17}\r\n0123456789abcdefg" },
    { STRING, BIN("atom"), true, "\"atom\"" },
    { STRING, BIN("0123456789abcdef"), true, "\"0123456789abcdef\"" },
    { STRING, BIN("a\r\nb"), true, "{4}\r\na\r\nb" },
    { STRING, BIN("caf\xc3\xa9"), true, "{5}\r\ncaf\xc3\xa9" },
    { STRING, BIN("a\0b"), false, "" },
    { NSTRING, NULL, 0, true, "NIL" },
    { NSTRING, BIN(""), true, "\"\"" },
    { NSTRING, BIN("x"), true, "\"x\"" },
    /* For a UTF-8 client 8-bit text is quoted; ASCII goes as an astring. */
    { UTF8_ASTRING, BIN("caf\xc3\xa9"), true, "\"caf\xc3\xa9\"" },
    { UTF8_ASTRING, BIN("INBOX"), true, "INBOX" },
    { UTF8_ASTRING, BIN("\xc3\xa9 \"q\""), true, "\"\xc3\xa9 \\\"q\\\"\"" },
    { UTF8_ASTRING, BIN("\xc3\xa9\r\n"), true, "{4}\r\n\xc3\xa9\r\n" },
    { UTF8_ASTRING, BIN("\xc3\xa9" "0123456789abcdef"), true, "{18}\r\n\xc3\xa9" "0123456789abcdef" },
    { UTF8_ASTRING, BIN("\xc3\xa9\0"), false, "" },
};

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct write_case *c = &cases[i];
        struct buf out = {0};
        bool ok = c->form == UTF8_ASTRING ? imap_write_utf8_astring(&out, c->in, c->len, max_quoted)
                : c->form == ASTRING ? imap_write_astring(&out, c->in, c->len, max_quoted)
                : c->form == NSTRING ? imap_write_nstring(&out, c->in, c->len, max_quoted)
                                     : imap_write_string(&out, c->in, c->len, max_quoted);
        CHECK_MSG(ok == c->ok, "case %zu", i);
        CHECK_MSG(buf_len(&out) == strlen(c->want) &&
                  (!out.data || memcmp(buf_head(&out), c->want, buf_len(&out)) == 0),
                  "case %zu: got \"%.*s\", want \"%s\"", i, (int)buf_len(&out),
                  out.data ? buf_head(&out) : "", c->want);
        buf_free(&out);
    }
    struct buf out = {0};
    imap_write_literal(&out, "a\0b", 3, true);
    CHECK(buf_len(&out) == 9 && memcmp(buf_head(&out), "~{3}\r\na\0b", 9) == 0);
    buf_free(&out);
    char body[] = "\0a\0\0b\0";
    CHECK(imap_literal_nul_to_0x80(body, sizeof body - 1) == 4);
    CHECK(memcmp(body, "\x80" "a\x80\x80" "b\x80", 6) == 0);
    CHECK(imap_literal_nul_to_0x80(body, 0) == 0);
    imap_write_atom(&out, "\\Seen", 5);
    CHECK(buf_len(&out) == 5 && memcmp(buf_head(&out), "\\Seen", 5) == 0);
    buf_free(&out);
    return check_report();
}
