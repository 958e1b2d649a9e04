/* Line reader: every case fed whole, one byte at a time, and split at every
 * point into two pieces; all must give the same transcript. */
#include "check.h"

#include "buf.h"
#include "line_reader.h"

#include <stdlib.h>

#define BIN(s) s, sizeof(s) - 1

struct line_case {
    const char *name;
    const char *in;
    size_t len;
    size_t max_line;
    const char *want;  /* lines as <...>, TOO_LONG for a skipped line */
};

static const struct line_case cases[] = {
    { "crlf", BIN("USER bob\r\nPASS x\r\n"), 16, "<USER bob> <PASS x>" },
    { "bare lf", BIN("USER bob\nPASS x\n"), 16, "<USER bob> <PASS x>" },
    { "incomplete", BIN("USER bob\r\nPAS"), 16, "<USER bob>" },
    { "empty lines", BIN("\r\n\n\r\n"), 16, "<> <> <>" },
    { "lone CR kept", BIN("a\rb\r\n"), 16, "<a\\rb>" },
    { "CR CR LF", BIN("ab\r\r\n"), 16, "<ab\\r>" },
    { "NUL is data", BIN("a\0b\r\n"), 16, "<a\\x00b>" },
    { "8-bit", BIN("USER caf\xc3\xa9\r\n"), 16, "<USER caf\\xc3\\xa9>" },
    { "exactly max", BIN("0123456789abcdef\r\nx\r\n"), 16, "<0123456789abcdef> <x>" },
    { "exactly max bare LF", BIN("0123456789abcdef\nx\n"), 16, "<0123456789abcdef> <x>" },
    { "max plus CR data", BIN("0123456789abcdef\rx\r\nok\r\n"), 16, "TOO_LONG <ok>" },
    { "one over", BIN("0123456789abcdefg\r\nNOOP\r\n"), 16, "TOO_LONG <NOOP>" },
    { "way over then ok",
      BIN("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nNOOP\r\n"), 16,
      "TOO_LONG <NOOP>" },
    { "two long lines", BIN("xxxxxxxxxxxxxxxxxxxxxxxx\nyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\nQUIT\r\n"), 16,
      "TOO_LONG TOO_LONG <QUIT>" },
    { "long unterminated", BIN("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), 16, "" },
    { "zero max", BIN("\r\nx\r\n\n"), 0, "<> TOO_LONG <>" },
};

static void run_piece(struct line_reader *r, const char *p, size_t len, struct buf *out)
{
    while (len > 0) {
        size_t used, line_len;
        const char *line;
        enum line_read_result res = line_reader_feed(r, p, len, &used, &line, &line_len);
        p += used;
        len -= used;
        if (res == LINE_READ_MORE)
            continue;
        if (buf_len(out))
            buf_puts(out, " ");
        if (res == LINE_READ_TOO_LONG) {
            buf_puts(out, "TOO_LONG");
            continue;
        }
        CHECK(line[line_len] == '\0');
        buf_puts(out, "<");
        for (size_t i = 0; i < line_len; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c == '\r')
                buf_puts(out, "\\r");
            else if (c < 0x20 || c >= 0x7f)
                buf_printf(out, "\\x%02x", c);
            else
                buf_append(out, &c, 1);
        }
        buf_puts(out, ">");
    }
}

/* Feeds in, split after split1 and then in steps of step bytes. */
static char *run(const struct line_case *c, size_t split1, size_t step)
{
    struct line_reader r;
    struct buf out = {0};
    line_reader_init(&r, c->max_line);
    run_piece(&r, c->in, split1, &out);
    for (size_t pos = split1; pos < c->len; pos += step) {
        size_t n = c->len - pos < step ? c->len - pos : step;
        run_piece(&r, c->in + pos, n, &out);
    }
    buf_append(&out, "", 1);
    line_reader_free(&r);
    return out.data;
}

static void check_run(const struct line_case *c, size_t split1, size_t step, const char *how)
{
    char *got = run(c, split1, step);
    CHECK_MSG(strcmp(got, c->want) == 0, "%s (%s, split %zu): got \"%s\", want \"%s\"", c->name,
              how, split1, got, c->want);
    free(got);
}

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct line_case *c = &cases[i];
        check_run(c, c->len, 1, "whole");
        check_run(c, 0, 1, "bytewise");
        for (size_t split = 1; split < c->len; split++)
            check_run(c, split, c->len, "two pieces");
    }

    /* The limit can change between lines (e.g. after authentication). */
    struct line_reader r;
    size_t used, len;
    const char *line;
    line_reader_init(&r, 4);
    CHECK(line_reader_feed(&r, "abcdef\n", 7, &used, &line, &len) == LINE_READ_TOO_LONG);
    line_reader_set_max(&r, 8);
    CHECK(line_reader_feed(&r, "abcdef\n", 7, &used, &line, &len) == LINE_READ_LINE && len == 6);
    CHECK(line_reader_feed(&r, "", 0, &used, &line, &len) == LINE_READ_MORE && used == 0);
    line_reader_free(&r);
    return check_report();
}
