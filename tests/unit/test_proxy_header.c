/* PROXY protocol v1/v2 parser: the spec's examples and hostile input, each
 * fed whole (with trailing bytes that must stay unread) and byte by byte. */
#include "check.h"
#include "cidr.h"
#include "proxy_header.h"

#include <stdlib.h>
#include <sys/socket.h>

struct expect {
    const char *name;
    const unsigned char *data;
    size_t len;
    enum proxy_result result;     /* fed whole */
    int family;
    const char *src;
    unsigned sport;
    bool local, ssl;
};

/* Feeds all of data (plus "XYZ" after it) at once and one byte at a time. */
static void run(const struct expect *e)
{
    unsigned char *buf = malloc(e->len + 3);
    memcpy(buf, e->data, e->len);
    memcpy(buf + e->len, "XYZ", 3);
    for (int mode = 0; mode < 2; mode++) {
        struct proxy_parser *p = malloc(sizeof *p);
        proxy_parser_init(p);
        struct proxy_info info;
        const char *err = NULL;
        enum proxy_result r = PROXY_MORE;
        size_t pos = 0, used;
        size_t total = e->len + 3;
        while (r == PROXY_MORE && pos < total) {
            size_t n = mode == 0 ? total - pos : 1;
            r = proxy_parser_feed(p, buf + pos, n, &used, &info, &err);
            CHECK_MSG(used <= n, "%s: used %zu of %zu", e->name, used, n);
            pos += used;
            if (r == PROXY_MORE)
                CHECK_MSG(used == n, "%s: MORE but left bytes", e->name);
        }
        CHECK_MSG(r == e->result, "%s mode %d: result %d, want %d (%s)", e->name, mode, r, e->result,
                  err ? err : "");
        if (r == PROXY_ERROR)
            CHECK_MSG(err && *err, "%s: error without a reason", e->name);
        if (r == PROXY_DONE && e->result == PROXY_DONE) {
            CHECK_MSG(pos == e->len, "%s: consumed %zu, header is %zu", e->name, pos, e->len);
            CHECK_MSG(info.family == e->family, "%s: family %d", e->name, info.family);
            CHECK_MSG(info.local == e->local, "%s: local", e->name);
            CHECK_MSG(info.ssl == e->ssl, "%s: ssl", e->name);
            if (e->src) {
                CHECK_MSG(strcmp(info.src, e->src) == 0, "%s: src %s", e->name, info.src);
                CHECK_MSG(info.src_port == e->sport, "%s: sport %u", e->name, info.src_port);
            }
            /* Feeding after DONE takes nothing. */
            r = proxy_parser_feed(p, "A", 1, &used, &info, &err);
            CHECK(r == PROXY_DONE && used == 0);
        }
        free(p);
    }
    free(buf);
}

#define S(x) (const unsigned char *)(x), sizeof(x) - 1

static const unsigned char SIG[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* Builds a v2 header: ver_cmd, fam, then body. */
static size_t v2(unsigned char *out, unsigned ver_cmd, unsigned fam, const unsigned char *body,
                 size_t blen, long declared)
{
    memcpy(out, SIG, 12);
    out[12] = (unsigned char)ver_cmd;
    out[13] = (unsigned char)fam;
    size_t l = declared >= 0 ? (size_t)declared : blen;
    out[14] = (unsigned char)(l >> 8);
    out[15] = (unsigned char)l;
    if (blen)
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

static void v1_tests(void)
{
    const struct expect t[] = {
        { "spec tcp4", S("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), PROXY_DONE, AF_INET, "192.168.0.1", 56324 },
        { "tcp6", S("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"), PROXY_DONE, AF_INET6, "2001:db8::1", 1 },
        { "tcp6 max", S("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"), PROXY_DONE, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535 },
        { "unknown", S("PROXY UNKNOWN\r\n"), PROXY_DONE, 0, NULL, 0 },
        { "unknown worst case", S("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"), PROXY_DONE, 0, NULL, 0 },
        { "port 0", S("PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n"), PROXY_DONE, AF_INET, "1.2.3.4", 0 },
        { "lf only", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), PROXY_ERROR },
        { "cr alone", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\r\n"), PROXY_ERROR },
        { "bad sig", S("PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_ERROR },
        { "lowercase", S("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_ERROR },
        { "imap instead", S("a1 LOGIN x y\r\n"), PROXY_ERROR },
        { "tls instead", S("\x16\x03\x01\x02\x00"), PROXY_ERROR },
        { "bad proto", S("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_ERROR },
        { "octet 300", S("PROXY TCP4 300.2.3.4 5.6.7.8 1 2\r\n"), PROXY_ERROR },
        { "v6 in tcp4", S("PROXY TCP4 ::1 ::1 1 2\r\n"), PROXY_ERROR },
        { "v4 in tcp6", S("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_ERROR },
        { "port 65536", S("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), PROXY_ERROR },
        { "port leading zero", S("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), PROXY_ERROR },
        { "port sign", S("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), PROXY_ERROR },
        { "double space", S("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_ERROR },
        { "trailing space", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), PROXY_ERROR },
        { "missing port", S("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), PROXY_ERROR },
        { "extra field", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), PROXY_ERROR },
        { "nul", S("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), PROXY_ERROR },
        { "empty", S("PROXY \r\n"), PROXY_ERROR },
        { "unknownX", S("PROXY UNKNOWNX\r\n"), PROXY_ERROR },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        run(&t[i]);

    /* 108 bytes without an end of line: refused at 107, not buffered on. */
    char longline[200];
    memset(longline, 'A', sizeof longline);
    memcpy(longline, "PROXY UNKNOWN ", 14);
    struct expect e = { "too long", (const unsigned char *)longline, sizeof longline, PROXY_ERROR };
    run(&e);
    struct proxy_parser p;
    proxy_parser_init(&p);
    size_t used;
    struct proxy_info info;
    CHECK(proxy_parser_feed(&p, longline, sizeof longline, &used, &info, NULL) == PROXY_ERROR);
    CHECK(used <= PROXY_V1_MAX);
    /* A truncated header is MORE, never DONE. */
    proxy_parser_init(&p);
    CHECK(proxy_parser_feed(&p, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", 31, &used, &info, NULL) == PROXY_MORE);
    CHECK(used == 31);
}

static void v2_tests(void)
{
    unsigned char h[16 + PROXY_V2_MAX_LEN + 64], body[PROXY_V2_MAX_LEN + 64];
    size_t n;
    /* TCP4 127.0.0.2:1234 -> 10.0.0.1:143 */
    const unsigned char in4[12] = { 127, 0, 0, 2, 10, 0, 0, 1, 0x04, 0xd2, 0, 143 };
    n = v2(h, 0x21, 0x11, in4, 12, -1);
    run(&(struct expect){ "v2 tcp4", h, n, PROXY_DONE, AF_INET, "127.0.0.2", 1234 });
    /* ... with an AWS NLB TLV (0xEA) and a NOOP: skipped. */
    memcpy(body, in4, 12);
    const unsigned char tlvs[] = { 0xEA, 0x00, 0x06, 0x01, 'v', 'p', 'c', 'e', '1', 0x04, 0x00, 0x00 };
    memcpy(body + 12, tlvs, sizeof tlvs);
    n = v2(h, 0x21, 0x11, body, 12 + sizeof tlvs, -1);
    run(&(struct expect){ "v2 tcp4 tlvs", h, n, PROXY_DONE, AF_INET, "127.0.0.2", 1234 });
    /* SSL TLV with PP2_CLIENT_SSL. */
    const unsigned char ssl[] = { 0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0 };
    memcpy(body + 12, ssl, sizeof ssl);
    n = v2(h, 0x21, 0x11, body, 12 + sizeof ssl, -1);
    run(&(struct expect){ "v2 ssl", h, n, PROXY_DONE, AF_INET, "127.0.0.2", 1234, false, true });
    /* TCP6 */
    unsigned char in6[36] = { 0x20, 0x01, 0x0d, 0xb8 };
    in6[15] = 1;
    in6[16] = 0x20; in6[17] = 0x01; in6[18] = 0x0d; in6[19] = 0xb8; in6[31] = 2;
    in6[32] = 0xff; in6[33] = 0xff; in6[34] = 0x03; in6[35] = 0xe1;
    n = v2(h, 0x21, 0x21, in6, 36, -1);
    run(&(struct expect){ "v2 tcp6", h, n, PROXY_DONE, AF_INET6, "2001:db8::1", 65535 });
    /* LOCAL (health check): addresses ignored. */
    n = v2(h, 0x20, 0x00, NULL, 0, -1);
    run(&(struct expect){ "v2 local", h, n, PROXY_DONE, 0, NULL, 0, true });
    n = v2(h, 0x20, 0x11, in4, 12, -1);
    run(&(struct expect){ "v2 local with address", h, n, PROXY_DONE, 0, NULL, 0, true });
    /* UNSPEC and UNIX: no usable address. */
    n = v2(h, 0x21, 0x00, NULL, 0, -1);
    run(&(struct expect){ "v2 unspec", h, n, PROXY_DONE, 0 });
    memset(body, 0, 216);
    n = v2(h, 0x21, 0x31, body, 216, -1);
    run(&(struct expect){ "v2 unix", h, n, PROXY_DONE, 0 });
    /* The largest accepted, and one more. */
    memcpy(body, in4, 12);
    body[12] = 0x30;
    body[13] = (unsigned char)((PROXY_V2_MAX_LEN - 15) >> 8);
    body[14] = (unsigned char)(PROXY_V2_MAX_LEN - 15);
    memset(body + 15, 'x', PROXY_V2_MAX_LEN - 15);
    n = v2(h, 0x21, 0x11, body, PROXY_V2_MAX_LEN, -1);
    run(&(struct expect){ "v2 max", h, n, PROXY_DONE, AF_INET, "127.0.0.2", 1234 });
    n = v2(h, 0x21, 0x11, body, 12, PROXY_V2_MAX_LEN + 1);
    run(&(struct expect){ "v2 too long", h, n, PROXY_ERROR });
    n = v2(h, 0x21, 0x11, in4, 12, 65535);
    run(&(struct expect){ "v2 64k", h, n, PROXY_ERROR });
    /* Hostile. */
    n = v2(h, 0x11, 0x11, in4, 12, -1);
    run(&(struct expect){ "v2 version 1", h, n, PROXY_ERROR });
    n = v2(h, 0x22, 0x11, in4, 12, -1);
    run(&(struct expect){ "v2 command 2", h, n, PROXY_ERROR });
    n = v2(h, 0x21, 0x41, in4, 12, -1);
    run(&(struct expect){ "v2 family 4", h, n, PROXY_ERROR });
    n = v2(h, 0x21, 0x12, in4, 12, -1);
    run(&(struct expect){ "v2 dgram", h, n, PROXY_ERROR });
    n = v2(h, 0x21, 0x13, in4, 12, -1);
    run(&(struct expect){ "v2 transport 3", h, n, PROXY_ERROR });
    n = v2(h, 0x21, 0x11, in4, 11, -1);
    run(&(struct expect){ "v2 short inet", h, n, PROXY_ERROR });
    n = v2(h, 0x21, 0x21, in6, 12, -1);
    run(&(struct expect){ "v2 short inet6", h, n, PROXY_ERROR });
    memcpy(body, in4, 12);
    const unsigned char badtlv[] = { 0xEA, 0x00, 0x09, 0x01 };
    memcpy(body + 12, badtlv, sizeof badtlv);
    n = v2(h, 0x21, 0x11, body, 12 + sizeof badtlv, -1);
    run(&(struct expect){ "v2 truncated tlv", h, n, PROXY_ERROR });
    n = v2(h, 0x21, 0x11, body, 14, -1);
    run(&(struct expect){ "v2 tlv header cut", h, n, PROXY_ERROR });
    n = v2(h, 0x21, 0x11, in4, 12, -1);
    h[5] = 0x0e;
    run(&(struct expect){ "v2 bad signature", h, n, PROXY_ERROR });
    /* Truncated: MORE at every length short of the whole. */
    n = v2(h, 0x21, 0x11, in4, 12, -1);
    for (size_t k = 0; k < n; k++) {
        struct proxy_parser p;
        proxy_parser_init(&p);
        size_t used;
        struct proxy_info info;
        CHECK(proxy_parser_feed(&p, h, k, &used, &info, NULL) == PROXY_MORE && used == k);
    }
}

static void cidr_tests(void)
{
    struct cidr_list l;
    char err[128];
    CHECK(cidr_parse_list("127.0.0.0/8 ::1, 10.1.0.0/16;fd00::/8", &l, err, sizeof err) == 0);
    CHECK(l.n == 4);
    CHECK(cidr_match(&l, "127.0.0.1"));
    CHECK(cidr_match(&l, "127.255.0.9"));
    CHECK(cidr_match(&l, "::1"));
    CHECK(cidr_match(&l, "::ffff:127.0.0.1"));
    CHECK(cidr_match(&l, "10.1.200.3"));
    CHECK(!cidr_match(&l, "10.2.0.1"));
    CHECK(cidr_match(&l, "fd12::3"));
    CHECK(!cidr_match(&l, "fe80::1"));
    CHECK(!cidr_match(&l, "unknown"));
    CHECK(cidr_parse_list("127.0.0.1/32", &l, err, sizeof err) == 0);
    CHECK(cidr_match(&l, "127.0.0.1") && !cidr_match(&l, "127.0.0.2"));
    CHECK(cidr_parse_list("", &l, err, sizeof err) == 0 && l.n == 0);
    CHECK(!cidr_match(&l, "127.0.0.1"));
    CHECK(cidr_parse_list("0.0.0.0/0", &l, err, sizeof err) == 0 && cidr_match(&l, "8.8.8.8"));
    CHECK(cidr_parse_list("10.0.0.0/33", &l, err, sizeof err) < 0);
    CHECK(cidr_parse_list("::/129", &l, err, sizeof err) < 0);
    CHECK(cidr_parse_list("10.0.0/8", &l, err, sizeof err) < 0);
    CHECK(cidr_parse_list("10.0.0.0/", &l, err, sizeof err) < 0);
    CHECK(cidr_parse_list("example.com", &l, err, sizeof err) < 0);
}

int main(void)
{
    v1_tests();
    v2_tests();
    cidr_tests();
    return check_report();
}
