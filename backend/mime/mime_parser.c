/* The incremental MIME structure parser.
 *
 * The input is read as lines. At the start of each line the parser collects
 * up to LP_MAX bytes (or the whole line, if shorter) to decide whether it is
 * a boundary line; everything else is accounted with memchr-sized steps and
 * never buffered, except header bytes (up to max_header_bytes) that are
 * parsed when the header ends. Line and CRLF counts come from global
 * counters sampled at region starts, so a part's counts cost nothing extra
 * when many nested parts end at the same boundary.
 *
 * Boundary rules (Dovecot's message-parser.c): a line "--X..." is a boundary
 * when X starts with an active boundary (the longest match wins; among equal
 * lengths the innermost). The [CR]LF before the line belongs to the boundary
 * unless the line is the first of its region (a header, body or epilogue
 * start). "--X--" closes that multipart; the multipart then continues with
 * its epilogue until an outer boundary or the end. A boundary of an outer
 * multipart closes every part inside it. */
#include "mime/mime_internal.h"

#include "cte_decode.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "--" + boundary + "--" */
#define LP_MAX (2 + MIME_BOUNDARY_MAX + 2)

struct bnd {
    char b[MIME_BOUNDARY_MAX];
    size_t len;
    unsigned part;
};

struct pstat {
    uint64_t lf_hdr, bare_hdr, lf_body, bare_body;
    int32_t last_child;
};

enum state { S_HEADER, S_BODY };

struct mime_parser {
    struct mime_limits lim;
    struct mime_tree tree;
    struct pstat *ps;
    unsigned cur;
    enum state st;
    bool finished;

    uint64_t off;          /* absolute offset of the next byte */
    uint64_t lf, bare;     /* LFs, and LFs without a CR before them, before off */
    unsigned char last, last2;

    /* the current line */
    uint64_t line_start, line_lf, line_bare;
    bool line_prev_cr;     /* the LF ending the previous line had a CR before it */
    unsigned char lp[LP_MAX];
    size_t lp_len;
    bool decided;          /* the boundary question is settled for this line */
    bool in_bline;         /* the rest of this line is a boundary line's tail */
    bool bline_new_part;   /* after that line, a new part of bline_owner starts */
    unsigned bline_owner;
    uint64_t region_start;

    struct bnd *bnds;
    unsigned nb, bcap;

    /* header of the current part */
    struct buf hdr;
    size_t hdr_mark;       /* hdr length at the start of the current line */
    unsigned hdr_nlines;
    bool hdr_capped;

    /* searchable text */
    mime_text_fn *text_fn;
    void *text_ctx;
    struct buf text;       /* used when no sink is set */
    size_t text_total;
    bool text_full;
    struct mime_text_dec *dec;
    unsigned dec_part;

    /* IMAP BINARY: the decoded size of the current base64/QP leaf. The
     * last two bytes fed are held back: they may be the line end before a
     * boundary, which is not part of the body. */
    bool bin_on;
    unsigned bin_part;
    struct cte_decoder bin;
    uint64_t bin_fed, bin_size;
    char bin_held[2];
    size_t bin_nheld;
    struct buf dec_out;
    struct buf scratch, scratch2;
};

/* ---- searchable text ---- */

static void text_emit(struct mime_parser *p, enum mime_text_kind kind, unsigned part,
                      const char *name, const char *data, size_t len)
{
    /* A header field with an empty value still counts: SEARCH FROM ""
     * matches every message that has a From field (Dovecot 2.3). */
    if (p->text_full || (len == 0 && kind == MIME_TEXT_BODY))
        return;
    size_t room = p->lim.max_text - p->text_total;
    if (len > room) {
        len = room;
        /* do not cut a UTF-8 sequence */
        while (len > 0 && ((unsigned char)data[len] & 0xC0) == 0x80)
            len--;
        p->text_full = true;
    }
    if (len == 0 && (kind == MIME_TEXT_BODY || p->text_full))
        return;
    p->text_total += len;
    if (p->text_fn) {
        p->text_fn(p->text_ctx, kind, part, name, data, len);
        return;
    }
    if (kind == MIME_TEXT_HEADER) {
        buf_puts(&p->text, name);
        buf_puts(&p->text, ": ");
        buf_append(&p->text, data, len);
        buf_append(&p->text, "\n", 1);
    } else {
        buf_append(&p->text, data, len);
    }
}

static void dec_flush(struct mime_parser *p)
{
    if (buf_len(&p->dec_out)) {
        text_emit(p, MIME_TEXT_BODY, p->dec_part, NULL, buf_head(&p->dec_out), buf_len(&p->dec_out));
        buf_reset(&p->dec_out);
    }
}

static void dec_end(struct mime_parser *p)
{
    if (!p->dec)
        return;
    mime_text_dec_finish(p->dec, &p->dec_out);
    if (buf_len(&p->dec_out))
        buf_append(&p->dec_out, "\n", 1);
    dec_flush(p);
    mime_text_dec_free(p->dec);
    p->dec = NULL;
}

static void bin_feed(struct mime_parser *p, const char *data, size_t len)
{
    if (!p->bin_on || len == 0)
        return;
    if (len >= 2) {
        p->bin_size += cte_decode(&p->bin, p->bin_held, p->bin_nheld, NULL);
        p->bin_size += cte_decode(&p->bin, data, len - 2, NULL);
        p->bin_fed += p->bin_nheld + len - 2;
        memcpy(p->bin_held, data + len - 2, 2);
        p->bin_nheld = 2;
    } else if (p->bin_nheld < 2) {
        p->bin_held[p->bin_nheld++] = data[0];
    } else {
        p->bin_size += cte_decode(&p->bin, p->bin_held, 1, NULL);
        p->bin_fed++;
        p->bin_held[0] = p->bin_held[1];
        p->bin_held[1] = data[0];
    }
}

static void body_text(struct mime_parser *p, const void *data, size_t len)
{
    bin_feed(p, data, len);
    if (!p->dec || p->text_full || len == 0)
        return;
    mime_text_dec_feed(p->dec, data, len, &p->dec_out);
    dec_flush(p);
}

/* ---- tree ---- */

static struct mime_part *P(struct mime_parser *p, unsigned i) { return &p->tree.parts[i]; }

static unsigned new_part(struct mime_parser *p, int parent, uint64_t off)
{
    struct mime_tree *t = &p->tree;
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->parts = mime_xrealloc(t->parts, t->cap * sizeof *t->parts);
        p->ps = mime_xrealloc(p->ps, t->cap * sizeof *p->ps);
    }
    unsigned idx = t->count++;
    struct mime_part *m = &t->parts[idx];
    memset(m, 0, sizeof *m);
    m->hdr_off = m->body_off = m->end_off = off;
    m->parent = parent;
    m->first_child = m->next = -1;
    p->ps[idx] = (struct pstat){ p->lf, p->bare, p->lf, p->bare, -1 };
    if (parent >= 0) {
        struct mime_part *par = &t->parts[parent];
        m->depth = par->depth + 1;
        if (par->flags & MIME_PART_MULTIPART)
            m->flags |= MIME_PART_IS_MIME;
        if (p->ps[parent].last_child < 0)
            par->first_child = (int32_t)idx;
        else
            t->parts[p->ps[parent].last_child].next = (int32_t)idx;
        p->ps[parent].last_child = (int32_t)idx;
    }
    if (t->count >= p->lim.max_parts) {
        /* no more parts: this one takes the rest of the message */
        m->flags |= MIME_PART_OVERFLOW;
        p->nb = 0;
    }
    buf_reset(&p->hdr);
    p->hdr_mark = 0;
    p->hdr_nlines = 0;
    p->hdr_capped = false;
    return idx;
}

static void free_part_fields(struct mime_part *m)
{
    free(m->type);
    free(m->subtype);
    mime_params_free(m->params, m->nparams);
    free(m->id);
    free(m->description);
    free(m->encoding);
    free(m->md5);
    free(m->disposition);
    mime_params_free(m->disp_params, m->ndisp_params);
    for (unsigned i = 0; i < m->nlanguage; i++)
        free(m->language[i]);
    free(m->language);
    free(m->location);
    free(m->envelope);
}

static void clear_content_fields(struct mime_part *m)
{
    char *env = m->envelope;
    m->envelope = NULL;
    free_part_fields(m);
    m->type = m->subtype = m->id = m->description = m->encoding = m->md5 = NULL;
    m->disposition = m->location = NULL;
    m->params = m->disp_params = NULL;
    m->nparams = m->ndisp_params = m->nlanguage = 0;
    m->language = NULL;
    m->envelope = env;
}

void mime_tree_free(struct mime_tree *t)
{
    for (unsigned i = 0; i < t->count; i++)
        free_part_fields(&t->parts[i]);
    free(t->parts);
    memset(t, 0, sizeof *t);
}

/* ---- header fields ---- */

static void parse_content_type(struct mime_part *m, const struct mime_field *f, struct buf *s)
{
    struct rfc822 r;
    rfc822_init(&r, f->value, f->value_len, NULL);
    rfc822_skip_lwsp(&r);
    buf_reset(s);
    int ret = rfc822_content_type(&r, s);
    const char *v = buf_len(s) ? buf_head(s) : "";
    size_t n = buf_len(s);
    const char *slash = memchr(v, '/', n);
    if (slash) {
        m->type = mime_xstrndup(v, (size_t)(slash - v));
        m->subtype = mime_xstrndup(slash + 1, n - (size_t)(slash - v) - 1);
    } else {
        m->type = mime_xstrndup(v, n);
    }
    if (ret < 0)
        return;
    mime_params_parse(&r, &m->params, &m->nparams);
}

static void parse_disposition(struct mime_part *m, const struct mime_field *f, struct buf *s)
{
    struct rfc822 r;
    rfc822_init(&r, f->value, f->value_len, NULL);
    rfc822_skip_lwsp(&r);
    buf_reset(s);
    if (rfc822_mime_token(&r, s) < 0)
        return;
    free(m->disposition);
    mime_params_free(m->disp_params, m->ndisp_params);
    m->disposition = mime_buf_strdup(s);
    mime_params_parse(&r, &m->disp_params, &m->ndisp_params);
}

static void parse_language(struct mime_part *m, const struct mime_field *f, struct buf *s)
{
    struct rfc822 r;
    rfc822_init(&r, f->value, f->value_len, NULL);
    rfc822_skip_lwsp(&r);
    unsigned cap = 0;
    for (;;) {
        buf_reset(s);
        if (rfc822_atom(&r, s) < 0)
            break;
        if (m->nlanguage == cap) {
            cap = cap ? cap * 2 : 4;
            m->language = mime_xrealloc(m->language, cap * sizeof *m->language);
        }
        m->language[m->nlanguage++] = mime_buf_strdup(s);
        if (r.p == r.end || *r.p != ',' || m->nlanguage >= 256)
            break;
        r.p++;
        rfc822_skip_lwsp(&r);
    }
}

static void parse_encoding(struct mime_part *m, const struct mime_field *f, struct buf *s)
{
    struct rfc822 r;
    rfc822_init(&r, f->value, f->value_len, NULL);
    rfc822_skip_lwsp(&r);
    buf_reset(s);
    if (rfc822_mime_token(&r, s) >= 0 && rfc822_skip_lwsp(&r) == 0 && buf_len(s) > 0)
        m->encoding = mime_buf_strdup(s);
}

static const char *param_get(const struct mime_param *ps, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (strcasecmp(ps[i].name, name) == 0)
            return ps[i].value;
    return NULL;
}

static bool is_message_header(struct mime_parser *p, unsigned idx)
{
    const struct mime_part *m = P(p, idx);
    return m->parent < 0 || (P(p, (unsigned)m->parent)->flags & MIME_PART_MESSAGE);
}

static void header_text(struct mime_parser *p, unsigned idx, const struct mime_field *f, bool message)
{
    if (p->text_full)
        return;
    bool want = message || mime_field_is(f, "Content-Description") ||
                mime_field_is(f, "Content-Disposition") || mime_field_is(f, "Content-Type");
    if (!want)
        return;
    char name[128];
    size_t nl = f->name_len < sizeof name - 1 ? f->name_len : sizeof name - 1;
    memcpy(name, f->name, nl);
    name[nl] = '\0';
    buf_reset(&p->scratch2);
    mime_decode_header_value(&p->scratch2, f->value, f->value_len);
    text_emit(p, MIME_TEXT_HEADER, idx, name, buf_head(&p->scratch2) ? buf_head(&p->scratch2) : "",
              buf_len(&p->scratch2));
}

/* Header bytes of Content-Transfer-Encoding fields, continuation lines
 * included: what BINARY's header rewrite drops (binary_part.c hdr_feed,
 * same rule). */
static uint32_t cte_fields_len(const char *h, size_t n)
{
    uint64_t total = 0;
    bool dropping = false;
    for (size_t i = 0; i < n;) {
        const char *lf = memchr(h + i, '\n', n - i);
        size_t end = lf ? (size_t)(lf - h) + 1 : n;
        if (h[i] != ' ' && h[i] != '\t')
            dropping = cte_field_starts(h + i, end - i);
        if (dropping)
            total += end - i;
        i = end;
    }
    return total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
}

static void bin_start(struct mime_parser *p, unsigned idx)
{
    enum cte cte = cte_parse(P(p, idx)->encoding);
    if (cte != CTE_BASE64 && cte != CTE_QP)
        return;
    cte_decoder_init(&p->bin, cte);
    p->bin_on = true;
    p->bin_part = idx;
    p->bin_fed = p->bin_size = 0;
    p->bin_nheld = 0;
}

/* The leaf being counted has ended: of the held bytes, only those before
 * its end belong to it. */
static void bin_end(struct mime_parser *p)
{
    if (!p->bin_on)
        return;
    p->bin_on = false;
    struct mime_part *m = P(p, p->bin_part);
    uint64_t len = m->end_off - m->body_off;
    uint64_t rest = len > p->bin_fed ? len - p->bin_fed : 0;
    if (rest > p->bin_nheld) {
        m->flags &= ~(uint32_t)MIME_PART_BIN_SIZES;   /* cannot happen; BINARY then counts */
        return;
    }
    p->bin_size += cte_decode(&p->bin, p->bin_held, (size_t)rest, NULL);
    p->bin_size += cte_decode_finish(&p->bin, NULL);
    m->bin_size = p->bin_size;
}

/* The header of part idx is complete: fill its fields and flags. */
static void process_header(struct mime_parser *p, unsigned idx)
{
    struct mime_part *m = P(p, idx);
    const char *h = buf_head(&p->hdr) ? buf_head(&p->hdr) : "";
    size_t hl = buf_len(&p->hdr);
    bool is_mime = (m->flags & MIME_PART_IS_MIME) != 0, seen_ct = false;
    bool message = is_message_header(p, idx);
    struct mime_field f;
    size_t pos = 0;

    while (mime_field_next(h, hl, &pos, &p->scratch, &f)) {
        header_text(p, idx, &f, message);
        if (mime_field_is(&f, "MIME-Version")) {
            is_mime = true;
            continue;
        }
        if (f.name_len < 8 || strncasecmp(f.name, "Content-", 8) != 0)
            continue;
        if (mime_field_is(&f, "Content-Type")) {
            is_mime = true;
            if (!seen_ct) {
                seen_ct = true;
                parse_content_type(m, &f, &p->scratch2);
            }
        } else if (mime_field_is(&f, "Content-Transfer-Encoding")) {
            if (!m->encoding)
                parse_encoding(m, &f, &p->scratch2);
        } else if (mime_field_is(&f, "Content-ID")) {
            if (!m->id)
                m->id = mime_xstrndup(f.value, f.value_len);
        } else if (mime_field_is(&f, "Content-Description")) {
            if (!m->description)
                m->description = mime_xstrndup(f.value, f.value_len);
        } else if (mime_field_is(&f, "Content-MD5")) {
            if (!m->md5)
                m->md5 = mime_xstrndup(f.value, f.value_len);
        } else if (mime_field_is(&f, "Content-Location")) {
            if (!m->location)
                m->location = mime_xstrndup(f.value, f.value_len);
        } else if (mime_field_is(&f, "Content-Language")) {
            if (m->nlanguage == 0)
                parse_language(m, &f, &p->scratch2);
        } else if (mime_field_is(&f, "Content-Disposition")) {
            /* Dovecot replaces a disposition that had no parameters */
            if (m->ndisp_params == 0)
                parse_disposition(m, &f, &p->scratch2);
        }
    }
    if (message) {
        buf_reset(&p->scratch2);
        mime_envelope_from_header(&p->scratch2, h, hl);
        free(m->envelope);
        m->envelope = mime_buf_strdup(&p->scratch2);
    }
    if (is_mime)
        m->flags |= MIME_PART_IS_MIME;
    else
        clear_content_fields(m);
    if (!(m->flags & MIME_PART_HDR_CAPPED)) {
        /* Over the bytes BINARY rewrites, [hdr_off, body_off): a header cut
         * by a boundary gives its last newline to the boundary, and a
         * Content-Transfer-Encoding field last in it loses that newline. */
        uint64_t region = m->body_off - m->hdr_off;
        m->bin_cte_len = cte_fields_len(h, hl < region ? hl : (size_t)region);
        m->flags |= MIME_PART_BIN_SIZES;
    }

    if (m->type && is_mime) {
        size_t tl = strlen(m->type);
        if (strcasecmp(m->type, "message") == 0 && m->subtype && strcasecmp(m->subtype, "rfc822") == 0)
            m->flags |= MIME_PART_MESSAGE;
        else if (strcasecmp(m->type, "text") == 0)
            m->flags |= MIME_PART_TEXT;
        else if (tl == 9 && strcasecmp(m->type, "multipart") == 0 && m->subtype)
            m->flags |= MIME_PART_MULTIPART;
    } else {
        if (m->parent >= 0) {
            const struct mime_part *par = P(p, (unsigned)m->parent);
            if ((par->flags & MIME_PART_MULTIPART) && par->subtype && strcasecmp(par->subtype, "digest") == 0)
                m->flags |= MIME_PART_MESSAGE;
            else
                m->flags |= MIME_PART_TEXT;
        } else {
            m->flags |= MIME_PART_TEXT;
        }
    }
    /* Containers deeper than the limit, or past the part limit, are leaves. */
    if (m->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) {
        if (m->depth + 1 >= p->lim.max_depth || (m->flags & MIME_PART_OVERFLOW)) {
            /* Dovecot 2.3 reports such a part as application/octet-stream,
             * keeping its parameters */
            m->flags &= ~(uint32_t)(MIME_PART_MULTIPART | MIME_PART_MESSAGE);
            free(m->type);
            free(m->subtype);
            m->type = mime_xstrndup("application", 11);
            m->subtype = mime_xstrndup("octet-stream", 12);
        }
    }
}

/* ---- structure events ---- */

static void set_body_start(struct mime_parser *p, unsigned idx, uint64_t off, uint64_t lf, uint64_t bare)
{
    struct mime_part *m = P(p, idx);
    m->body_off = off;
    m->hdr_lines = (uint32_t)(lf - p->ps[idx].lf_hdr);
    m->hdr_vsize = (off - m->hdr_off) + (bare - p->ps[idx].bare_hdr);
    p->ps[idx].lf_body = lf;
    p->ps[idx].bare_body = bare;
}

static void set_end(struct mime_parser *p, unsigned idx, uint64_t end, uint64_t lf, uint64_t bare)
{
    struct mime_part *m = P(p, idx);
    m->end_off = end;
    m->body_lines = (uint32_t)(lf - p->ps[idx].lf_body);
    m->body_vsize = (end - m->body_off) + (bare - p->ps[idx].bare_body);
}

static void start_text(struct mime_parser *p, unsigned idx)
{
    const struct mime_part *m = P(p, idx);
    if (p->text_full || (m->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)))
        return;
    if (m->type && strcasecmp(m->type, "text") != 0)
        return;
    const char *cs = param_get(m->params, m->nparams, "charset");
    int html = m->subtype && strcasecmp(m->subtype, "html") == 0;
    p->dec = mime_text_dec_new(m->encoding, cs, html);
    p->dec_part = idx;
}

static void push_boundary(struct mime_parser *p, unsigned idx, const char *b)
{
    if (p->nb == p->bcap) {
        p->bcap = p->bcap ? p->bcap * 2 : 8;
        p->bnds = mime_xrealloc(p->bnds, p->bcap * sizeof *p->bnds);
    }
    struct bnd *e = &p->bnds[p->nb++];
    size_t n = strlen(b);
    if (n > MIME_BOUNDARY_MAX)
        n = MIME_BOUNDARY_MAX;
    memcpy(e->b, b, n);
    e->len = n;
    e->part = idx;
}

/* Header of the current part ends; the body starts at off. */
static void header_done(struct mime_parser *p, uint64_t off)
{
    unsigned idx = p->cur;
    set_body_start(p, idx, off, p->lf, p->bare);
    process_header(p, idx);
    struct mime_part *m = P(p, idx);
    p->region_start = off;
    if (m->flags & MIME_PART_MULTIPART) {
        const char *b = param_get(m->params, m->nparams, "boundary");
        if (b)   /* even "": Dovecot then takes every "--" line */
            push_boundary(p, idx, b);
        p->st = S_BODY;
    } else if (m->flags & MIME_PART_MESSAGE) {
        p->cur = new_part(p, (int)idx, off);
        p->st = S_HEADER;
    } else {
        p->st = S_BODY;
        start_text(p, idx);
        bin_start(p, idx);
    }
}

/* Ends every open part from the current one up to (not including) stop.
 * A part still in its header gets its header processed first; a
 * message/rfc822 found that way gets its (empty) embedded message. The
 * current part (and what was created under it) ends at `end`; its ancestors
 * end at `up_end`, which differs only for a header cut short by a boundary:
 * Dovecot gives the newline before such a boundary to the parent's body. */
static void close_until(struct mime_parser *p, int stop, uint64_t end, uint64_t lf, uint64_t bare,
                        uint64_t up_end, uint64_t up_lf, uint64_t up_bare)
{
    dec_end(p);
    unsigned first = p->cur;
    if (p->st == S_HEADER) {
        unsigned idx = p->cur;
        set_body_start(p, idx, end, lf, bare);
        process_header(p, idx);
        while (P(p, p->cur)->flags & MIME_PART_MESSAGE) {
            unsigned c = new_part(p, (int)p->cur, end);
            p->ps[c] = (struct pstat){ lf, bare, lf, bare, -1 };
            set_body_start(p, c, end, lf, bare);
            process_header(p, c);
            p->cur = c;
        }
        p->st = S_BODY;
    }
    bool above = false;
    for (int i = (int)p->cur; i >= 0 && i != stop; i = P(p, (unsigned)i)->parent) {
        if (above)
            set_end(p, (unsigned)i, up_end, up_lf, up_bare);
        else
            set_end(p, (unsigned)i, end, lf, bare);
        if ((unsigned)i == first)
            above = true;
    }
    bin_end(p);
    if (stop >= 0)
        p->cur = (unsigned)stop;
}

/* Which active boundary does the line in lp name? -1 if none. */
static int boundary_match(struct mime_parser *p, bool *epilogue)
{
    if (p->nb == 0 || p->lp_len < 2 || p->lp[0] != '-' || p->lp[1] != '-')
        return -1;
    const unsigned char *d = p->lp + 2;
    size_t n = p->lp_len - 2;
    int best = -1;
    for (int i = (int)p->nb - 1; i >= 0; i--) {
        const struct bnd *b = &p->bnds[i];
        if (b->len <= n && memcmp(b->b, d, b->len) == 0 && (best < 0 || p->bnds[best].len < b->len))
            best = i;
    }
    if (best >= 0) {
        size_t l = p->bnds[best].len;
        *epilogue = n >= l + 2 && d[l] == '-' && d[l + 1] == '-';
    }
    return best;
}

/* A boundary right after the empty line that ended the current part's
 * header: that empty line is the newline the boundary owns (RFC 2046 5.1.1),
 * so the header ends before it and the body is empty there. Dovecot 2.3
 * answers BODY[n.MIME] "Content-Type: text/plain\r\n" for such a part.
 * Returns true when the body start moved back. */
static bool give_blank_line_to_boundary(struct mime_parser *p, uint64_t L)
{
    struct mime_part *m = P(p, p->cur);
    if (p->st != S_BODY || m->body_off != L || L <= m->hdr_off ||
        (m->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)))
        return false;
    bool crlf = p->line_prev_cr;
    if (L - m->hdr_off < (crlf ? 2u : 1u))
        return false;
    m->body_off = L - (crlf ? 2 : 1);
    m->hdr_lines--;
    m->hdr_vsize -= 2;   /* CRLF, or LF counted as CRLF */
    p->ps[p->cur].lf_body--;
    if (!crlf)
        p->ps[p->cur].bare_body--;
    p->region_start = m->body_off;
    return true;
}

static void on_boundary(struct mime_parser *p, int bi, bool epilogue)
{
    unsigned owner = p->bnds[bi].part;
    uint64_t L = p->line_start;
    bool moved = L == p->region_start && give_blank_line_to_boundary(p, L);
    unsigned nl = L == p->region_start && !moved ? 0 : (p->line_prev_cr ? 2 : 1);
    uint64_t end = L - nl;
    uint64_t lf = p->line_lf - (nl ? 1 : 0);
    uint64_t bare = p->line_bare - (nl == 1 ? 1 : 0);
    uint64_t up_end = end, up_lf = lf, up_bare = bare;
    if (p->st == S_HEADER) {
        /* drop the boundary line from the stored header */
        p->hdr.end = p->hdr.start + p->hdr_mark;
        P(p, p->cur)->flags |= MIME_PART_HDR_TRUNCATED;
        up_end = L;
        up_lf = p->line_lf;
        up_bare = p->line_bare;
    }
    close_until(p, (int)owner, end, lf, bare, up_end, up_lf, up_bare);
    unsigned keep = epilogue ? (unsigned)bi : (unsigned)bi + 1;
    if (p->nb > keep)   /* (a part created above may have hit max_parts and cleared them) */
        p->nb = keep;
    p->st = S_BODY;
    p->in_bline = true;
    p->bline_new_part = !epilogue;
    p->bline_owner = owner;
}

/* A line starts at off (the byte at off-1 was an LF, or off is 0). */
static void line_begin(struct mime_parser *p)
{
    p->line_start = p->off;
    p->line_lf = p->lf;
    p->line_bare = p->bare;
    p->line_prev_cr = p->last2 == '\r';
    p->lp_len = 0;
    p->decided = false;
    p->in_bline = false;
    if (p->st == S_HEADER)
        p->hdr_mark = buf_len(&p->hdr);
}

static void hdr_store(struct mime_parser *p, const void *d, size_t n)
{
    if (p->hdr_capped)
        return;
    if (buf_len(&p->hdr) + n > p->lim.max_header_bytes) {
        p->hdr.end = p->hdr.start + p->hdr_mark;
        p->hdr_capped = true;
        P(p, p->cur)->flags |= MIME_PART_HDR_CAPPED;
        return;
    }
    buf_append(&p->hdr, d, n);
}

/* Counters and flags for bytes [d, d+n) that are consumed now. */
static void account(struct mime_parser *p, const unsigned char *d, size_t n)
{
    if (n == 0)
        return;
    const unsigned char *s = d, *e = d + n;
    while (s < e) {
        const unsigned char *lf = memchr(s, '\n', (size_t)(e - s));
        if (!lf)
            break;
        unsigned char before = lf > d ? lf[-1] : p->last;
        p->lf++;
        if (before != '\r')
            p->bare++;
        s = lf + 1;
    }
    if (memchr(d, '\0', n))
        P(p, p->cur)->flags |= MIME_PART_HAS_NULS;
    p->last2 = n >= 2 ? d[n - 2] : p->last;
    p->last = d[n - 1];
    p->off += n;
}

/* The current line has ended (its LF consumed). */
static void line_end(struct mime_parser *p)
{
    if (p->in_bline) {
        p->in_bline = false;
        if (p->bline_new_part) {
            p->cur = new_part(p, (int)p->bline_owner, p->off);
            p->st = S_HEADER;
        } else {
            p->cur = p->bline_owner;
            p->st = S_BODY;
        }
        p->region_start = p->off;
        line_begin(p);
        return;
    }
    if (p->st == S_HEADER) {
        uint64_t len = p->off - p->line_start;
        bool blank = len == 1 || (len == 2 && p->lp_len >= 1 && p->lp[0] == '\r');
        if (blank) {
            p->hdr.end = p->hdr.start + p->hdr_mark;
            header_done(p, p->off);
        } else if (!p->hdr_capped && ++p->hdr_nlines > p->lim.max_header_lines) {
            p->hdr.end = p->hdr.start + p->hdr_mark;
            p->hdr_capped = true;
            P(p, p->cur)->flags |= MIME_PART_HDR_CAPPED;
        }
    }
    line_begin(p);
}

/* Settles the boundary question for the current line with what lp holds. */
static void decide(struct mime_parser *p)
{
    p->decided = true;
    bool epi = false;
    int bi = boundary_match(p, &epi);
    if (bi >= 0) {
        on_boundary(p, bi, epi);
        return;
    }
    if (p->st == S_BODY)
        body_text(p, p->lp, p->lp_len);
}

void mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
    const unsigned char *d = data;
    size_t i = 0;
    if (p->finished)
        return;
    while (i < len) {
        if (p->decided) {
            /* the rest of the line up to and including its LF */
            const unsigned char *lf = memchr(d + i, '\n', len - i);
            size_t stop = lf ? (size_t)(lf - d) + 1 : len;
            if (p->st == S_HEADER)
                hdr_store(p, d + i, stop - i);
            else if (!p->in_bline)
                body_text(p, d + i, stop - i);
            account(p, d + i, stop - i);
            i = stop;
            if (lf)
                line_end(p);
            continue;
        }
        unsigned char c = d[i];
        p->lp[p->lp_len++] = c;
        if (p->st == S_HEADER)
            hdr_store(p, &c, 1);
        account(p, &c, 1);
        i++;
        if (c == '\n') {
            decide(p);
            line_end(p);
        } else if (p->nb == 0 || (p->lp_len <= 2 && c != '-')) {
            /* cannot be a boundary line */
            p->decided = true;
            if (p->st == S_BODY)
                body_text(p, p->lp, p->lp_len);
        } else if (p->lp_len == LP_MAX) {
            decide(p);
        }
    }
}

/* ---- lifecycle ---- */

struct mime_parser *mime_parser_new(const struct mime_limits *limits)
{
    struct mime_parser *p = mime_xmalloc(sizeof *p);
    memset(p, 0, sizeof *p);
    if (limits)
        p->lim = *limits;
    if (!p->lim.max_depth)
        p->lim.max_depth = MIME_DEFAULT_MAX_DEPTH;
    if (!p->lim.max_parts)
        p->lim.max_parts = MIME_DEFAULT_MAX_PARTS;
    if (!p->lim.max_header_bytes)
        p->lim.max_header_bytes = MIME_DEFAULT_MAX_HEADER_BYTES;
    if (!p->lim.max_header_lines)
        p->lim.max_header_lines = MIME_DEFAULT_MAX_HEADER_LINES;
    if (!p->lim.max_text)
        p->lim.max_text = MIME_DEFAULT_MAX_TEXT;
    p->cur = new_part(p, -1, 0);
    p->st = S_HEADER;
    p->region_start = 0;
    line_begin(p);
    return p;
}

void mime_parser_set_text_sink(struct mime_parser *p, mime_text_fn *fn, void *ctx)
{
    p->text_fn = fn;
    p->text_ctx = ctx;
}

void mime_parser_free(struct mime_parser *p)
{
    if (!p)
        return;
    mime_tree_free(&p->tree);
    free(p->ps);
    free(p->bnds);
    buf_free(&p->hdr);
    buf_free(&p->text);
    buf_free(&p->dec_out);
    buf_free(&p->scratch);
    buf_free(&p->scratch2);
    if (p->dec)
        mime_text_dec_free(p->dec);
    free(p);
}

void mime_parser_finish(struct mime_parser *p, struct mime_result *out)
{
    memset(out, 0, sizeof *out);
    if (!p->decided && p->lp_len > 0)
        decide(p);   /* a last line without LF */
    close_until(p, -1, p->off, p->lf, p->bare, p->off, p->lf, p->bare);
    p->finished = true;

    out->tree = p->tree;
    memset(&p->tree, 0, sizeof p->tree);
    out->size = p->off;
    out->header_size = out->tree.parts[0].body_off - out->tree.parts[0].hdr_off;
    out->text = p->text;
    memset(&p->text, 0, sizeof p->text);
    out->text_truncated = p->text_full;
    mime_write_bodystructure(&out->bodystructure, &out->tree, 0, 1, 0);
    mime_buf_terminate(&out->bodystructure);
    mime_write_bodystructure(&out->body, &out->tree, 0, 0, 0);
    mime_buf_terminate(&out->body);
    if (out->tree.parts[0].envelope)
        buf_puts(&out->envelope, out->tree.parts[0].envelope);
    mime_buf_terminate(&out->envelope);
    mime_buf_terminate(&out->text);
    mime_parser_free(p);
}

void mime_result_free(struct mime_result *r)
{
    mime_tree_free(&r->tree);
    buf_free(&r->bodystructure);
    buf_free(&r->body);
    buf_free(&r->envelope);
    buf_free(&r->text);
    memset(r, 0, sizeof *r);
}

void mime_parse(const void *msg, size_t len, const struct mime_limits *limits, struct mime_result *out)
{
    struct mime_parser *p = mime_parser_new(limits);
    mime_parser_feed(p, msg, len);
    mime_parser_finish(p, out);
}
