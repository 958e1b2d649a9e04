#include "imap/imap_utf7.h"

#include <stdint.h>
#include <string.h>

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

static void put_utf8(struct buf *out, uint32_t cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(out, u, n);
}

/* Decodes one "&...-" run starting after the '&'; *i_r ends after the '-'. */
static int decode_run(const char *in, size_t len, size_t *i_r, struct buf *out)
{
    size_t i = *i_r;
    uint32_t bits = 0, high = 0;
    int nbits = 0;
    size_t units = 0;
    for (; i < len && in[i] != '-'; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        bits = bits << 6 | (uint32_t)v;
        nbits += 6;
        if (nbits < 16)
            continue;
        nbits -= 16;
        uint32_t u = bits >> nbits & 0xffff;
        units++;
        if (high) {
            if (u < 0xdc00 || u > 0xdfff)
                return -1;
            put_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
            high = 0;
        } else if (u >= 0xd800 && u <= 0xdbff) {
            high = u;
        } else if (u >= 0xdc00 && u <= 0xdfff) {
            return -1;
        } else if (u >= 0x20 && u <= 0x7e) {
            return -1;   /* printable ASCII must not be encoded */
        } else {
            put_utf8(out, u);
        }
    }
    /* Unterminated, empty ("&-" is handled by the caller), a dangling high
     * surrogate, or leftover bits that are not zero padding. */
    if (i == len || units == 0 || high || nbits >= 6 || (bits & ((1u << nbits) - 1)))
        return -1;
    *i_r = i + 1;
    return 0;
}

int imap_utf7_to_utf8(const char *in, size_t len, struct buf *out)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c > 0x7e)
            return -1;
        if (c != '&') {
            buf_append(out, &in[i++], 1);
            continue;
        }
        if (i + 1 < len && in[i + 1] == '-') {
            buf_append(out, "&", 1);
            i += 2;
            continue;
        }
        i++;
        if (decode_run(in, len, &i, out) < 0)
            return -1;
        /* Two runs back to back would not be minimal. */
        if (i < len && in[i] == '&' && !(i + 1 < len && in[i + 1] == '-'))
            return -1;
    }
    return 0;
}

/* Reads one code point of valid UTF-8 at *i. */
static uint32_t next_cp(const unsigned char *s, size_t len, size_t *i)
{
    uint32_t c = s[(*i)++];
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    c &= more == 3 ? 0x07 : more == 2 ? 0x0f : more == 1 ? 0x1f : 0x7f;
    while (more-- > 0 && *i < len)
        c = c << 6 | (s[(*i)++] & 0x3f);
    return c;
}

static void flush_bits(struct buf *out, uint32_t *bits, int *nbits)
{
    while (*nbits >= 6) {
        *nbits -= 6;
        buf_append(out, &b64[*bits >> *nbits & 0x3f], 1);
    }
}

void imap_utf8_to_utf7(const char *in, size_t len, struct buf *out)
{
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < len;) {
        if (s[i] >= 0x20 && s[i] <= 0x7e) {
            if (s[i] == '&')
                buf_append(out, "&-", 2);
            else
                buf_append(out, &s[i], 1);
            i++;
            continue;
        }
        buf_append(out, "&", 1);
        uint32_t bits = 0;
        int nbits = 0;
        while (i < len && !(s[i] >= 0x20 && s[i] <= 0x7e)) {
            uint32_t cp = next_cp(s, len, &i);
            uint32_t units[2];
            int n = 1;
            if (cp >= 0x10000) {
                units[0] = 0xd800 + ((cp - 0x10000) >> 10);
                units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
                n = 2;
            } else {
                units[0] = cp;
            }
            for (int k = 0; k < n; k++) {
                bits = (bits << 16 | units[k]) & 0xffffff;
                nbits += 16;
                flush_bits(out, &bits, &nbits);
            }
        }
        if (nbits > 0)
            buf_append(out, &b64[(bits << (6 - nbits)) & 0x3f], 1);
        buf_append(out, "-", 1);
    }
}

/* Length of the UTF-8 sequence at in (at most len bytes) and its code
 * point, or 0 if it is not well-formed. */
static size_t utf8_seq(const unsigned char *in, size_t len, uint32_t *cp_r)
{
    unsigned char c = in[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > len)
        return 0;
    uint32_t cp = n == 1 ? c : c & (0xff >> (n + 1));
    for (size_t k = 1; k < n; k++) {
        if ((in[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (in[k] & 0x3f);
    }
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cp_r = cp;
    return n;
}

int imap_utf8_name_check(const char *in, size_t len)
{
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return -1;
        i += n;
    }
    return 0;
}
