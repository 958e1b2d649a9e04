/* Decoded searchable text: RFC 2047 encoded words, quoted-printable and
 * base64 bodies, charsets to UTF-8 (UTF-8, US-ASCII, ISO-8859-1 and
 * windows-1252 built in, the rest through glibc's iconv), and a crude HTML
 * tag stripper. Every decoder is streaming: it keeps a few bytes of state
 * between pieces. */
#include "mime/mime_internal.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- charsets ---- */

static const uint16_t cp1252_hi[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
    0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
};

static void put_utf8(struct buf *b, uint32_t cp)
{
    char s[4];
    size_t n;
    if (cp < 0x80) {
        s[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (char)(0xC0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (char)(0xE0 | (cp >> 12));
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        s[0] = (char)(0xF0 | (cp >> 18));
        s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        s[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, s, n);
}

/* Length of a valid UTF-8 sequence at s (n bytes available): >0 valid,
 * 0 = incomplete but possibly valid, -1 = invalid. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    int len;
    uint32_t min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return -1;
    }
    uint32_t cp = c & (0x3F >> (len - 1));
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    return len;
}

enum cs_kind { CS_UTF8, CS_LATIN1, CS_CP1252, CS_ICONV };

/* glibc's iconv recovers from an invalid sequence at a place that depends
 * on where its input was cut (inside an unterminated UTF-7 base64 run, say),
 * so the text of the same body would depend on how it arrived in pieces.
 * iconv gets its input cut where the bytes say, whatever the pieces: after
 * each LF, and every ICONV_SEGMENT bytes of a longer line. */
#define ICONV_SEGMENT 4096

struct charset_conv {
    enum cs_kind kind;
    iconv_t ic;
    unsigned char carry[16];
    size_t ncarry;
    struct buf pending;   /* CS_ICONV: bytes not yet making a whole segment */
};

static bool cs_is(const char *cs, const char *const *names)
{
    for (; *names; names++)
        if (strcasecmp(cs, *names) == 0)
            return true;
    return false;
}

static void conv_init(struct charset_conv *c, const char *charset)
{
    static const char *const utf8[] = { "utf-8", "utf8", "us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968", NULL };
    static const char *const latin1[] = { "iso-8859-1", "iso8859-1", "latin1", "iso_8859-1", "l1", NULL };
    static const char *const cp1252[] = { "windows-1252", "cp1252", "x-cp1252", NULL };
    memset(c, 0, sizeof *c);
    c->ic = (iconv_t)-1;
    if (!charset || !*charset || cs_is(charset, utf8)) {
        c->kind = CS_UTF8;
    } else if (cs_is(charset, latin1)) {
        /* mail labelled Latin-1 is very often windows-1252, a superset in use */
        c->kind = CS_CP1252;
    } else if (cs_is(charset, cp1252)) {
        c->kind = CS_CP1252;
    } else {
        c->ic = iconv_open("UTF-8", charset);
        c->kind = c->ic == (iconv_t)-1 ? CS_UTF8 : CS_ICONV;
    }
}

static void conv_free(struct charset_conv *c)
{
    if (c->ic != (iconv_t)-1)
        iconv_close(c->ic);
    c->ic = (iconv_t)-1;
    buf_free(&c->pending);
}

static void put_cp1252(struct buf *out, unsigned char ch)
{
    if (ch < 0x80)
        buf_append(out, &ch, 1);
    else if (ch < 0xA0)
        put_utf8(out, cp1252_hi[ch - 0x80]);
    else
        put_utf8(out, ch);
}

/* UTF-8 in, UTF-8 out; invalid bytes are read as windows-1252 (8-bit text
 * labelled us-ascii or unlabelled is usually that). */
static size_t utf8_run(struct buf *out, const unsigned char *s, size_t n, bool final)
{
    size_t i = 0, start = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int l = utf8_seq(s + i, n - i);
        if (l > 0) {
            i += (size_t)l;
            continue;
        }
        buf_append(out, s + start, i - start);
        if (l == 0 && !final)
            return i;   /* keep the incomplete tail */
        put_cp1252(out, s[i]);
        i++;
        start = i;
    }
    buf_append(out, s + start, i - start);
    return n;
}

static void conv_run(struct charset_conv *c, const char *in, size_t len, struct buf *out, bool final)
{
    const unsigned char *s = (const unsigned char *)in;
    struct buf joined = {0};
    if (c->ncarry > 0) {
        /* a multibyte sequence split between pieces */
        buf_append(&joined, c->carry, c->ncarry);
        buf_append(&joined, in, len);
        s = (const unsigned char *)buf_head(&joined);
        len = buf_len(&joined);
        c->ncarry = 0;
    }
    if (c->kind == CS_UTF8) {
        size_t used = utf8_run(out, s, len, final);
        if (used < len) {   /* fewer than 4 bytes: an incomplete sequence */
            memcpy(c->carry, s + used, len - used);
            c->ncarry = len - used;
        }
    } else {
        char *ip = (char *)s, obuf[512];
        size_t il = len;
        while (il > 0) {
            char *op = obuf;
            size_t ol = sizeof obuf;
            size_t r = iconv(c->ic, &ip, &il, &op, &ol);
            buf_append(out, obuf, sizeof obuf - ol);
            if (r != (size_t)-1 || errno == E2BIG)
                continue;
            if (errno == EINVAL && !final && il < sizeof c->carry) {
                memcpy(c->carry, ip, il);
                c->ncarry = il;
                break;
            }
            put_utf8(out, 0xFFFD);
            ip++;
            il--;
        }
        if (final)
            iconv(c->ic, NULL, NULL, NULL, NULL);
    }
    buf_free(&joined);
}

static void conv_feed(struct charset_conv *c, const char *in, size_t len, struct buf *out, bool final)
{
    if (c->kind == CS_CP1252 || c->kind == CS_LATIN1) {
        const unsigned char *s = (const unsigned char *)in;
        for (size_t i = 0; i < len; i++)
            put_cp1252(out, s[i]);
        return;
    }
    if (c->kind != CS_ICONV) {
        conv_run(c, in, len, out, final);
        return;
    }
    /* Only a segment that spans pieces is copied to wait for its end. */
    bool held = buf_len(&c->pending) > 0;
    if (held)
        buf_append(&c->pending, in, len);
    const char *p = held ? buf_head(&c->pending) : in;
    size_t n = held ? buf_len(&c->pending) : len, used = 0;
    while (used < n) {
        size_t left = n - used, seg;
        const char *lf = memchr(p + used, '\n', left < ICONV_SEGMENT ? left : ICONV_SEGMENT);
        if (lf)
            seg = (size_t)(lf - (p + used)) + 1;
        else if (left >= ICONV_SEGMENT || final)
            seg = left < ICONV_SEGMENT ? left : ICONV_SEGMENT;
        else
            break;
        conv_run(c, p + used, seg, out, final && used + seg == n);
        used += seg;
    }
    if (held)
        buf_consume(&c->pending, used);
    else
        buf_append(&c->pending, in + used, len - used);
    if (final && n == 0)
        conv_run(c, "", 0, out, true);
}

void mime_charset_to_utf8(struct buf *out, const char *charset, const char *in, size_t len)
{
    struct charset_conv c;
    conv_init(&c, charset);
    conv_feed(&c, in, len, out, true);
    conv_free(&c);
}

/* ---- transfer encodings ---- */

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

enum te { TE_NONE, TE_QP, TE_B64 };

struct te_state {
    enum te kind;
    uint32_t acc;
    int bits;
    int qp;           /* 0: normal, 1: after '=', 2: after '=' hex, 3: after '=' CR */
    unsigned char qp_hex;
};

static void te_feed(struct te_state *t, const unsigned char *s, size_t n, struct buf *out)
{
    if (t->kind == TE_NONE) {
        buf_append(out, s, n);
        return;
    }
    if (t->kind == TE_B64) {
        unsigned char tmp[256];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            int v = b64_val(s[i]);
            if (v < 0)
                continue;
            t->acc = (t->acc << 6) | (uint32_t)v;
            t->bits += 6;
            if (t->bits >= 8) {
                t->bits -= 8;
                tmp[k++] = (unsigned char)(t->acc >> t->bits);
                if (k == sizeof tmp) {
                    buf_append(out, tmp, k);
                    k = 0;
                }
            }
        }
        buf_append(out, tmp, k);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        switch (t->qp) {
        case 0:
            if (c == '=') {
                buf_append(out, s + start, i - start);
                t->qp = 1;
            }
            continue;
        case 1:
            if (c == '\n') {
                t->qp = 0;          /* soft line break */
            } else if (c == '\r') {
                t->qp = 3;
            } else if (hex_val(c) >= 0) {
                t->qp_hex = c;
                t->qp = 2;
            } else if (c == ' ' || c == '\t') {
                /* blanks after '=' before the line end: stay */
            } else {
                buf_append(out, "=", 1);
                buf_append(out, &c, 1);
                t->qp = 0;
            }
            break;
        case 2:
            if (hex_val(c) >= 0) {
                unsigned char b = (unsigned char)(hex_val(t->qp_hex) * 16 + hex_val(c));
                buf_append(out, &b, 1);
            } else {
                buf_append(out, "=", 1);
                buf_append(out, &t->qp_hex, 1);
                buf_append(out, &c, 1);
            }
            t->qp = 0;
            break;
        case 3:
            t->qp = 0;
            if (c != '\n')
                buf_append(out, &c, 1);
            break;
        }
        start = i + 1;
    }
    if (t->qp == 0)
        buf_append(out, s + start, n - start);
}

/* ---- HTML ---- */

struct html_state {
    int in_tag;       /* 0 text, 1 tag, 2 comment */
    int dashes;
    bool space;       /* last output was blank */
};

static void html_feed(struct html_state *h, const char *s, size_t n, struct buf *out)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (h->in_tag == 0) {
            if (c == '<') {
                buf_append(out, s + start, i - start);
                if (i > start)
                    h->space = s[i - 1] == ' ' || s[i - 1] == '\n';
                h->in_tag = 1;
                h->dashes = 0;
            }
            continue;
        }
        if (h->in_tag == 1) {
            if (c == '>') {
                h->in_tag = 0;
                if (!h->space) {
                    buf_append(out, " ", 1);
                    h->space = true;
                }
                start = i + 1;
            } else if (c == '-' && ++h->dashes == 2) {
                h->in_tag = 2;
                h->dashes = 0;
            } else if (c != '!' && c != '-') {
                h->dashes = 0;
            }
            continue;
        }
        /* comment: ends at "-->" */
        if (c == '-')
            h->dashes++;
        else if (c == '>' && h->dashes >= 2)
            h->in_tag = 0, start = i + 1;
        else
            h->dashes = 0;
    }
    if (h->in_tag == 0 && n > start) {
        buf_append(out, s + start, n - start);
        h->space = s[n - 1] == ' ' || s[n - 1] == '\n';
    }
}

/* ---- body decoder pipeline ---- */

struct mime_text_dec {
    struct te_state te;
    struct charset_conv cs;
    bool html;
    struct html_state hs;
    struct buf raw, utf;
};

struct mime_text_dec *mime_text_dec_new(const char *encoding, const char *charset, int html)
{
    struct mime_text_dec *d = mime_xmalloc(sizeof *d);
    memset(d, 0, sizeof *d);
    if (encoding && strcasecmp(encoding, "base64") == 0)
        d->te.kind = TE_B64;
    else if (encoding && strcasecmp(encoding, "quoted-printable") == 0)
        d->te.kind = TE_QP;
    conv_init(&d->cs, charset);
    d->html = html != 0;
    d->hs.space = true;
    return d;
}

static void dec_run(struct mime_text_dec *d, const char *data, size_t len, struct buf *out, bool final)
{
    buf_reset(&d->raw);
    buf_reset(&d->utf);
    te_feed(&d->te, (const unsigned char *)data, len, &d->raw);
    struct buf *dst = d->html ? &d->utf : out;
    conv_feed(&d->cs, buf_head(&d->raw) ? buf_head(&d->raw) : "", buf_len(&d->raw), dst, final);
    if (d->html && buf_len(&d->utf))
        html_feed(&d->hs, buf_head(&d->utf), buf_len(&d->utf), out);
}

void mime_text_dec_feed(struct mime_text_dec *d, const char *data, size_t len, struct buf *out)
{
    dec_run(d, data, len, out, false);
}

void mime_text_dec_finish(struct mime_text_dec *d, struct buf *out)
{
    dec_run(d, "", 0, out, true);
}

void mime_text_dec_free(struct mime_text_dec *d)
{
    if (!d)
        return;
    conv_free(&d->cs);
    buf_free(&d->raw);
    buf_free(&d->utf);
    free(d);
}

/* ---- RFC 2047 ---- */

/* Tries to decode an encoded word at s[0..n): returns its length, 0 if none. */
static size_t encoded_word(const char *s, size_t n, struct buf *out)
{
    if (n < 8 || s[0] != '=' || s[1] != '?')
        return 0;
    size_t i = 2;
    while (i < n && s[i] != '?' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
        i++;
    if (i >= n || s[i] != '?' || i == 2)
        return 0;
    size_t cs_end = i;
    if (i + 2 >= n || s[i + 2] != '?')
        return 0;
    char enc = s[i + 1];
    if (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q')
        return 0;
    size_t text = i + 3, j = text;
    while (j + 1 < n && !(s[j] == '?' && s[j + 1] == '=')) {
        if (s[j] == ' ' || s[j] == '\t' || s[j] == '\n')
            return 0;
        j++;
    }
    if (j + 1 >= n)
        return 0;
    char charset[64];
    size_t cl = cs_end - 2;
    if (cl >= sizeof charset)
        return 0;
    memcpy(charset, s + 2, cl);
    charset[cl] = '\0';
    char *star = strchr(charset, '*');   /* RFC 2231 language suffix */
    if (star)
        *star = '\0';
    struct buf raw = {0};
    if (enc == 'B' || enc == 'b') {
        struct te_state t = { .kind = TE_B64 };
        te_feed(&t, (const unsigned char *)s + text, j - text, &raw);
    } else {
        for (size_t k = text; k < j; k++) {
            char c = s[k];
            if (c == '_') {
                buf_append(&raw, " ", 1);
            } else if (c == '=' && k + 2 < j && hex_val((unsigned char)s[k + 1]) >= 0 &&
                       hex_val((unsigned char)s[k + 2]) >= 0) {
                unsigned char b = (unsigned char)(hex_val((unsigned char)s[k + 1]) * 16 +
                                                  hex_val((unsigned char)s[k + 2]));
                buf_append(&raw, &b, 1);
                k += 2;
            } else {
                buf_append(&raw, &c, 1);
            }
        }
    }
    mime_charset_to_utf8(out, charset, buf_head(&raw) ? buf_head(&raw) : "", buf_len(&raw));
    buf_free(&raw);
    return j + 2;
}

void mime_decode_header_value(struct buf *out, const char *value, size_t len)
{
    struct buf plain = {0};
    size_t i = 0, held = 0;   /* blanks after an encoded word, dropped if another follows */
    bool after_word = false;

    while (i < len) {
        char c = value[i];
        if (c == '\n' || c == '\r') {
            i++;   /* unfold */
            continue;
        }
        if (c == '=' && i + 1 < len && value[i + 1] == '?') {
            struct buf w = {0};
            size_t wl = encoded_word(value + i, len - i, &w);
            if (wl > 0) {
                if (buf_len(&plain)) {
                    mime_charset_to_utf8(out, NULL, buf_head(&plain), buf_len(&plain));
                    buf_reset(&plain);
                }
                buf_append(out, buf_head(&w), buf_len(&w));
                buf_free(&w);
                i += wl;
                after_word = true;
                held = 0;
                continue;
            }
            buf_free(&w);
        }
        if (after_word && (c == ' ' || c == '\t')) {
            held++;
            i++;
            continue;
        }
        for (; held > 0; held--)
            buf_append(&plain, " ", 1);
        after_word = false;
        buf_append(&plain, &c, 1);
        i++;
    }
    if (buf_len(&plain))
        mime_charset_to_utf8(out, NULL, buf_head(&plain), buf_len(&plain));
    buf_free(&plain);
}
