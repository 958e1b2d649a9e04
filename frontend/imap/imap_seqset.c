#include "imap/imap_seqset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char imap_seqset_too_many[] = "Too many ranges in sequence set";

#define STAR 0 /* a parsed "*", before resolution; 0 is never a valid number */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "out of memory allocating %zu bytes\n", n);
        abort();
    }
    return q;
}

struct seq_parser {
    const char *p, *end;
    const char *error;
};

static int fail(struct seq_parser *sp, const char *reason)
{
    sp->error = reason;
    return -1;
}

/* seq-number = nz-number / "*"; nz-number has no leading zero. */
static int parse_number(struct seq_parser *sp, uint32_t *n_r)
{
    if (sp->p < sp->end && *sp->p == '*') {
        sp->p++;
        *n_r = STAR;
        return 0;
    }
    if (sp->p == sp->end || *sp->p < '1' || *sp->p > '9')
        return fail(sp, sp->p < sp->end && *sp->p == '0' ? "Invalid number" : "Expected a number");
    uint32_t n = 0;
    for (; sp->p < sp->end && *sp->p >= '0' && *sp->p <= '9'; sp->p++) {
        uint32_t d = (uint32_t)(*sp->p - '0');
        if (n > (UINT32_MAX - d) / 10)
            return fail(sp, "Number too big");
        n = n * 10 + d;
    }
    *n_r = n;
    return 0;
}

/* Resolves "*" and orders the ends. Returns 1 when the range is kept, 0 when
 * it selects nothing (UIDs in an empty mailbox), -1 on error. */
static int resolve(struct seq_parser *sp, enum imap_seqset_kind kind, uint32_t max,
                   uint32_t a, uint32_t b, struct imap_range *out)
{
    if (a == STAR || b == STAR) {
        if (max == 0)
            return kind == IMAP_SEQSET_UID ? 0 : fail(sp, "No messages");
        if (a == STAR)
            a = max;
        if (b == STAR)
            b = max;
    }
    out->lo = a < b ? a : b;
    out->hi = a < b ? b : a;
    if (kind == IMAP_SEQSET_SEQ && out->hi > max)
        return fail(sp, "Message sequence number out of range");
    return 1;
}

static int cmp_range(const void *x, const void *y)
{
    const struct imap_range *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static size_t merge(struct imap_range *r, size_t n)
{
    if (n == 0)
        return 0;
    qsort(r, n, sizeof *r, cmp_range);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        /* hi < UINT32_MAX keeps hi + 1 from wrapping; at the top any later
         * range is contained anyway. */
        if (r[out].hi == UINT32_MAX || r[i].lo <= r[out].hi + 1) {
            if (r[i].hi > r[out].hi)
                r[out].hi = r[i].hi;
        } else {
            r[++out] = r[i];
        }
    }
    return out + 1;
}

static int parse_ranges(struct seq_parser *sp, enum imap_seqset_kind kind, uint32_t max,
                        size_t max_ranges, struct imap_seqset *set)
{
    size_t cap = 0, seen = 0;
    for (;;) {
        uint32_t a, b;
        if (++seen > max_ranges)
            return fail(sp, imap_seqset_too_many);
        if (parse_number(sp, &a) < 0)
            return -1;
        b = a;
        if (sp->p < sp->end && *sp->p == ':') {
            sp->p++;
            if (parse_number(sp, &b) < 0)
                return -1;
        }
        struct imap_range range;
        int kept = resolve(sp, kind, max, a, b, &range);
        if (kept < 0)
            return -1;
        if (kept) {
            if (set->count == cap) {
                cap = cap ? cap * 2 : 4;
                set->ranges = xrealloc(set->ranges, cap * sizeof *set->ranges);
            }
            set->ranges[set->count++] = range;
        }
        if (sp->p == sp->end)
            return 0;
        if (*sp->p != ',')
            return fail(sp, "Invalid character in sequence set");
        sp->p++;
    }
}

int imap_seqset_parse(const char *s, size_t len, enum imap_seqset_kind kind, uint32_t max,
                      size_t max_ranges, struct imap_seqset *set, const char **error_r)
{
    memset(set, 0, sizeof *set);
    if (len == 1 && s[0] == '$') {
        set->searchres = true;
        return 0;
    }
    struct seq_parser sp = { .p = s, .end = s + len };
    if (len == 0 || parse_ranges(&sp, kind, max, max_ranges, set) < 0) {
        *error_r = len == 0 ? "Empty sequence set" : sp.error;
        imap_seqset_free(set);
        return -1;
    }
    set->count = merge(set->ranges, set->count);
    return 0;
}

void imap_seqset_free(struct imap_seqset *set)
{
    free(set->ranges);
    memset(set, 0, sizeof *set);
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
    size_t lo = 0, hi = set->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (n < set->ranges[mid].lo)
            hi = mid;
        else if (n > set->ranges[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

uint64_t imap_seqset_count(const struct imap_seqset *set)
{
    uint64_t total = 0;
    for (size_t i = 0; i < set->count; i++)
        total += (uint64_t)set->ranges[i].hi - set->ranges[i].lo + 1;
    return total;
}

bool imap_seqset_format(const struct imap_range *ranges, size_t count, char *out,
                        size_t size, size_t *len_r)
{
    /* "4294967295:4294967295," is the longest piece. */
    char piece[2 * 10 + 3];
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        const struct imap_range *r = &ranges[i];
        int n = r->lo == r->hi
            ? snprintf(piece, sizeof piece, "%s%u", i ? "," : "", (unsigned)r->lo)
            : snprintf(piece, sizeof piece, "%s%u:%u", i ? "," : "", (unsigned)r->lo,
                       (unsigned)r->hi);
        if (len + (size_t)n < size)
            memcpy(out + len, piece, (size_t)n);
        len += (size_t)n;
    }
    *len_r = len;
    if (len >= size) {
        if (size > 0)
            out[0] = '\0';
        return false;
    }
    out[len] = '\0';
    return true;
}
