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

/* Appends the line p..e. For HEADER.FIELDS Dovecot rebuilds each line from
 * its header parser, which takes one CR before the LF as the line end, and
 * writes the line end back as CRLF only where the value does not end in a
 * CR: a line ending in a run of CRs before its CRLF (kept at arrival,
 * crlf_norm.h) comes out with one CR fewer. HEADER.FIELDS.NOT (trim false)
 * it copies as stored. Petrel does the same, byte for byte. */
static void put_line(struct buf *out, const char *p, const char *e, bool trim)
{
    size_t n = (size_t)(e - p);
    if (trim && n >= 3 && e[-1] == '\n' && e[-2] == '\r' && e[-3] == '\r') {
        buf_append(out, p, n - 2);
        buf_append(out, "\n", 1);
        return;
    }
    buf_append(out, p, n);
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
                put_line(out, p, e, !exclude);
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
            put_line(out, p, e, !exclude);
            if (e[-1] != '\n')   /* a header cut short: end the line */
                buf_append(out, "\r\n", 2);
        }
        p = e;
    }
    buf_append(out, "\r\n", 2);
}
