#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "out of memory allocating %zu bytes\n", n);
        abort();
    }
    return q;
}

void buf_compact(struct buf *b)
{
    if (b->start == 0)
        return;
    memmove(b->data, b->data + b->start, b->end - b->start);
    b->end -= b->start;
    b->start = 0;
}

void buf_reserve(struct buf *b, size_t extra)
{
    if (b->cap - b->end >= extra)
        return;
    /* Reuse consumed space before growing: long-lived session buffers then stay
     * at the size of their largest burst. */
    if (b->start > 0 && b->cap - buf_len(b) >= extra) {
        buf_compact(b);
        return;
    }
    size_t need = buf_len(b) + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    buf_compact(b);
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    buf_reserve(b, n);
    memcpy(b->data + b->end, p, n);
    b->end += n;
}

void buf_puts(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n < sizeof small) {
        buf_append(b, small, (size_t)n);
    } else {
        buf_reserve(b, (size_t)n + 1);
        vsnprintf(b->data + b->end, (size_t)n + 1, fmt, ap2);
        b->end += (size_t)n;
    }
    va_end(ap2);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end)
        b->start = b->end = 0;
}

void buf_reset(struct buf *b) { b->start = b->end = 0; }

void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){0};
}

void buf_trim(struct buf *b, size_t keep)
{
    if (buf_len(b) == 0 && b->cap > keep)
        buf_free(b);
}

char *buf_tail(struct buf *b, size_t want, size_t *avail_r)
{
    buf_reserve(b, want);
    *avail_r = b->cap - b->end;
    return b->data + b->end;
}

void buf_commit(struct buf *b, size_t n) { b->end += n; }
