#include "header_filter.h"

#include <string.h>
#include <strings.h>

static bool listed(const char *name, size_t len, char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return true;
    return false;
}

/* End of the line starting at p (one past its LF, or end). */
static const char *line_end(const char *p, const char *end)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    return lf ? lf + 1 : end;
}

static bool blank(const char *p, const char *e)
{
    return e - p == 0 || (e - p == 1 && *p == '\n') || (e - p == 2 && p[0] == '\r' && p[1] == '\n');
}

void header_filter(const char *hdr, size_t len, char *const *names, size_t n, bool exclude,
                   struct buf *out)
{
    const char *p = hdr, *end = hdr + len;
    bool keep = false;
    while (p < end) {
        const char *e = line_end(p, end);
        if (blank(p, e))
            break;
        if (*p == ' ' || *p == '\t') {   /* continuation of the field before */
            if (keep)
                buf_append(out, p, (size_t)(e - p));
            p = e;
            continue;
        }
        /* A line without a colon is kept as a field named by the whole
         * line (Dovecot 2.3.19 returns it in HEADER.FIELDS.NOT): it is
         * part of the header block, and no listed name matches it. */
        const char *colon = memchr(p, ':', (size_t)(e - p));
        size_t nlen = colon ? (size_t)(colon - p) : (size_t)(e - p);
        while (nlen && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t' || p[nlen - 1] == '\r' ||
                        p[nlen - 1] == '\n'))
            nlen--;
        keep = listed(p, nlen, names, n) != exclude;
        if (keep) {
            buf_append(out, p, (size_t)(e - p));
            if (e[-1] != '\n')   /* a header cut short: end the line */
                buf_append(out, "\r\n", 2);
        }
        p = e;
    }
    buf_append(out, "\r\n", 2);
}
