#include "binary_part.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the plan ---- */

struct builder {
    const struct mime_tree *t;
    struct bin_plan *p;
    uint64_t copy_start;      /* raw bytes from here on are not planned yet */
};

static struct bin_seg *add_seg(struct bin_plan *p, enum bin_seg_kind kind, uint64_t start, uint64_t end)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->segs = realloc(p->segs, p->cap * sizeof *p->segs);
        if (!p->segs)
            abort();
    }
    struct bin_seg *s = &p->segs[p->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->start = start;
    s->end = end;
    return s;
}

/* Plans the raw bytes from copy_start up to end. */
static void copy_to(struct builder *b, uint64_t end)
{
    if (end <= b->copy_start)
        return;
    struct bin_plan *p = b->p;
    struct bin_seg *last = p->n ? &p->segs[p->n - 1] : NULL;
    if (last && last->kind == BIN_RAW && last->end == b->copy_start) {
        last->end = end;
        last->size = end - last->start;
    } else {
        struct bin_seg *s = add_seg(p, BIN_RAW, b->copy_start, end);
        s->size = end - s->start;
        s->sized = true;
    }
    b->copy_start = end;
}

static bool converts(enum cte cte)
{
    return cte == CTE_BASE64 || cte == CTE_QP;
}

/* Dovecot's add_binary_part(): the header if asked for, then the children,
 * or the body of a leaf. */
static int add_part(struct builder *b, unsigned idx, bool include_hdr)
{
    const struct mime_part *m = &b->t->parts[idx];
    enum cte cte = cte_parse(m->encoding);
    if (cte == CTE_UNKNOWN)
        return -1;
    bool sized = (m->flags & MIME_PART_BIN_SIZES) != 0;
    if (m->flags & MIME_PART_HAS_NULS)
        b->p->has_nuls = true;
    if (include_hdr && converts(cte)) {
        copy_to(b, m->hdr_off);
        struct bin_seg *s = add_seg(b->p, BIN_HEADER, m->hdr_off, m->body_off);
        /* A header cut by a boundary is counted, not sized: trees stored
         * before 9cd053c counted the newline the boundary took. */
        if (sized && !(m->flags & MIME_PART_HDR_TRUNCATED) && m->bin_cte_len <= m->body_off - m->hdr_off) {
            s->size = m->body_off - m->hdr_off - m->bin_cte_len + BINARY_CTE_FIELD_LEN;
            s->sized = true;
        }
        b->copy_start = m->body_off;
    } else if (!include_hdr) {
        b->copy_start = m->body_off;
    }
    if (m->first_child >= 0) {
        for (int c = m->first_child; c >= 0; c = b->t->parts[c].next)
            if (add_part(b, (unsigned)c, true) < 0)
                return -1;
        copy_to(b, m->end_off);
        return 0;
    }
    /* A multipart without parts (no boundary found) is not decoded: RFC 2045
     * 6.4 allows it no encoding, and the parser counts only leaves. */
    if (m->end_off == m->body_off || !converts(cte) || (m->flags & MIME_PART_MULTIPART)) {
        copy_to(b, m->end_off);
        return 0;
    }
    copy_to(b, m->body_off);
    struct bin_seg *s = add_seg(b->p, BIN_BODY, m->body_off, m->end_off);
    s->cte = cte;
    if (sized) {
        s->size = m->bin_size;
        s->sized = true;
    }
    b->copy_start = m->end_off;
    b->p->converted = true;
    return 0;
}

int bin_plan_build(const struct mime_tree *t, unsigned idx, bool include_hdr, struct bin_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (idx >= t->count)
        return 0;
    const struct mime_part *m = &t->parts[idx];
    struct builder b = { t, plan, include_hdr ? m->hdr_off : m->body_off };
    plan->start = b.copy_start;
    plan->end = m->end_off;
    if (add_part(&b, idx, include_hdr) < 0) {
        bin_plan_free(plan);
        return -1;
    }
    if (!plan->converted) {   /* nothing decoded: the section exactly as stored */
        plan->n = 0;
        if (plan->end > plan->start) {
            struct bin_seg *s = add_seg(plan, BIN_RAW, plan->start, plan->end);
            s->size = plan->end - plan->start;
            s->sized = true;
        }
    }
    return 0;
}

void bin_plan_free(struct bin_plan *plan)
{
    free(plan->segs);
    memset(plan, 0, sizeof *plan);
}

bool bin_plan_size(const struct bin_plan *plan, uint64_t *size_r)
{
    uint64_t total = 0;
    for (size_t i = 0; i < plan->n; i++) {
        if (!plan->segs[i].sized)
            return false;
        total += plan->segs[i].size;
    }
    *size_r = total;
    return true;
}

/* ---- rewriting a header ---- */

enum { H_LINE_START, H_NAME, H_KEEP, H_DROP, H_CR_AT_START, H_DONE };

static void hdr_emit(struct buf *out, size_t *n, const char *p, size_t len)
{
    if (out && len)
        buf_append(out, p, len);
    *n += len;
}

static void hdr_insert(struct hdr_rewrite *h, struct buf *out, size_t *n)
{
    if (!h->inserted)
        hdr_emit(out, n, BINARY_CTE_FIELD, BINARY_CTE_FIELD_LEN);
    h->inserted = true;
}

/* The name in held[] is complete (up to a colon, or it cannot be one). The
 * MIME parser counts the dropped bytes by the same rule (bin_cte_len). */
static void hdr_decide(struct hdr_rewrite *h, struct buf *out, size_t *n)
{
    h->dropping = cte_field_starts(h->held, h->nheld);
    h->state = h->dropping ? H_DROP : H_KEEP;
    if (!h->dropping)
        hdr_emit(out, n, h->held, h->nheld);
    h->nheld = 0;
}

static size_t hdr_feed(struct hdr_rewrite *h, const char *p, size_t len, struct buf *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        switch (h->state) {
        case H_LINE_START:
            if (c == ' ' || c == '\t') {   /* a continuation of the field before */
                h->state = h->dropping ? H_DROP : H_KEEP;
                i--;
            } else if (c == '\n') {        /* the blank line: the header ends */
                hdr_insert(h, out, &n);
                hdr_emit(out, &n, "\n", 1);
                h->state = H_DONE;
            } else if (c == '\r') {
                h->state = H_CR_AT_START;
            } else {
                h->state = H_NAME;
                i--;
            }
            continue;
        case H_CR_AT_START:
            if (c == '\n') {
                hdr_insert(h, out, &n);
                hdr_emit(out, &n, "\r\n", 2);
                h->state = H_DONE;
                continue;
            }
            h->held[0] = '\r';   /* a line that starts with a bare CR: a field */
            h->nheld = 1;
            h->state = H_NAME;
            i--;
            continue;
        case H_NAME:
            if (c == '\n' || h->nheld == sizeof h->held) {
                hdr_decide(h, out, &n);
                i--;
                continue;
            }
            h->held[h->nheld++] = c;
            if (c == ':')
                hdr_decide(h, out, &n);
            continue;
        case H_KEEP:
        case H_DROP: {
            const char *lf = memchr(p + i, '\n', len - i);
            size_t upto = lf ? (size_t)(lf - p) + 1 : len;
            if (h->state == H_KEEP)
                hdr_emit(out, &n, p + i, upto - i);
            if (lf)
                h->state = H_LINE_START;
            i = upto - 1;
            continue;
        }
        default:   /* after the blank line: nothing more belongs to the header */
            hdr_emit(out, &n, p + i, len - i);
            return n;
        }
    }
    return n;
}

static size_t hdr_finish(struct hdr_rewrite *h, struct buf *out)
{
    size_t n = 0;
    if (h->state == H_CR_AT_START)
        hdr_emit(out, &n, "\r", 1);
    else if (h->state == H_NAME)
        hdr_decide(h, out, &n);
    hdr_insert(h, out, &n);   /* no blank line (a header cut by a boundary) */
    return n;
}

/* ---- the transformation ---- */

void bin_transform_begin(struct bin_transform *x, const struct bin_seg *seg)
{
    memset(x, 0, sizeof *x);
    x->seg = seg;
    if (seg->kind == BIN_BODY)
        cte_decoder_init(&x->dec, seg->cte);
}

size_t bin_transform_feed(struct bin_transform *x, const char *raw, size_t n, struct buf *out)
{
    switch (x->seg->kind) {
    case BIN_BODY:
        return cte_decode(&x->dec, raw, n, out);
    case BIN_HEADER:
        return hdr_feed(&x->hdr, raw, n, out);
    default:
        if (out)
            buf_append(out, raw, n);
        return n;
    }
}

size_t bin_transform_end(struct bin_transform *x, struct buf *out)
{
    switch (x->seg->kind) {
    case BIN_BODY:
        return cte_decode_finish(&x->dec, out);
    case BIN_HEADER:
        return hdr_finish(&x->hdr, out);
    default:
        return 0;
    }
}

bool bin_section_valid(const char *s)
{
    if (!*s)
        return true;
    for (;;) {
        if (*s < '1' || *s > '9')
            return false;
        size_t digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 9)
                return false;
            s++;
        }
        if (!*s)
            return true;
        if (*s++ != '.')
            return false;
    }
}
