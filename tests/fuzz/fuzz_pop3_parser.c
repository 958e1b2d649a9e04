/* libFuzzer target for common/line_reader and the POP3 command parser.
 *
 * Input: one byte choosing max_line, then the client byte stream, fed whole
 * and one byte at a time; both must yield the same lines. Every line is
 * parsed, and every argument checked as a number against a plain reference. */
#include "buf.h"
#include "line_reader.h"
#include "pop3/pop3_parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct pop3_limits limits = { .max_args = 3, .max_arg_len = 40 };

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_number(const char *s, size_t len)
{
    uint64_t ref = 0;
    bool ok = len > 0;
    for (size_t i = 0; ok && i < len; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        ref = ref * 10 + (uint64_t)(s[i] - '0');
        ok = ok && ref <= UINT32_MAX;
    }
    uint32_t n;
    bool got = pop3_parse_number(s, len, &n);
    check(got == ok);
    check(!got || n == ref);
    check(pop3_parse_msgnum(s, len, &n) == (ok && ref > 0));
}

static void parse_line(const char *line, size_t len)
{
    struct pop3_arg args[3];
    struct pop3_command cmd = { .args = args };
    const char *error = NULL;
    if (pop3_parse_command(line, len, &limits, &cmd, &error) < 0) {
        check(error && *error);
        return;
    }
    size_t kw = strlen(cmd.keyword);
    check(kw >= 3 && kw <= 4);
    check(cmd.argc <= limits.max_args);
    for (size_t i = 0; i < cmd.argc; i++) {
        check(args[i].len > 0 && args[i].len <= limits.max_arg_len);
        check(args[i].data >= line && args[i].data + args[i].len <= line + len);
        check(!memchr(args[i].data, ' ', args[i].len));
        check_number(args[i].data, args[i].len);
    }
    check(!cmd.rest || cmd.rest + cmd.rest_len == line + len);
}

static struct buf run(const uint8_t *in, size_t len, size_t max_line, size_t step)
{
    struct line_reader r;
    struct buf log = {0};
    line_reader_init(&r, max_line);
    for (size_t pos = 0; pos < len;) {
        size_t piece = len - pos < step ? len - pos : step, used, line_len;
        const char *line;
        enum line_read_result res = line_reader_feed(&r, in + pos, piece, &used, &line, &line_len);
        check(used >= 1 && used <= piece);
        pos += used;
        if (res == LINE_READ_TOO_LONG) {
            buf_puts(&log, "!|");
        } else if (res == LINE_READ_LINE) {
            check(line_len <= max_line && line[line_len] == '\0');
            check(!memchr(line, '\n', line_len));
            buf_append(&log, line, line_len);
            buf_puts(&log, "|");
            parse_line(line, line_len);
        }
    }
    line_reader_free(&r);
    return log;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_line = data[0];
    data++;
    size--;
    struct buf whole = run(data, size, max_line, size ? size : 1);
    struct buf bytes = run(data, size, max_line, 1);
    check(buf_len(&whole) == buf_len(&bytes));
    check(buf_len(&whole) == 0 || memcmp(buf_head(&whole), buf_head(&bytes), buf_len(&whole)) == 0);
    buf_free(&whole);
    buf_free(&bytes);
    parse_line((const char *)data, size);
    return 0;
}
