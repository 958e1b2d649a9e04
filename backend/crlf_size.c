#include "crlf_size.h"

#include <string.h>

void crlf_size_init(struct crlf_size *c)
{
    c->bytes = 0;
    c->bare_lf = 0;
    c->last = -1;
}

void crlf_size_feed(struct crlf_size *c, const void *data, size_t len)
{
    const unsigned char *d = data;
    if (len == 0)
        return;
    size_t i = 0;
    const unsigned char *lf;
    while (i < len && (lf = memchr(d + i, '\n', len - i)) != NULL) {
        size_t at = (size_t)(lf - d);
        int before = at > 0 ? d[at - 1] : c->last;
        if (before != '\r')
            c->bare_lf++;
        i = at + 1;
    }
    c->bytes += len;
    c->last = d[len - 1];
}

uint64_t crlf_size_total(const struct crlf_size *c)
{
    uint64_t n = c->bytes + c->bare_lf;
    if (c->last == '\r')
        n += 1;          /* the trailing CR gets its LF */
    else if (c->last >= 0 && c->last != '\n')
        n += 2;          /* an unterminated last line gets CRLF */
    return n;
}
