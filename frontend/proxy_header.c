#include "proxy_header.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char V2_SIG[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                          0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
static const char V1_SIG[] = "PROXY ";

enum { PP2_TYPE_SSL = 0x20, PP2_CLIENT_SSL = 0x01 };

void proxy_parser_init(struct proxy_parser *p)
{
    memset(p, 0, sizeof *p);
    p->state = PROXY_MORE;
}

static enum proxy_result fail(struct proxy_parser *p, const char *why)
{
    p->state = PROXY_ERROR;
    p->error = why;
    return PROXY_ERROR;
}

/* A decimal port: 1 to 5 digits, at most 65535. */
static bool parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535 || (n > 1 && s[0] == '0'))
        return false;
    *out = (uint16_t)v;
    return true;
}

/* Splits the next space-terminated field of [*pos, end). */
static bool field(const char **pos, const char *end, const char **f, size_t *n, bool last)
{
    const char *s = *pos;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    if (last) {
        if (sp)
            return false;
        sp = end;
    } else if (!sp) {
        return false;
    }
    *f = s;
    *n = (size_t)(sp - s);
    *pos = sp < end ? sp + 1 : end;
    return *n > 0;
}

static bool parse_addr(int family, const char *s, size_t n, char *out, size_t outlen)
{
    char tmp[48];
    unsigned char bin[16];
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(family, tmp, bin) != 1)
        return false;
    return inet_ntop(family, bin, out, (socklen_t)outlen) != NULL;
}

/* "PROXY TCP4 src dst sport dport" (the CRLF already removed). */
static enum proxy_result parse_v1(struct proxy_parser *p, struct proxy_info *info)
{
    const char *line = (const char *)p->buf + 6, *end = (const char *)p->buf + p->len - 2;
    if (memchr(p->buf, '\0', p->len))
        return fail(p, "NUL in PROXY v1 header");
    memset(info, 0, sizeof *info);
    info->version = 1;
    info->family = 0;   /* AF_UNSPEC */
    size_t rest = (size_t)(end - line);
    if (rest >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (rest == 7 || line[7] == ' '))
        return PROXY_DONE;   /* anything may follow UNKNOWN (spec 2.1) */
    int family;
    if (rest >= 5 && memcmp(line, "TCP4 ", 5) == 0)
        family = AF_INET;
    else if (rest >= 5 && memcmp(line, "TCP6 ", 5) == 0)
        family = AF_INET6;
    else
        return fail(p, "unknown PROXY v1 protocol");
    const char *pos = line + 5, *f;
    size_t n;
    if (!field(&pos, end, &f, &n, false) || !parse_addr(family, f, n, info->src, sizeof info->src) ||
        !field(&pos, end, &f, &n, false) || !parse_addr(family, f, n, info->dst, sizeof info->dst) ||
        !field(&pos, end, &f, &n, false) || !parse_port(f, n, &info->src_port) ||
        !field(&pos, end, &f, &n, true) || !parse_port(f, n, &info->dst_port))
        return fail(p, "malformed PROXY v1 header");
    info->family = family;
    return PROXY_DONE;
}

static enum proxy_result parse_v2(struct proxy_parser *p, struct proxy_info *info)
{
    const unsigned char *b = p->buf;
    size_t len = p->total - 16;
    const unsigned char *body = b + 16;
    memset(info, 0, sizeof *info);
    info->version = 2;
    int cmd = b[12] & 0x0f, fam = b[13] >> 4, proto = b[13] & 0x0f;
    if (cmd == 0) {   /* LOCAL: whatever follows is ignored (spec 2.2) */
        info->local = true;
        return PROXY_DONE;
    }
    size_t alen;
    switch (fam) {
    case 0: alen = 0; break;      /* UNSPEC */
    case 1: alen = 12; break;     /* INET */
    case 2: alen = 36; break;     /* INET6 */
    case 3: alen = 216; break;    /* UNIX */
    default: return fail(p, "unknown PROXY v2 address family");
    }
    if (proto > 2 || (fam != 0 && proto == 0) || (fam == 0 && proto != 0))
        return fail(p, "unknown PROXY v2 transport");
    if (proto == 2)
        return fail(p, "PROXY v2 datagram on a stream listener");
    if (len < alen)
        return fail(p, "PROXY v2 address block truncated");
    if (fam == 1 || fam == 2) {
        int af = fam == 1 ? AF_INET : AF_INET6;
        size_t a = fam == 1 ? 4 : 16;
        if (!inet_ntop(af, body, info->src, sizeof info->src) ||
            !inet_ntop(af, body + a, info->dst, sizeof info->dst))
            return fail(p, "PROXY v2 address");
        info->src_port = (uint16_t)(body[2 * a] << 8 | body[2 * a + 1]);
        info->dst_port = (uint16_t)(body[2 * a + 2] << 8 | body[2 * a + 3]);
        info->family = af;
    }
    /* TLVs: type, 16-bit length, value; unknown ones are skipped. */
    for (size_t off = alen; off < len;) {
        if (len - off < 3)
            return fail(p, "PROXY v2 TLV truncated");
        unsigned type = body[off];
        size_t vlen = (size_t)body[off + 1] << 8 | body[off + 2];
        if (vlen > len - off - 3)
            return fail(p, "PROXY v2 TLV truncated");
        if (type == PP2_TYPE_SSL && vlen >= 5 && (body[off + 3] & PP2_CLIENT_SSL))
            info->ssl = true;
        off += 3 + vlen;
    }
    return PROXY_DONE;
}

enum proxy_result proxy_parser_feed(struct proxy_parser *p, const void *data, size_t len,
                                    size_t *used, struct proxy_info *info, const char **error_r)
{
    const unsigned char *d = data;
    size_t i = 0;
    enum proxy_result r = p->state;
    while (r == PROXY_MORE && i < len) {
        if (p->version == 0) {
            if (d[i] == 'P')
                p->version = 1;
            else if (d[i] == V2_SIG[0])
                p->version = 2;
            else {
                r = fail(p, "no PROXY protocol header");
                break;
            }
        }
        if (p->version == 1) {
            unsigned char c = d[i++];
            p->buf[p->len++] = c;
            if (p->len <= 6 && c != (unsigned char)V1_SIG[p->len - 1])
                r = fail(p, "no PROXY protocol header");
            else if (c == '\n')
                r = p->len >= 2 && p->buf[p->len - 2] == '\r' ? parse_v1(p, info)
                                                               : fail(p, "PROXY v1 line without CRLF");
            else if (p->len >= 2 && p->buf[p->len - 2] == '\r')
                r = fail(p, "PROXY v1 line without CRLF");
            else if (p->len >= PROXY_V1_MAX)
                r = fail(p, "PROXY v1 header too long");
            continue;
        }
        /* v2: the fixed 16 bytes, then exactly `length` more. */
        size_t want = (p->total ? p->total : 16) - p->len, n = len - i < want ? len - i : want;
        memcpy(p->buf + p->len, d + i, n);
        for (size_t k = p->len; k < p->len + n && k < 12; k++)
            if (p->buf[k] != V2_SIG[k]) {
                r = fail(p, "no PROXY protocol header");
                break;
            }
        if (r != PROXY_MORE)
            break;
        p->len += n;
        i += n;
        if (p->len == 16 && !p->total) {
            if ((p->buf[12] >> 4) != 2 || (p->buf[12] & 0x0f) > 1) {
                r = fail(p, "unsupported PROXY v2 version or command");
                break;
            }
            size_t l = (size_t)p->buf[14] << 8 | p->buf[15];
            if (l > PROXY_V2_MAX_LEN) {
                r = fail(p, "PROXY v2 header too long");
                break;
            }
            p->total = 16 + l;
        }
        if (p->total && p->len == p->total)
            r = parse_v2(p, info);
    }
    p->state = r;
    *used = i;
    if (r == PROXY_ERROR && error_r)
        *error_r = p->error;
    return r;
}
