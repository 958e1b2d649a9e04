/* libFuzzer target for the IMAP reader, parser, sequence sets and writer.
 *
 * Input: one policy byte (how each literal event is resolved) and one step
 * byte (feed piece size), then the client byte stream. The stream is fed
 * whole, in pieces of the step size, and one byte at a time; the three event
 * transcripts must agree. Every command is parsed, every atom tried as a
 * sequence set, and every string argument written back with imap_write and
 * re-read, which must give the same bytes. */
#include "buf.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "imap/imap_write.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct imap_limits limits = {
    .max_line = 64,
    .max_literal = 32,
    .max_nonsync_literal = 40,
    .max_literals_total = 64,
    .max_literal_count = 4,
    .max_command = 256,
};

static const struct imap_limits roomy = {
    .max_line = 4096,
    .max_literal = 4096,
    .max_nonsync_literal = 4096,
    .max_literals_total = 4096,
    .max_literal_count = 16,
    .max_command = 16384,
};

static const struct imap_parse_limits parse_limits = { .max_tag = 16, .max_args = 64, .max_depth = 8 };

static void check(int cond)
{
    if (!cond)
        abort();
}

static void reparse_written(const struct imap_arg *arg)
{
    const char *data;
    size_t len;
    struct buf out = {0};
    if (!imap_arg_astring(arg, &data, &len))
        return;
    buf_puts(&out, "T X ");
    if (!imap_write_astring(&out, data, len, 20)) {
        check(memchr(data, '\0', len) != NULL);
        buf_free(&out);
        return;
    }
    buf_puts(&out, "\r\n");

    struct imap_reader r;
    imap_reader_init(&r, &roomy);
    const char *p = buf_head(&out);
    size_t left = buf_len(&out), used;
    enum imap_read_result res;
    while ((res = imap_reader_feed(&r, p, left, &used)) == IMAP_READ_LITERAL) {
        p += used, left -= used;
        check(imap_reader_accept_literal(&r) == IMAP_READ_MORE);
    }
    check(res == IMAP_READ_COMMAND);
    size_t text_len;
    const char *text = imap_reader_text(&r, &text_len);
    struct imap_command cmd;
    const char *error;
    check(imap_parse_command(text, text_len, 0, &parse_limits, &cmd, &error) == 0);
    const char *back = NULL;
    size_t back_len = 0;
    check(cmd.arg_count == 1 && imap_arg_astring(&cmd.args[0], &back, &back_len));
    check(back_len == len && memcmp(back, data, len) == 0);
    imap_command_free(&cmd);
    imap_reader_free(&r);
    buf_free(&out);
}

static void try_seqset(const struct imap_arg *arg)
{
    struct imap_seqset set, again;
    const char *error;
    char out[512];
    size_t len;
    if (imap_seqset_parse(arg->data, arg->len, IMAP_SEQSET_UID, 1000, 8, &set, &error) < 0)
        return;
    if (!set.searchres && set.count > 0 &&
        imap_seqset_format(set.ranges, set.count, out, sizeof out, &len)) {
        check(imap_seqset_parse(out, len, IMAP_SEQSET_UID, 1000, 8, &again, &error) == 0);
        check(again.count == set.count);
        check(memcmp(again.ranges, set.ranges, set.count * sizeof *set.ranges) == 0);
        check(imap_seqset_count(&again) == imap_seqset_count(&set));
        check(imap_seqset_contains(&set, set.ranges[0].lo));
        imap_seqset_free(&again);
    }
    imap_seqset_free(&set);
}

static void walk(const struct imap_arg *args, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct imap_arg *a = &args[i];
        if (a->type == IMAP_ARG_LIST) {
            walk(a->list, a->count);
            continue;
        }
        if (a->pending)
            continue;
        volatile char sink = 0;
        for (size_t k = 0; k < a->len; k++)
            sink ^= a->data[k];
        (void)sink;
        if (a->type == IMAP_ARG_ATOM)
            try_seqset(a);
        reparse_written(a);
    }
}

static void parse(const char *text, size_t len, unsigned flags, bool args_only)
{
    struct imap_command cmd;
    const char *error = NULL;
    int ret = args_only ? imap_parse_args(text, len, flags, &parse_limits, &cmd, &error)
                        : imap_parse_command(text, len, flags, &parse_limits, &cmd, &error);
    if (ret == 0)
        walk(cmd.args, cmd.arg_count);
    else
        check(error != NULL && *error != '\0');
    imap_command_free(&cmd);
}

struct run {
    struct imap_reader r;
    uint8_t policy;
    unsigned literals;
    bool after_stream;  /* text is a continuation after a streamed literal */
    struct buf log;
    bool fatal;
};

static void on_literal(struct run *s)
{
    const struct imap_literal *lit = imap_reader_literal(&s->r);
    size_t len;
    const char *text = imap_reader_text(&s->r, &len);
    buf_printf(&s->log, "L%llu%d%d%d:", (unsigned long long)lit->size, lit->nonsync, lit->binary,
               lit->fits);
    buf_append(&s->log, text, len);
    parse(text, len, IMAP_PARSE_PREFIX, s->after_stream);
    unsigned action = (s->policy >> (2 * (s->literals++ % 4))) & 3;
    enum imap_read_result res;
    if (action == 1) {
        res = imap_reader_reject_literal(&s->r);
    } else if (action == 2) {
        res = imap_reader_stream_literal(&s->r);
        s->after_stream = true;
    } else {
        res = imap_reader_accept_literal(&s->r);
    }
    if (res == IMAP_READ_ERROR) {
        check(!imap_read_error_is_fatal(imap_reader_error(&s->r)));
        buf_printf(&s->log, "E%d|", imap_reader_error(&s->r));
    }
    buf_puts(&s->log, "|");
}

static void handle(struct run *s, enum imap_read_result res)
{
    size_t len;
    const char *text;
    bool last;
    switch (res) {
    case IMAP_READ_MORE:
        return;
    case IMAP_READ_COMMAND:
        text = imap_reader_text(&s->r, &len);
        check(len <= limits.max_command);
        buf_puts(&s->log, "C:");
        buf_append(&s->log, text, len);
        buf_puts(&s->log, "|");
        parse(text, len, 0, s->after_stream);
        s->after_stream = false;
        return;
    case IMAP_READ_LITERAL:
        on_literal(s);
        return;
    case IMAP_READ_LITERAL_DATA:
        text = imap_reader_chunk(&s->r, &len, &last);
        buf_append(&s->log, text, len);
        if (last)
            buf_puts(&s->log, "D|");
        return;
    case IMAP_READ_ERROR:
        s->fatal = imap_read_error_is_fatal(imap_reader_error(&s->r));
        if (!s->fatal)
            s->after_stream = false;
        buf_printf(&s->log, "E%d|", imap_reader_error(&s->r));
        return;
    }
}

static struct buf run_stream(const uint8_t *in, size_t len, size_t step, uint8_t policy)
{
    struct run s = { .policy = policy };
    imap_reader_init(&s.r, &limits);
    for (size_t pos = 0; pos < len && !s.fatal;) {
        size_t piece = len - pos < step ? len - pos : step, off = 0;
        while (!s.fatal) {
            size_t used;
            enum imap_read_result res = imap_reader_feed(&s.r, in + pos + off, piece - off, &used);
            check(used <= piece - off);
            off += used;
            handle(&s, res);
            if (res == IMAP_READ_MORE) {
                check(off == piece);
                break;
            }
        }
        pos += piece;
    }
    size_t used;
    if (!s.fatal)
        handle(&s, imap_reader_feed(&s.r, NULL, 0, &used));
    imap_reader_free(&s.r);
    return s.log;
}

static bool same(const struct buf *a, const struct buf *b)
{
    return buf_len(a) == buf_len(b) && (buf_len(a) == 0 || memcmp(buf_head(a), buf_head(b), buf_len(a)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t policy = data[0];
    size_t step = data[1] ? data[1] : 1;
    data += 2;
    size -= 2;
    struct buf whole = run_stream(data, size, size ? size : 1, policy);
    struct buf stepped = run_stream(data, size, step, policy);
    struct buf bytes = run_stream(data, size, 1, policy);
    check(same(&whole, &stepped));
    check(same(&whole, &bytes));
    buf_free(&whole);
    buf_free(&stepped);
    buf_free(&bytes);
    /* The raw input as a command buffer, as if the reader had built it. */
    parse((const char *)data, size, 0, false);
    parse((const char *)data, size, IMAP_PARSE_PREFIX | IMAP_PARSE_BRACKETS, true);
    return 0;
}
