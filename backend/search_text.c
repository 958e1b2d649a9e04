#include "search_text.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Decodes one UTF-8 sequence at s (n > 0 bytes); returns its length, with
 * *cp = -1 for an invalid byte (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_next(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = (int32_t)c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        *cp = -1;
        return 1;
    }
    if (n < len) {
        *cp = -1;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = (int32_t)v;
    return len;
}

static void put_utf8(struct buf *out, uint32_t c)
{
    char b[4];
    size_t n;
    if (c < 0x80) {
        b[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        b[0] = (char)(0xC0 | c >> 6);
        b[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        b[0] = (char)(0xE0 | c >> 12);
        b[1] = (char)(0x80 | (c >> 6 & 0x3F));
        b[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | c >> 18);
        b[1] = (char)(0x80 | (c >> 12 & 0x3F));
        b[2] = (char)(0x80 | (c >> 6 & 0x3F));
        b[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    buf_append(out, b, n);
}

/* Simple lower case of the scripts mail is mostly written in. */
static uint32_t fold(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130)
            return 'i';
        if (c == 0x178)
            return 0xFF;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return c & 1 ? c + 1 : c;
        if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F)
            return c;
        return c & 1 ? c : c + 1;
    }
    if (c >= 0x370 && c <= 0x3FF) {
        if (c == 0x386)
            return 0x3AC;
        if (c >= 0x388 && c <= 0x38A)
            return c + 37;
        if (c == 0x38C)
            return 0x3CC;
        if (c == 0x38E || c == 0x38F)
            return c + 63;
        if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB))
            return c + 32;
        if (c == 0x3C2)
            return 0x3C3;   /* final sigma */
        return c;
    }
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
        return c & 1 ? c : c + 1;
    if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF))
        return c & 1 ? c : c + 1;
    if (c >= 0xFF21 && c <= 0xFF3A)
        return c + 32;
    return c;
}

void search_fold(struct buf *out, const char *s, size_t len, bool oneline)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* Runs of plain ASCII go in one piece. */
        size_t j = i;
        while (j < len && p[j] >= 0x20 && p[j] < 0x7F && !(p[j] >= 'A' && p[j] <= 'Z'))
            j++;
        if (j > i) {
            buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        int32_t cp;
        i += utf8_next(p + i, len - i, &cp);
        if (cp == 0)
            continue;
        if (cp < 0) {
            put_utf8(out, 0xFFFD);
            continue;
        }
        if (oneline && (cp == '\r' || cp == '\n' || cp == '\t'))
            cp = ' ';
        put_utf8(out, fold((uint32_t)cp));
    }
}

void search_like_pattern(struct buf *out, const char *s, size_t len)
{
    buf_append(out, "%", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' || s[i] == '%' || s[i] == '_')
            buf_append(out, "\\", 1);
        buf_append(out, s + i, 1);
    }
    buf_append(out, "%", 1);
}

void search_regex_literal(struct buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        /* In an ARE, "\" before any other ASCII character that is not a
         * letter or digit stands for that character. */
        if (c < 0x80 && !isalnum(c) && c != ' ' && c != '\n')
            buf_append(out, "\\", 1);
        buf_append(out, s + i, 1);
    }
}

/* ---- Date: ---- */

static const char *skip_cfws(const char *p, const char *end)
{
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p < end && *p == '(') {   /* a comment, possibly nested */
            int depth = 0;
            while (p < end) {
                if (*p == '\\' && p + 1 < end)
                    p++;
                else if (*p == '(')
                    depth++;
                else if (*p == ')' && --depth == 0) {
                    p++;
                    break;
                }
                p++;
            }
            continue;
        }
        return p;
    }
}

static int number(const char **pp, const char *end, int max_digits)
{
    const char *p = *pp;
    int v = 0, n = 0;
    while (p < end && *p >= '0' && *p <= '9' && n < max_digits) {
        v = v * 10 + (*p - '0');
        p++;
        n++;
    }
    if (n == 0 || (p < end && *p >= '0' && *p <= '9'))
        return -1;
    *pp = p;
    return v;
}

int search_parse_date(const char *s, size_t len, int *y_r, int *m_r, int *d_r)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    const char *p = s, *end = s + len;
    p = skip_cfws(p, end);
    /* [day-of-week ","] */
    if (p < end && isalpha((unsigned char)*p)) {
        while (p < end && isalpha((unsigned char)*p))
            p++;
        p = skip_cfws(p, end);
        if (p < end && *p == ',')
            p++;
        p = skip_cfws(p, end);
    }
    int d = number(&p, end, 2);
    if (d < 1 || d > 31)
        return -1;
    p = skip_cfws(p, end);
    if (p + 3 > end)
        return -1;
    int m = 0;
    for (int i = 0; i < 12; i++)
        if (strncasecmp(p, months + 3 * i, 3) == 0)
            m = i + 1;
    if (!m)
        return -1;
    p += 3;
    while (p < end && isalpha((unsigned char)*p))   /* "February" seen in the wild */
        p++;
    p = skip_cfws(p, end);
    const char *ys = p;
    int y = number(&p, end, 4);
    if (y < 0)
        return -1;
    if (p - ys == 2)
        y += y < 50 ? 2000 : 1900;   /* RFC 5322 4.3 */
    else if (p - ys == 3)
        y += 1900;
    if (y < 1000 || y > 9999)
        return -1;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
        return -1;
    *y_r = y;
    *m_r = m;
    *d_r = d;
    return 0;
}
