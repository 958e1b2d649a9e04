/* Growable byte buffer with a read position.
 *
 * Bytes are appended at the end and consumed from the front; consumed space is
 * reclaimed by buf_compact() (called by the appenders when it pays). A buffer
 * owns its memory; buf_free() releases it. Allocation failure aborts: a worker
 * that cannot allocate a few KiB cannot serve anyone, and every caller bounds
 * what it appends by a named limit beforehand. */
#ifndef PETREL_BUF_H
#define PETREL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;    /* owned; NULL until the first append */
    size_t start;  /* first unconsumed byte */
    size_t end;    /* one past the last byte */
    size_t cap;    /* allocated bytes */
};

static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline char *buf_head(const struct buf *b) { return b->data ? b->data + b->start : NULL; }

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drops n bytes from the front (n <= buf_len). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Moves unconsumed bytes to the front of the allocation. */
void buf_compact(struct buf *b);
void buf_free(struct buf *b);
/* Frees the allocation of an empty buffer larger than keep bytes. */
void buf_trim(struct buf *b, size_t keep);
/* Space at the end for a read(2) of up to *avail_r bytes; commit with buf_commit. */
char *buf_tail(struct buf *b, size_t want, size_t *avail_r);
void buf_commit(struct buf *b, size_t n);

#endif
