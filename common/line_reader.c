#include "line_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void line_reader_init(struct line_reader *r, size_t max_line)
{
    memset(r, 0, sizeof *r);
    r->max_line = max_line;
}

void line_reader_free(struct line_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

void line_reader_set_max(struct line_reader *r, size_t max_line)
{
    free(r->buf);
    r->buf = NULL;
    r->len = 0;
    r->skipping = false;
    r->max_line = max_line;
}

/* The CR of a CRLF is stored until the LF shows it was one, hence room for
 * max_line + 1 bytes, plus the terminating NUL. */
static void store(struct line_reader *r, const char *p, size_t n)
{
    if (r->skipping)
        return;
    if (n > r->max_line + 1 - r->len) {
        r->skipping = true;
        return;
    }
    if (!r->buf) {
        r->buf = malloc(r->max_line + 2);
        if (!r->buf) {
            fprintf(stderr, "out of memory allocating %zu bytes\n", r->max_line + 2);
            abort();
        }
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
}

static enum line_read_result end_line(struct line_reader *r, const char **line_r,
                                      size_t *line_len_r)
{
    bool too_long = r->skipping;
    if (!too_long && r->len > 0 && r->buf[r->len - 1] == '\r')
        r->len--;
    if (r->len > r->max_line)
        too_long = true;
    r->skipping = false;
    if (too_long) {
        r->len = 0;
        return LINE_READ_TOO_LONG;
    }
    *line_len_r = r->len;
    *line_r = r->buf ? r->buf : "";
    if (r->buf)
        r->buf[r->len] = '\0';
    r->len = 0;
    return LINE_READ_LINE;
}

enum line_read_result line_reader_feed(struct line_reader *r, const void *in, size_t len,
                                       size_t *used_r, const char **line_r, size_t *line_len_r)
{
    const char *p = in;
    const char *lf = len ? memchr(p, '\n', len) : NULL;
    size_t seg = lf ? (size_t)(lf - p) : len;
    store(r, p, seg);
    if (!lf) {
        *used_r = len;
        return LINE_READ_MORE;
    }
    *used_r = seg + 1;
    return end_line(r, line_r, line_len_r);
}
