/* The stored form of a part tree and section lookup.
 *
 * Format: "PMT1", varint part count, then per part in document order:
 *   varints  hdr_off, body_off - hdr_off, end_off - body_off,
 *            hdr_vsize, body_vsize, hdr_lines, body_lines, flags, parent + 1
 *   strings  type, subtype, params (varint n, then n name/value pairs), id,
 *            description, encoding, md5, disposition, disposition params,
 *            languages (varint n, n strings), location, envelope
 *   varints  bin_size, bin_cte_len: only when flags has MIME_PART_BIN_SIZES
 *            (older trees lack both)
 * A string is varint (length + 1) then the bytes; 0 means NULL. Children
 * links and depths are rebuilt from the parent indexes. */
#include "mime/mime_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAGIC "PMT1"

static void put_varint(struct buf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    do {
        unsigned char c = v & 0x7F;
        v >>= 7;
        t[n++] = c | (v ? 0x80 : 0);
    } while (v);
    buf_append(b, t, n);
}

static void put_str(struct buf *b, const char *s)
{
    if (!s) {
        put_varint(b, 0);
        return;
    }
    size_t n = strlen(s);
    put_varint(b, (uint64_t)n + 1);
    buf_append(b, s, n);
}

static void put_params(struct buf *b, const struct mime_param *p, unsigned n)
{
    put_varint(b, n);
    for (unsigned i = 0; i < n; i++) {
        put_str(b, p[i].name);
        put_str(b, p[i].value);
    }
}

void mime_tree_encode(const struct mime_tree *t, struct buf *out)
{
    buf_append(out, MAGIC, 4);
    put_varint(out, t->count);
    for (unsigned i = 0; i < t->count; i++) {
        const struct mime_part *p = &t->parts[i];
        put_varint(out, p->hdr_off);
        put_varint(out, p->body_off - p->hdr_off);
        put_varint(out, p->end_off - p->body_off);
        put_varint(out, p->hdr_vsize);
        put_varint(out, p->body_vsize);
        put_varint(out, p->hdr_lines);
        put_varint(out, p->body_lines);
        put_varint(out, p->flags);
        put_varint(out, (uint64_t)(p->parent + 1));
        put_str(out, p->type);
        put_str(out, p->subtype);
        put_params(out, p->params, p->nparams);
        put_str(out, p->id);
        put_str(out, p->description);
        put_str(out, p->encoding);
        put_str(out, p->md5);
        put_str(out, p->disposition);
        put_params(out, p->disp_params, p->ndisp_params);
        put_varint(out, p->nlanguage);
        for (unsigned k = 0; k < p->nlanguage; k++)
            put_str(out, p->language[k]);
        put_str(out, p->location);
        put_str(out, p->envelope);
        if (p->flags & MIME_PART_BIN_SIZES) {
            put_varint(out, p->bin_size);
            put_varint(out, p->bin_cte_len);
        }
    }
}

struct rd {
    const unsigned char *p, *end;
    bool bad;
};

static uint64_t get_varint(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static char *get_str(struct rd *r)
{
    uint64_t n = get_varint(r);
    if (r->bad || n == 0)
        return NULL;
    n--;
    if (n > (uint64_t)(r->end - r->p) || memchr(r->p, '\0', n)) {
        r->bad = true;
        return NULL;
    }
    char *s = mime_xstrndup((const char *)r->p, n);
    r->p += n;
    return s;
}

static unsigned get_count(struct rd *r, size_t min_bytes_each)
{
    uint64_t n = get_varint(r);
    if (r->bad || n > (uint64_t)(r->end - r->p) / min_bytes_each) {
        r->bad = true;
        return 0;
    }
    return (unsigned)n;
}

static void get_params(struct rd *r, struct mime_param **out, unsigned *count)
{
    unsigned n = get_count(r, 2);
    *out = NULL;
    *count = 0;
    if (r->bad || n == 0)
        return;
    *out = mime_xmalloc(n * sizeof **out);
    for (unsigned i = 0; i < n; i++) {
        (*out)[i].name = get_str(r);
        (*out)[i].value = get_str(r);
        *count = i + 1;
        if (r->bad || !(*out)[i].name || !(*out)[i].value) {
            r->bad = true;
            return;
        }
    }
}

int mime_tree_decode(const void *data, size_t len, struct mime_tree *t)
{
    struct rd r = { data, (const unsigned char *)data + len, false };
    memset(t, 0, sizeof *t);
    if (len < 4 || memcmp(data, MAGIC, 4) != 0)
        return -1;
    r.p += 4;
    /* a part takes at least 20 bytes */
    unsigned n = get_count(&r, 20);
    if (r.bad || n == 0)
        return -1;
    t->parts = mime_xmalloc(n * sizeof *t->parts);
    t->cap = n;
    int32_t *last = mime_xmalloc(n * sizeof *last);
    for (unsigned i = 0; i < n && !r.bad; i++) {
        struct mime_part *p = &t->parts[i];
        memset(p, 0, sizeof *p);
        t->count = i + 1;
        p->first_child = p->next = -1;
        last[i] = -1;
        uint64_t h = get_varint(&r), hs = get_varint(&r), bs = get_varint(&r);
        p->hdr_vsize = get_varint(&r);
        p->body_vsize = get_varint(&r);
        uint64_t hl = get_varint(&r), bl = get_varint(&r), fl = get_varint(&r), par = get_varint(&r);
        if (r.bad || hl > UINT32_MAX || bl > UINT32_MAX || fl > UINT32_MAX || hs > UINT64_MAX / 4 ||
            bs > UINT64_MAX / 4 || h > UINT64_MAX / 4) {
            r.bad = true;
            break;
        }
        p->hdr_off = h;
        p->body_off = h + hs;
        p->end_off = p->body_off + bs;
        p->hdr_lines = (uint32_t)hl;
        p->body_lines = (uint32_t)bl;
        p->flags = (uint32_t)fl;
        p->parent = (int32_t)par - 1;
        if ((i == 0) != (par == 0) || par > i) {
            r.bad = true;
            break;
        }
        if (p->parent >= 0) {
            struct mime_part *pp = &t->parts[p->parent];
            if (p->hdr_off < pp->body_off || p->end_off > pp->end_off ||
                !(pp->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))) {
                r.bad = true;
                break;
            }
            p->depth = pp->depth + 1;
            if (last[p->parent] < 0) {
                pp->first_child = (int32_t)i;
            } else {
                const struct mime_part *prev = &t->parts[last[p->parent]];
                if (p->hdr_off < prev->end_off) {
                    r.bad = true;
                    break;
                }
                t->parts[last[p->parent]].next = (int32_t)i;
            }
            last[p->parent] = (int32_t)i;
        } else if (p->hdr_off != 0) {
            r.bad = true;
            break;
        }
        p->type = get_str(&r);
        p->subtype = get_str(&r);
        get_params(&r, &p->params, &p->nparams);
        p->id = get_str(&r);
        p->description = get_str(&r);
        p->encoding = get_str(&r);
        p->md5 = get_str(&r);
        p->disposition = get_str(&r);
        get_params(&r, &p->disp_params, &p->ndisp_params);
        unsigned nl = get_count(&r, 1);
        if (nl) {
            p->language = mime_xmalloc(nl * sizeof *p->language);
            for (unsigned k = 0; k < nl && !r.bad; k++) {
                p->language[k] = get_str(&r);
                p->nlanguage = k + 1;
                if (!p->language[k])
                    r.bad = true;
            }
        }
        p->location = get_str(&r);
        p->envelope = get_str(&r);
        if (p->flags & MIME_PART_BIN_SIZES) {
            p->bin_size = get_varint(&r);
            uint64_t cl = get_varint(&r);
            if (cl > UINT32_MAX)
                r.bad = true;
            p->bin_cte_len = (uint32_t)cl;
        }
    }
    free(last);
    if (r.bad || r.p != r.end) {
        mime_tree_free(t);
        return -1;
    }
    /* a message/rfc822 part has exactly one child */
    for (unsigned i = 0; i < t->count; i++) {
        const struct mime_part *p = &t->parts[i];
        if ((p->flags & MIME_PART_MESSAGE) && (p->first_child < 0 || t->parts[p->first_child].next >= 0)) {
            mime_tree_free(t);
            return -1;
        }
    }
    return 0;
}

/* ---- sections ---- */

static bool word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* A multipart without parts is shown with one empty text/plain part
 * (EMPTY_BODYSTRUCTURE, as Dovecot); rest is what follows its number "1".
 * Dovecot answers that part and its MIME, HEADER and TEXT with "". */
static int placeholder_section(const struct mime_tree *t, int multipart, const char *rest,
                               struct mime_range *out)
{
    enum mime_section_kind kind;
    if (!*rest)
        kind = MIME_SECTION_ALL;
    else if (strcasecmp(rest, ".MIME") == 0)
        kind = MIME_SECTION_MIME;
    else if (strcasecmp(rest, ".TEXT") == 0)
        kind = MIME_SECTION_TEXT;
    else if (strncasecmp(rest, ".HEADER", 7) == 0 && (!rest[7] || rest[7] == '.'))
        kind = MIME_SECTION_HEADER;
    else
        return -1;
    out->kind = kind;
    out->part = multipart;
    out->start = out->end = t->parts[multipart].end_off;
    return 0;
}

int mime_find_section(const struct mime_tree *t, const char *section, struct mime_range *out)
{
    if (!t->count)
        return -1;
    const char *s = section;
    int ctx = 0;          /* part whose children the next number indexes */
    int target = -1;      /* part named by the numbers so far */
    bool numbers = false;

    while (isdigit((unsigned char)*s)) {
        uint64_t n = 0;
        while (isdigit((unsigned char)*s)) {
            n = n * 10 + (uint64_t)(*s - '0');
            if (n > UINT32_MAX)
                return -1;
            s++;
        }
        if (n == 0)
            return -1;
        const struct mime_part *c = &t->parts[ctx];
        if (c->flags & MIME_PART_MULTIPART) {
            int k = c->first_child;
            for (uint64_t j = 1; j < n && k >= 0; j++)
                k = t->parts[k].next;
            if (k < 0 && n == 1 && c->first_child < 0)
                return placeholder_section(t, ctx, s, out);
            if (k < 0)
                return -1;
            target = k;
        } else if (n == 1 && (!numbers || t->parts[ctx].parent < 0 ||
                              (t->parts[t->parts[ctx].parent].flags & MIME_PART_MESSAGE))) {
            /* a message that is not multipart: part 1 is its body */
            target = ctx;
        } else {
            return -1;
        }
        numbers = true;
        /* the numbers after a message/rfc822 index its embedded message */
        const struct mime_part *tp = &t->parts[target];
        if ((tp->flags & MIME_PART_MESSAGE) && tp->first_child >= 0)
            ctx = tp->first_child;
        else if (tp->flags & MIME_PART_MULTIPART)
            ctx = target;
        else
            ctx = -1;
        if (*s != '.')
            break;
        if (!isdigit((unsigned char)s[1])) {
            s++;
            break;
        }
        s++;
        if (ctx < 0)
            return -1;
    }

    size_t wl = 0;
    while (s[wl] && s[wl] != '.' && s[wl] != ' ')
        wl++;
    /* the message whose HEADER/TEXT is meant */
    int msg = 0;
    if (numbers) {
        const struct mime_part *tp = &t->parts[target];
        msg = (tp->flags & MIME_PART_MESSAGE) ? tp->first_child : -1;
    }
    if (wl == 0) {
        if (*s)
            return -1;
        const struct mime_part *p = &t->parts[numbers ? target : 0];
        out->kind = MIME_SECTION_ALL;
        out->part = numbers ? target : 0;
        out->start = numbers ? p->body_off : p->hdr_off;
        out->end = p->end_off;
        return 0;
    }
    if (word_is(s, wl, "MIME")) {
        if (!numbers || s[wl])
            return -1;
        const struct mime_part *p = &t->parts[target];
        out->kind = MIME_SECTION_MIME;
        out->part = target;
        out->start = p->hdr_off;
        out->end = p->body_off;
        return 0;
    }
    bool header = word_is(s, wl, "HEADER");
    if (!header && !word_is(s, wl, "TEXT"))
        return -1;
    if (!header && s[wl])
        return -1;
    if (header && s[wl] && s[wl] != '.')
        return -1;
    if (msg < 0) {
        /* HEADER/TEXT after a part that is not message/rfc822: RFC 3501
         * 6.4.5 defines them only for such parts and leaves the answer
         * open; Dovecot answers an empty string, and so do we. */
        const struct mime_part *p = &t->parts[target];
        out->kind = header ? MIME_SECTION_HEADER : MIME_SECTION_TEXT;
        out->part = target;
        out->start = out->end = p->body_off;
        return 0;
    }
    const struct mime_part *m = &t->parts[msg];
    out->part = msg;
    if (header) {
        out->kind = MIME_SECTION_HEADER;
        out->start = m->hdr_off;
        out->end = m->body_off;
    } else {
        out->kind = MIME_SECTION_TEXT;
        out->start = m->body_off;
        out->end = m->end_off;
    }
    return 0;
}
