/* RFC 822/2045/2231 tokens, parameters, addresses and header fields.
 *
 * The behaviour on broken input follows Dovecot's rfc822-parser.c,
 * rfc2231-parser.c and message-address.c so that BODYSTRUCTURE and ENVELOPE
 * come out as Dovecot gives them. */
#include "mime/mime_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void *mime_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *mime_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "out of memory allocating %zu bytes\n", n);
        abort();
    }
    return q;
}

char *mime_xstrndup(const char *s, size_t n)
{
    char *d = mime_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *mime_buf_strdup(const struct buf *b)
{
    return mime_xstrndup(buf_len(b) ? buf_head(b) : "", buf_len(b));
}

void mime_buf_terminate(struct buf *b)
{
    buf_reserve(b, 1);
    b->data[b->end] = '\0';
}

/* ---- character classes ---- */

/* atext (RFC 5322) plus 8-bit bytes */
static bool is_atext(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if (c <= 32 || c == 127)
        return false;
    return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* MIME token characters: atext minus '/', '?', '=' */
static bool is_token(unsigned char c)
{
    return is_atext(c) && c != '/' && c != '?' && c != '=';
}

/* ---- tokenizer ---- */

void rfc822_init(struct rfc822 *r, const void *data, size_t len, struct buf *last_comment)
{
    r->p = data;
    r->end = r->p + len;
    r->last_comment = last_comment;
}

static int skip_comment(struct rfc822 *r)
{
    int level = 1;
    if (r->last_comment)
        buf_reset(r->last_comment);
    const unsigned char *start = ++r->p;
    for (; r->p < r->end; r->p++) {
        switch (*r->p) {
        case '(':
            level++;
            break;
        case ')':
            if (--level == 0) {
                if (r->last_comment)
                    buf_append(r->last_comment, start, (size_t)(r->p - start));
                r->p++;
                return r->p != r->end;
            }
            break;
        case '\\':
            if (r->last_comment)
                buf_append(r->last_comment, start, (size_t)(r->p - start));
            start = r->p + 1;
            r->p++;
            if (r->p == r->end)
                return -1;
            break;
        }
    }
    return -1;
}

int rfc822_skip_lwsp(struct rfc822 *r)
{
    while (r->p < r->end) {
        unsigned char c = *r->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            r->p++;
            continue;
        }
        if (c != '(')
            break;
        if (skip_comment(r) < 0)
            return -1;
    }
    return r->p != r->end;
}

int rfc822_mime_token(struct rfc822 *r, struct buf *out)
{
    const unsigned char *start = r->p;
    while (r->p < r->end && (is_token(*r->p) || *r->p == '.'))
        r->p++;
    buf_append(out, start, (size_t)(r->p - start));
    if (r->p == r->end)
        return 0;
    return rfc822_skip_lwsp(r);
}

int rfc822_atom(struct rfc822 *r, struct buf *out)
{
    if (r->p == r->end || !is_atext(*r->p))
        return -1;
    const unsigned char *start = r->p++;
    while (r->p < r->end && is_atext(*r->p))
        r->p++;
    buf_append(out, start, (size_t)(r->p - start));
    if (r->p == r->end)
        return 0;
    return rfc822_skip_lwsp(r);
}

int rfc822_dot_atom(struct rfc822 *r, struct buf *out)
{
    if (r->p == r->end || !is_atext(*r->p))
        return -1;
    const unsigned char *start = r->p++;
    while (r->p < r->end) {
        if (is_atext(*r->p)) {
            r->p++;
            continue;
        }
        buf_append(out, start, (size_t)(r->p - start));
        int ret = rfc822_skip_lwsp(r);
        if (ret <= 0)
            return ret;
        if (*r->p != '.')
            return 1;
        r->p++;
        buf_append(out, ".", 1);
        if ((ret = rfc822_skip_lwsp(r)) <= 0)
            return ret;
        start = r->p;
    }
    buf_append(out, start, (size_t)(r->p - start));
    return 0;
}

int rfc822_quoted_string(struct rfc822 *r, struct buf *out)
{
    r->p++;   /* the opening quote */
    const unsigned char *start = r->p;
    for (; r->p < r->end; r->p++) {
        switch (*r->p) {
        case '"':
            buf_append(out, start, (size_t)(r->p - start));
            r->p++;
            return rfc822_skip_lwsp(r);
        case '\n': {
            /* folding: drop the [CR]LF */
            size_t n = (size_t)(r->p - start);
            if (n > 0 && start[n - 1] == '\r')
                n--;
            buf_append(out, start, n);
            start = r->p + 1;
            break;
        }
        case '\\':
            r->p++;
            if (r->p == r->end)
                return -1;
            buf_append(out, start, (size_t)(r->p - start - 1));
            start = r->p;
            break;
        }
    }
    return -1;
}

static int atom_or_dot(struct rfc822 *r, struct buf *out)
{
    const unsigned char *start = r->p;
    while (r->p < r->end && (is_atext(*r->p) || *r->p == '.'))
        r->p++;
    buf_append(out, start, (size_t)(r->p - start));
    if (r->p == r->end)
        return 0;
    return rfc822_skip_lwsp(r);
}

int rfc822_phrase(struct rfc822 *r, struct buf *out)
{
    if (r->p == r->end)
        return 0;
    if (*r->p == '.')
        return -1;
    for (;;) {
        int ret = *r->p == '"' ? rfc822_quoted_string(r, out) : atom_or_dot(r, out);
        if (ret <= 0)
            return ret;
        if (!is_atext(*r->p) && *r->p != '"' && *r->p != '.')
            break;
        buf_append(out, " ", 1);
    }
    return rfc822_skip_lwsp(r);
}

static int domain_literal(struct rfc822 *r, struct buf *out)
{
    const unsigned char *start = r->p;
    for (; r->p < r->end; r->p++) {
        if (*r->p == '\\') {
            r->p++;
            if (r->p == r->end)
                break;
        } else if (*r->p == ']') {
            r->p++;
            buf_append(out, start, (size_t)(r->p - start));
            return rfc822_skip_lwsp(r);
        }
    }
    return -1;
}

int rfc822_domain(struct rfc822 *r, struct buf *out)
{
    r->p++;   /* '@' */
    if (rfc822_skip_lwsp(r) <= 0)
        return -1;
    if (*r->p == '[')
        return domain_literal(r, out);
    return rfc822_dot_atom(r, out);
}

int rfc822_content_type(struct rfc822 *r, struct buf *out)
{
    if (rfc822_skip_lwsp(r) <= 0)
        return -1;
    if (rfc822_mime_token(r, out) <= 0)
        return -1;
    if (*r->p != '/')
        return -1;
    r->p++;
    if (rfc822_skip_lwsp(r) <= 0)
        return -1;
    buf_append(out, "/", 1);
    return rfc822_mime_token(r, out);
}

/* ---- parameters ---- */

/* One "; key=value": 1 = got one, 0 = end, -1 = broken (key/value may be set). */
static int content_param(struct rfc822 *r, struct buf *key, struct buf *value)
{
    buf_reset(key);
    buf_reset(value);
    if (r->p == r->end)
        return 0;
    if (*r->p != ';')
        return -1;
    r->p++;
    if (rfc822_skip_lwsp(r) <= 0)
        return -1;
    if (rfc822_mime_token(r, key) <= 0)
        return -1;
    if (*r->p != '=')
        return -1;
    r->p++;
    int ret = rfc822_skip_lwsp(r);
    if (ret <= 0) {
        /* no value */
    } else if (*r->p == '"') {
        ret = rfc822_quoted_string(r, value);
    } else if (*r->p == '=') {
        /* broken input such as name==?utf-8?b?...?= */
        while (r->p < r->end && *r->p != ';' && *r->p != ' ' && *r->p != '\t' &&
               *r->p != '\r' && *r->p != '\n') {
            buf_append(value, r->p, 1);
            r->p++;
        }
    } else {
        ret = rfc822_mime_token(r, value);
    }
    return ret < 0 ? -1 : 1;
}

struct raw_param {
    char *key, *value;
    unsigned idx;
    bool extended;
    unsigned order;
};

static int raw_param_cmp(const void *a, const void *b)
{
    const struct raw_param *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->idx != y->idx)
        return x->idx < y->idx ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

static void param_push(struct mime_param **v, unsigned *n, unsigned *cap, char *name, char *value)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = mime_xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[*n].name = name;
    (*v)[*n].value = value;
    (*n)++;
}

/* Upper bound on parameters kept per header: a header is at most
 * max_header_bytes anyway, this only bounds the sort. */
#define MAX_PARAMS 512

void mime_params_parse(struct rfc822 *r, struct mime_param **params, unsigned *count)
{
    struct buf key = {0}, value = {0};
    struct mime_param *out = NULL;
    unsigned n = 0, cap = 0;
    struct raw_param *ext = NULL;
    unsigned next = 0, ecap = 0, seen = 0;
    int ret;

    while ((ret = content_param(r, &key, &value)) != 0) {
        if (ret < 0) {
            /* try to continue anyway */
            if (r->p == r->end)
                break;
            r->p++;
            continue;
        }
        if (++seen > MAX_PARAMS)
            break;
        char *k = mime_buf_strdup(&key);
        char *v = mime_buf_strdup(&value);
        char *star = strchr(k, '*');
        bool plain = true;
        if (star) {
            const char *q = star;
            unsigned idx = 0;
            bool extended = false;
            if (q[1] != '\0') {
                q++;
                for (; *q >= '0' && *q <= '9'; q++)
                    idx = idx * 10 + (unsigned)(*q - '0');
            }
            if (*q == '*') {
                extended = true;
                q++;
            }
            if (*q == '\0') {
                plain = false;
                if (next == ecap) {
                    ecap = ecap ? ecap * 2 : 4;
                    ext = mime_xrealloc(ext, ecap * sizeof *ext);
                }
                ext[next] = (struct raw_param){ mime_xstrndup(k, (size_t)(star - k)), v, idx, extended, next };
                next++;
                free(k);
            }
        }
        if (plain)
            param_push(&out, &n, &cap, k, v);
    }
    buf_free(&key);
    buf_free(&value);

    if (next > 0) {
        qsort(ext, next, sizeof *ext, raw_param_cmp);
        struct buf s = {0};
        for (unsigned i = 0, j; i < next; i = j) {
            bool ok = true, have_ext = false;
            unsigned want = 0;
            for (j = i; j < next; j++) {
                if (strcasecmp(ext[i].key, ext[j].key) != 0)
                    break;
                if (ext[j].idx != want)
                    ok = false;
                if (ext[j].extended)
                    have_ext = true;
                want++;
            }
            if (!ok) {
                for (unsigned m = i; m < j; m++) {
                    char tmp[32];
                    snprintf(tmp, sizeof tmp, ext[m].extended ? "*%u*" : "*%u", ext[m].idx);
                    size_t kl = strlen(ext[m].key), tl = strlen(tmp);
                    char *name = mime_xmalloc(kl + tl + 1);
                    memcpy(name, ext[m].key, kl);
                    memcpy(name + kl, tmp, tl + 1);
                    param_push(&out, &n, &cap, name, mime_xstrndup(ext[m].value, strlen(ext[m].value)));
                }
            } else {
                buf_reset(&s);
                if (!ext[i].extended && have_ext)
                    buf_puts(&s, "''");
                for (unsigned m = i; m < j; m++) {
                    if (!ext[m].extended && have_ext) {
                        for (const char *c = ext[m].value; *c; c++) {
                            if (*c == '%')
                                buf_puts(&s, "%25");
                            else
                                buf_append(&s, c, 1);
                        }
                    } else {
                        buf_puts(&s, ext[m].value);
                    }
                }
                size_t kl = strlen(ext[i].key);
                char *name = mime_xmalloc(kl + 2);
                memcpy(name, ext[i].key, kl);
                if (have_ext)
                    name[kl++] = '*';
                name[kl] = '\0';
                param_push(&out, &n, &cap, name, mime_buf_strdup(&s));
            }
        }
        buf_free(&s);
        for (unsigned i = 0; i < next; i++) {
            free(ext[i].key);
            free(ext[i].value);
        }
        free(ext);
    }
    *params = out;
    *count = n;
}

void mime_params_free(struct mime_param *params, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        free(params[i].name);
        free(params[i].value);
    }
    free(params);
}

/* ---- addresses (message-address.c semantics, fill_missing) ---- */

struct addr_ctx {
    struct rfc822 r;
    struct buf str, comment;
    struct mime_addr cur;
    bool invalid;
    struct mime_addr *list;
    unsigned n, cap;
};

/* Bound on addresses per header field. */
#define MAX_ADDRS 10000

static char *bdup(const struct buf *b) { return mime_buf_strdup(b); }
static char *sdup(const char *s) { return mime_xstrndup(s, strlen(s)); }

static void addr_clear(struct mime_addr *a)
{
    free(a->name);
    free(a->route);
    free(a->mailbox);
    free(a->domain);
    memset(a, 0, sizeof *a);
}

static void add_address(struct addr_ctx *c)
{
    if (c->n >= MAX_ADDRS) {
        addr_clear(&c->cur);
        c->invalid = false;
        return;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4;
        c->list = mime_xrealloc(c->list, c->cap * sizeof *c->list);
    }
    c->list[c->n++] = c->cur;
    memset(&c->cur, 0, sizeof c->cur);
    c->invalid = false;
}

static void set(char **dst, char *v)
{
    free(*dst);
    *dst = v;
}

static int parse_local_part(struct addr_ctx *c)
{
    buf_reset(&c->str);
    int ret;
    if (c->r.p < c->r.end && *c->r.p == '"')
        ret = rfc822_quoted_string(&c->r, &c->str);
    else
        ret = rfc822_dot_atom(&c->r, &c->str);
    if (ret < 0)
        return -1;
    set(&c->cur.mailbox, bdup(&c->str));
    return ret;
}

static int parse_domain(struct addr_ctx *c)
{
    buf_reset(&c->str);
    int ret = rfc822_domain(&c->r, &c->str);
    if (ret < 0)
        return -1;
    set(&c->cur.domain, bdup(&c->str));
    return ret;
}

static int parse_domain_list(struct addr_ctx *c)
{
    buf_reset(&c->str);
    for (;;) {
        if (c->r.p == c->r.end)
            return 0;
        if (*c->r.p != '@')
            break;
        if (buf_len(&c->str) > 0)
            buf_append(&c->str, ",", 1);
        buf_append(&c->str, "@", 1);
        int ret = rfc822_domain(&c->r, &c->str);
        if (ret <= 0)
            return ret;
        while (rfc822_skip_lwsp(&c->r) > 0 && *c->r.p == ',')
            c->r.p++;
    }
    set(&c->cur.route, bdup(&c->str));
    return 1;
}

static int parse_angle_addr(struct addr_ctx *c)
{
    c->r.p++;   /* '<' */
    int ret = rfc822_skip_lwsp(&c->r);
    if (ret <= 0)
        return ret;
    if (*c->r.p == '@') {
        if (parse_domain_list(c) > 0 && *c->r.p == ':') {
            c->r.p++;
        } else {
            set(&c->cur.route, sdup("INVALID_ROUTE"));
            if (c->r.p == c->r.end)
                return -1;
        }
        if ((ret = rfc822_skip_lwsp(&c->r)) <= 0)
            return ret;
    }
    if (*c->r.p == '>') {
        /* "<>": an empty address (Dovecot 2.3 gives MISSING_MAILBOX/DOMAIN) */
        c->r.p++;
        return rfc822_skip_lwsp(&c->r);
    }
    /* The field ending before the '>' is broken too: Dovecot 2.3.19 answers
     * "a <b@c" with domain SYNTAX_ERROR (seen in tests/integration/
     * test_dovecot_diff.py), so running out of input counts as an error. */
    if ((ret = parse_local_part(c)) <= 0)
        return -1;
    if (*c->r.p == '@') {
        if ((ret = parse_domain(c)) <= 0)
            return -1;
    }
    if (*c->r.p != '>')
        return -1;
    c->r.p++;
    return rfc822_skip_lwsp(&c->r);
}

static int parse_name_addr(struct addr_ctx *c)
{
    buf_reset(&c->str);
    if (rfc822_phrase(&c->r, &c->str) <= 0 || *c->r.p != '<')
        return -1;
    if (buf_len(&c->str) == 0 || buf_head(&c->str)[0] == '\0')
        set(&c->cur.name, NULL);
    else
        set(&c->cur.name, bdup(&c->str));
    if (parse_angle_addr(c) < 0) {
        set(&c->cur.domain, sdup("SYNTAX_ERROR"));
        c->invalid = true;
    }
    return c->r.p != c->r.end;
}

static int parse_addr_spec(struct addr_ctx *c)
{
    int ret, ret2 = -2;
    buf_reset(&c->comment);
    ret = parse_local_part(c);
    if (ret <= 0)
        c->invalid = true;
    if (ret != 0 && c->r.p < c->r.end && *c->r.p == '@') {
        ret2 = parse_domain(c);
        if (ret2 <= 0)
            ret = ret2;
    }
    if (buf_len(&c->comment) > 0) {
        set(&c->cur.name, bdup(&c->comment));
    } else if (ret2 == -2) {
        /* "user" alone is a mailbox, "user more words" a display name */
        buf_append(&c->str, " ", 1);
        size_t before = buf_len(&c->str);
        (void)rfc822_phrase(&c->r, &c->str);
        if (buf_len(&c->str) != before) {
            set(&c->cur.mailbox, NULL);
            set(&c->cur.name, bdup(&c->str));
        }
        c->invalid = true;
        ret = -1;
    }
    return ret;
}

static int parse_mailbox(struct addr_ctx *c)
{
    const unsigned char *start = c->r.p;
    int ret = parse_name_addr(c);
    if (ret < 0) {
        c->r.p = start;
        addr_clear(&c->cur);
        c->invalid = false;
        ret = parse_addr_spec(c);
    }
    if (ret < 0)
        c->invalid = true;
    if (c->cur.mailbox == NULL)
        c->cur.mailbox = sdup("MISSING_MAILBOX");
    if (c->cur.domain == NULL)
        c->cur.domain = sdup("MISSING_DOMAIN");
    add_address(c);
    return ret;
}

static int parse_group(struct addr_ctx *c)
{
    int ret;
    buf_reset(&c->str);
    if (rfc822_phrase(&c->r, &c->str) <= 0 || *c->r.p != ':')
        return -1;
    /* from here on it is a group, whatever follows */
    c->r.p++;
    if ((ret = rfc822_skip_lwsp(&c->r)) <= 0)
        c->invalid = true;
    set(&c->cur.mailbox, bdup(&c->str));
    add_address(c);

    if (ret > 0 && *c->r.p == ';') {
        c->r.p++;
        ret = rfc822_skip_lwsp(&c->r);
    } else if (ret > 0) {
        for (;;) {
            if (parse_mailbox(c) <= 0) {
                ret = -1;
                break;
            }
            if (*c->r.p != ',')
                break;
            c->r.p++;
            if (rfc822_skip_lwsp(&c->r) <= 0) {
                ret = -1;
                break;
            }
        }
        if (ret >= 0) {
            if (c->r.p == c->r.end || *c->r.p != ';') {
                ret = -1;
            } else {
                c->r.p++;
                ret = rfc822_skip_lwsp(&c->r);
            }
        }
        if (ret < 0)
            c->invalid = true;
    }
    add_address(c);   /* end of group */
    return ret == 0 ? 0 : 1;
}

static int parse_address(struct addr_ctx *c)
{
    const unsigned char *start = c->r.p;
    int ret = parse_group(c);
    if (ret < 0) {
        c->r.p = start;
        addr_clear(&c->cur);
        c->invalid = false;
        ret = parse_mailbox(c);
    }
    return ret;
}

static void parse_address_list(struct addr_ctx *c)
{
    for (unsigned guard = 0; guard < MAX_ADDRS; guard++) {
        if (c->r.p >= c->r.end)
            break;
        const unsigned char *before = c->r.p;
        int ret = parse_address(c);
        if (ret == 0)
            break;
        if (c->r.p >= c->r.end)
            break;
        if (*c->r.p != ',') {
            /* garbage: skip to the next comma, as nothing else makes progress */
            if (c->r.p == before)
                c->r.p++;
            while (c->r.p < c->r.end && *c->r.p != ',')
                c->r.p++;
            if (c->r.p >= c->r.end)
                break;
        }
        c->r.p++;
        if (rfc822_skip_lwsp(&c->r) <= 0)
            break;
    }
}

unsigned mime_addrs_parse(const char *value, size_t len, struct mime_addr **out)
{
    struct addr_ctx c;
    memset(&c, 0, sizeof c);
    rfc822_init(&c.r, value, len, &c.comment);
    *out = NULL;
    if (rfc822_skip_lwsp(&c.r) <= 0) {
        buf_free(&c.comment);
        return 0;
    }
    parse_address_list(&c);
    addr_clear(&c.cur);
    buf_free(&c.str);
    buf_free(&c.comment);
    *out = c.list;
    return c.n;
}

void mime_addrs_free(struct mime_addr *a, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        addr_clear(&a[i]);
    free(a);
}

/* ---- header fields ---- */

bool mime_field_is(const struct mime_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/* End of the line starting at i: index of its LF, or len. */
static size_t line_end(const char *h, size_t len, size_t i)
{
    const char *lf = memchr(h + i, '\n', len - i);
    return lf ? (size_t)(lf - h) : len;
}

static void append_clean(struct buf *b, const char *s, size_t n)
{
    /* drop a CR before the line end; NUL becomes 0x80 */
    if (n > 0 && s[n - 1] == '\r')
        n--;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0') {
            buf_append(b, s + start, i - start);
            buf_append(b, "\xEF\xBF\xBD", 3);
            start = i + 1;
        }
    }
    buf_append(b, s + start, n - start);
}

int mime_field_next(const char *h, size_t len, size_t *pos, struct buf *scratch, struct mime_field *f)
{
    size_t i = *pos;
    for (;;) {
        if (i >= len)
            return 0;
        size_t e = line_end(h, len, i);
        size_t n = e - i;
        if (n > 0 && h[i + n - 1] == '\r')
            n--;
        if (n == 0) {
            /* the blank line: end of header */
            *pos = len;
            return 0;
        }
        if (h[i] == ' ' || h[i] == '\t') {
            /* continuation without a field: skip */
            i = e < len ? e + 1 : len;
            continue;
        }
        const char *colon = memchr(h + i, ':', n);
        size_t name_end, vstart;
        if (colon) {
            name_end = (size_t)(colon - h);
            vstart = name_end + 1;
        } else {
            name_end = i + n;   /* no colon: the whole line is the name */
            vstart = i + n;
        }
        size_t ne = name_end;
        while (ne > i && (h[ne - 1] == ' ' || h[ne - 1] == '\t'))
            ne--;
        f->name = h + i;
        f->name_len = ne - i;
        while (vstart < e && (h[vstart] == ' ' || h[vstart] == '\t'))
            vstart++;
        buf_reset(scratch);
        append_clean(scratch, h + vstart, e > vstart ? e - vstart : 0);
        i = e < len ? e + 1 : len;
        /* continuation lines */
        while (i < len && (h[i] == ' ' || h[i] == '\t')) {
            size_t ce = line_end(h, len, i);
            buf_append(scratch, "\n", 1);
            append_clean(scratch, h + i, ce - i);
            i = ce < len ? ce + 1 : len;
        }
        mime_buf_terminate(scratch);
        f->value = buf_head(scratch) ? buf_head(scratch) : "";
        f->value_len = buf_len(scratch);
        *pos = i;
        return 1;
    }
}
