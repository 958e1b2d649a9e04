#include "crlf_norm.h"

#include <string.h>

void crlf_norm_init(struct crlf_norm *c)
{
    c->held_cr = false;
    c->last_cr = false;
}

/* How many bytes of p[0..n) from i on (p[i] neither CR nor LF) are neither
 * CR nor LF. *lf is where the next LF is, or n: found once and kept until i
 * passes it, so a long line full of CRs is scanned once, not once per CR.
 * memchr rather than a byte loop: mail is mostly long runs of plain bytes. */
static size_t plain_span(const uint8_t *p, size_t i, size_t n, size_t *lf)
{
    if (*lf <= i) {
        const uint8_t *f = memchr(p + i, '\n', n - i);
        *lf = f ? (size_t)(f - p) : n;
    }
    const uint8_t *cr = memchr(p + i, '\r', *lf - i);
    return (cr ? (size_t)(cr - p) : *lf) - i;
}

/* Two steps in one pass, as Dovecot's two streams are: a CR is held until
 * the next byte shows whether it ends a line (then it goes, as
 * i_stream_create_lf drops it), and an LF written without a CR just before
 * it gets one (i_stream_create_crlf). Per byte in, at most two out: a held
 * CR is written only together with the byte after it, and never with an LF. */
size_t crlf_norm_feed(struct crlf_norm *c, const void *in, size_t n, void *out)
{
    const uint8_t *p = in;
    uint8_t *o = out, *start = out;
    size_t i = 0, lf = 0;
    while (i < n) {
        uint8_t ch = p[i];
        if (ch == '\n') {
            c->held_cr = false;
            if (!c->last_cr)
                *o++ = '\r';
            *o++ = '\n';
            c->last_cr = false;
            i++;
            continue;
        }
        if (c->held_cr) {   /* a CR that does not end a line stays */
            *o++ = '\r';
            c->last_cr = true;
            c->held_cr = false;
        }
        if (ch == '\r') {
            c->held_cr = true;
            i++;
            continue;
        }
        size_t k = plain_span(p, i, n, &lf);
        memcpy(o, p + i, k);
        o += k;
        i += k;
        c->last_cr = false;
    }
    return (size_t)(o - start);
}

size_t crlf_norm_append(struct crlf_norm *c, const void *in, size_t n, struct buf *b)
{
    if (n == 0)
        return 0;
    size_t avail;
    char *room = buf_tail(b, CRLF_NORM_MAX_OUT(n), &avail);
    size_t wrote = crlf_norm_feed(c, in, n, room);
    buf_commit(b, wrote);
    return wrote;
}
