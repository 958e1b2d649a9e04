#include "cte_decode.h"

#include <string.h>
#include <strings.h>

enum cte cte_parse(const char *token)
{
    if (!token)
        return CTE_IDENTITY;
    if (strcasecmp(token, "7bit") == 0 || strcasecmp(token, "8bit") == 0 ||
        strcasecmp(token, "binary") == 0)
        return CTE_IDENTITY;
    if (strcasecmp(token, "base64") == 0)
        return CTE_BASE64;
    if (strcasecmp(token, "quoted-printable") == 0)
        return CTE_QP;
    return CTE_UNKNOWN;
}

bool cte_field_starts(const char *line, size_t n)
{
    static const char name[] = "Content-Transfer-Encoding";
    const char *colon = memchr(line, ':', n < CTE_NAME_SCAN ? n : CTE_NAME_SCAN);
    if (!colon)
        return false;
    size_t nl = (size_t)(colon - line);
    while (nl && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
        nl--;
    return nl == sizeof name - 1 && strncasecmp(line, name, nl) == 0;
}

void cte_decoder_init(struct cte_decoder *d, enum cte kind)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
}

/* Output batched through a small array, or only counted. Made by
 * sink_make, not an initializer: "= { .out = out }" zero-fills tmp, a 1 KB
 * memset on every call, and the MIME parser calls once or twice per line
 * of a part (15% of the backend's CPU in imap-append, perf). */
struct sink {
    struct buf *out;
    size_t n, k;
    char tmp[1024];
};

static struct sink sink_make(struct buf *out)
{
    struct sink s;
    s.out = out;
    s.n = 0;
    s.k = 0;
    return s;
}

static void sink_flush(struct sink *s)
{
    if (s->out && s->k)
        buf_append(s->out, s->tmp, s->k);
    s->k = 0;
}

static void put(struct sink *s, const void *p, size_t n)
{
    s->n += n;
    if (!s->out)
        return;
    if (n > sizeof s->tmp - s->k) {
        sink_flush(s);
        if (n > sizeof s->tmp) {
            buf_append(s->out, p, n);
            return;
        }
    }
    memcpy(s->tmp + s->k, p, n);
    s->k += n;
}

static void put1(struct sink *s, unsigned char c)
{
    s->n++;
    if (!s->out)
        return;
    if (s->k == sizeof s->tmp)
        sink_flush(s);
    s->tmp[s->k++] = (char)c;
}

/* ---- base64 ---- */

static const signed char b64[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};   /* value + 1; 0: not in the alphabet */

/* Counting only needs how many alphabet characters come before the "=". */
static void base64_count(struct cte_decoder *d, const unsigned char *p, size_t n, struct sink *s)
{
    uint64_t chars = 0;
    for (size_t i = 0; i < n; i++) {
        if (b64[p[i]]) {
            chars++;
        } else if (p[i] == '=') {
            d->ended = true;
            break;
        }
    }
    uint64_t bits = (uint64_t)d->bits + 6 * chars;
    s->n += (size_t)(bits / 8);
    d->bits = (int)(bits % 8);
}

static void base64_feed(struct cte_decoder *d, const unsigned char *p, size_t n, struct sink *s)
{
    if (!s->out) {
        if (!d->ended)
            base64_count(d, p, n, s);
        return;
    }
    sink_flush(s);
    size_t avail;
    unsigned char *w = (unsigned char *)buf_tail(s->out, n / 4 * 3 + 3, &avail);
    size_t k = 0;
    for (size_t i = 0; i < n && !d->ended; i++) {
        /* Whole quads on a quad boundary, the common case, straight into out. */
        while (d->bits == 0 && i + 4 <= n && b64[p[i]] && b64[p[i + 1]] && b64[p[i + 2]] && b64[p[i + 3]]) {
            uint32_t v = (uint32_t)(b64[p[i]] - 1) << 18 | (uint32_t)(b64[p[i + 1]] - 1) << 12 |
                         (uint32_t)(b64[p[i + 2]] - 1) << 6 | (uint32_t)(b64[p[i + 3]] - 1);
            w[k] = (unsigned char)(v >> 16);
            w[k + 1] = (unsigned char)(v >> 8);
            w[k + 2] = (unsigned char)v;
            k += 3;
            i += 4;
        }
        if (i >= n)
            break;
        int v = b64[p[i]];
        if (v == 0) {
            d->ended = p[i] == '=';
            continue;
        }
        d->acc = (d->acc << 6) | (uint32_t)(v - 1);
        d->bits += 6;
        if (d->bits >= 8) {
            d->bits -= 8;
            w[k++] = (unsigned char)(d->acc >> d->bits);
            d->acc &= (1u << d->bits) - 1;
        }
    }
    /* At most 3 octets per 4 characters, plus 2 from bits held before. */
    buf_commit(s->out, k);
    s->n += k;
}

/* ---- quoted-printable ---- */

enum { QP_TEXT, QP_EQ, QP_EQ_HEX, QP_EQ_BLANK, QP_EQ_CR };

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void flush_blanks(struct cte_decoder *d, struct sink *s)
{
    put(s, d->blanks, d->nblanks);
    d->nblanks = 0;
}

static bool hold_blank(struct cte_decoder *d, unsigned char c)
{
    if (d->nblanks == sizeof d->blanks)
        return false;
    d->blanks[d->nblanks++] = (char)c;
    return true;
}

/* An "=" that turned out not to be an escape: it and what was held after it
 * are data. */
static void eq_literal(struct cte_decoder *d, struct sink *s)
{
    put1(s, '=');
    if (d->qp == QP_EQ_HEX)
        put1(s, d->hex);
    flush_blanks(d, s);
    if (d->qp == QP_EQ_CR)
        put1(s, '\r');
    d->qp = QP_TEXT;
}

/* One byte in QP_TEXT. */
static void qp_text(struct cte_decoder *d, unsigned char c, struct sink *s)
{
    if (d->cr) {
        d->cr = false;
        if (c == '\n') {
            d->nblanks = 0;   /* blanks at a line end: transport padding */
            put(s, "\r\n", 2);
            return;
        }
        flush_blanks(d, s);
        put1(s, '\r');
    }
    if (c == ' ' || c == '\t') {
        if (!hold_blank(d, c)) {
            flush_blanks(d, s);
            hold_blank(d, c);
        }
    } else if (c == '\r') {
        d->cr = true;
    } else if (c == '\n') {
        d->nblanks = 0;
        put1(s, '\n');
    } else {
        flush_blanks(d, s);
        if (c == '=')
            d->qp = QP_EQ;
        else
            put1(s, c);
    }
}

static void qp_feed(struct cte_decoder *d, const unsigned char *p, size_t n, struct sink *s)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        switch (d->qp) {
        case QP_TEXT:
            /* The common case: a run of ordinary bytes in one go. */
            if (!d->cr && c != '=' && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                size_t j = i + 1;
                while (j < n && p[j] != '=' && p[j] != ' ' && p[j] != '\t' && p[j] != '\r' && p[j] != '\n')
                    j++;
                flush_blanks(d, s);
                put(s, p + i, j - i);
                i = j - 1;
                continue;
            }
            qp_text(d, c, s);
            continue;
        case QP_EQ:
            if (hexval(c) >= 0) {
                d->hex = c;
                d->qp = QP_EQ_HEX;
                continue;
            }
            if (c == '\n') {
                d->qp = QP_TEXT;   /* soft line break */
                continue;
            }
            if (c == '\r') {
                d->qp = QP_EQ_CR;
                continue;
            }
            if ((c == ' ' || c == '\t') && hold_blank(d, c)) {
                d->qp = QP_EQ_BLANK;
                continue;
            }
            break;
        case QP_EQ_HEX:
            if (hexval(c) >= 0) {
                put1(s, (unsigned char)(hexval(d->hex) * 16 + hexval(c)));
                d->qp = QP_TEXT;
                continue;
            }
            break;
        case QP_EQ_BLANK:
            if (c == '\n') {
                d->nblanks = 0;
                d->qp = QP_TEXT;
                continue;
            }
            if (c == '\r') {
                d->qp = QP_EQ_CR;
                continue;
            }
            if ((c == ' ' || c == '\t') && hold_blank(d, c))
                continue;
            break;
        case QP_EQ_CR:
            if (c == '\n') {
                d->nblanks = 0;
                d->qp = QP_TEXT;
                continue;
            }
            break;
        }
        /* Not an escape after all: the "=" and what it held are data, and c
         * is looked at again as text. */
        eq_literal(d, s);
        qp_text(d, c, s);
    }
}

static void qp_finish(struct cte_decoder *d, struct sink *s)
{
    switch (d->qp) {
    case QP_TEXT:
        if (d->cr) {   /* a bare CR is data, and so are the blanks before it */
            flush_blanks(d, s);
            put1(s, '\r');
        }
        d->nblanks = 0;   /* trailing blanks of the last line */
        break;
    case QP_EQ:
    case QP_EQ_HEX:
        d->nblanks = 0;
        eq_literal(d, s);
        break;
    default:
        break;   /* "=" blanks [CR] at the end: a soft line break */
    }
    d->cr = false;
    d->nblanks = 0;
    d->qp = QP_TEXT;
}

size_t cte_decode(struct cte_decoder *d, const void *in, size_t len, struct buf *out)
{
    struct sink s = sink_make(out);
    const unsigned char *p = in;
    switch (d->kind) {
    case CTE_BASE64:
        base64_feed(d, p, len, &s);
        break;
    case CTE_QP:
        qp_feed(d, p, len, &s);
        break;
    default:
        put(&s, p, len);
        break;
    }
    sink_flush(&s);
    return s.n;
}

size_t cte_decode_finish(struct cte_decoder *d, struct buf *out)
{
    struct sink s = sink_make(out);
    if (d->kind == CTE_QP)
        qp_finish(d, &s);
    sink_flush(&s);
    return s.n;
}
