/* Content-Transfer-Encoding decoders (backend/cte_decode.c): RFC 2045
 * examples and hostile input, each fed whole, split at every byte boundary
 * into two pieces, one byte at a time, and counted without output; all must
 * agree. */
#include "check.h"
#include "cte_decode.h"

#include <stdlib.h>

struct dcase {
    enum cte kind;
    const char *in;
    size_t in_len;     /* 0: strlen(in) */
    const char *want;
    size_t want_len;   /* 0: strlen(want) */
};

static void run(const struct dcase *c, const size_t *cuts, size_t ncuts, struct buf *out, size_t *counted)
{
    struct cte_decoder d, dc;
    cte_decoder_init(&d, c->kind);
    cte_decoder_init(&dc, c->kind);
    size_t n = c->in_len ? c->in_len : strlen(c->in), from = 0, total = 0, produced = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        size_t before = buf_len(out);
        produced += cte_decode(&d, c->in + from, to - from, out);
        CHECK(buf_len(out) - before <= to - from + CTE_MAX_BLANKS + 3);
        total += cte_decode(&dc, c->in + from, to - from, NULL);
        from = to;
    }
    produced += cte_decode_finish(&d, out);
    total += cte_decode_finish(&dc, NULL);
    CHECK(produced == buf_len(out));
    *counted = total;
}

static bool same(const struct buf *b, const char *want, size_t wl)
{
    return buf_len(b) == wl && (wl == 0 || memcmp(buf_head(b), want, wl) == 0);
}

static void check_case(const struct dcase *c)
{
    size_t n = c->in_len ? c->in_len : strlen(c->in);
    size_t wl = c->want_len ? c->want_len : strlen(c->want);
    struct buf out = {0};
    size_t counted;
    run(c, NULL, 0, &out, &counted);
    CHECK_MSG(same(&out, c->want, wl), "whole \"%s\": got \"%.*s\"", c->in, (int)buf_len(&out),
              buf_head(&out) ? buf_head(&out) : "");
    CHECK(counted == wl);
    bool splits_ok = true;
    for (size_t cut = 0; cut <= n; cut++) {
        buf_reset(&out);
        run(c, &cut, 1, &out, &counted);
        splits_ok &= same(&out, c->want, wl) && counted == wl;
    }
    CHECK_MSG(splits_ok, "split \"%s\"", c->in);
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    buf_reset(&out);
    run(c, cuts, n, &out, &counted);
    CHECK_MSG(same(&out, c->want, wl) && counted == wl, "bytewise \"%s\"", c->in);
    free(cuts);
    buf_free(&out);
}

static void test_parse(void)
{
    CHECK(cte_parse(NULL) == CTE_IDENTITY);
    CHECK(cte_parse("7bit") == CTE_IDENTITY);
    CHECK(cte_parse("8BIT") == CTE_IDENTITY);
    CHECK(cte_parse("Binary") == CTE_IDENTITY);
    CHECK(cte_parse("BASE64") == CTE_BASE64);
    CHECK(cte_parse("Quoted-Printable") == CTE_QP);
    CHECK(cte_parse("x-uuencode") == CTE_UNKNOWN);
    CHECK(cte_parse("") == CTE_UNKNOWN);
    CHECK(cte_parse("base64x") == CTE_UNKNOWN);
}

/* A long base64 body: the decoder's output equals the original octets, in
 * pieces of every size from 1 to 7, with CRLF every 76 characters. */
static void test_long_base64(void)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[3000];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (unsigned char)(i * 7 + (i >> 3));
    struct buf enc = {0};
    int col = 0;
    for (size_t i = 0; i < sizeof raw; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        char q[4] = { alpha[v >> 18], alpha[(v >> 12) & 63], alpha[(v >> 6) & 63], alpha[v & 63] };
        buf_append(&enc, q, 4);
        if ((col += 4) == 76) {
            buf_append(&enc, "\r\n", 2);
            col = 0;
        }
    }
    for (size_t step = 1; step <= 7; step++) {
        struct cte_decoder d;
        cte_decoder_init(&d, CTE_BASE64);
        struct buf out = {0};
        for (size_t i = 0; i < buf_len(&enc); i += step)
            cte_decode(&d, buf_head(&enc) + i, buf_len(&enc) - i < step ? buf_len(&enc) - i : step, &out);
        cte_decode_finish(&d, &out);
        CHECK(buf_len(&out) == sizeof raw && memcmp(buf_head(&out), raw, sizeof raw) == 0);
        buf_free(&out);
    }
    buf_free(&enc);
}

/* A run of blanks longer than the decoder holds comes through as data, and
 * memory stays bounded. */
static void test_long_blanks(void)
{
    size_t n = 3 * CTE_MAX_BLANKS;
    char *in = malloc(n + 3);
    memset(in, ' ', n);
    memcpy(in + n, "x\n", 3);
    struct cte_decoder d;
    cte_decoder_init(&d, CTE_QP);
    struct buf out = {0};
    cte_decode(&d, in, n + 2, &out);
    cte_decode_finish(&d, &out);
    CHECK(buf_len(&out) == n + 2 && memcmp(buf_head(&out), in, n + 2) == 0);
    /* blanks at a line end after the held limit: only the held ones go */
    memcpy(in + n, "\r\n", 3);
    buf_reset(&out);
    cte_decoder_init(&d, CTE_QP);
    cte_decode(&d, in, n + 2, &out);
    cte_decode_finish(&d, &out);
    CHECK(buf_len(&out) <= n + 2 - 1 && buf_len(&out) >= n + 2 - CTE_MAX_BLANKS);
    CHECK(memcmp(buf_head(&out) + buf_len(&out) - 2, "\r\n", 2) == 0);
    buf_free(&out);
    free(in);
}

int main(void)
{
    static const struct dcase cases[] = {
        /* identity */
        { CTE_IDENTITY, "", 0, "", 0 },
        { CTE_IDENTITY, "a\0b=\r\n  \r\n", 10, "a\0b=\r\n  \r\n", 10 },
        /* base64: RFC 4648 test vectors */
        { CTE_BASE64, "", 0, "", 0 },
        { CTE_BASE64, "Zg==", 0, "f", 0 },
        { CTE_BASE64, "Zm8=", 0, "fo", 0 },
        { CTE_BASE64, "Zm9v", 0, "foo", 0 },
        { CTE_BASE64, "Zm9vYg==", 0, "foob", 0 },
        { CTE_BASE64, "Zm9vYmE=", 0, "fooba", 0 },
        { CTE_BASE64, "Zm9vYmFy", 0, "foobar", 0 },
        /* line breaks anywhere, CRLF or LF */
        { CTE_BASE64, "Zm9v\r\nYmFy\r\n", 0, "foobar", 0 },
        { CTE_BASE64, "Zm\n9vY\r\nmFy\n", 0, "foobar", 0 },
        /* NULs and 0xFF decoded */
        { CTE_BASE64, "AAEC/w==\r\n", 0, "\0\1\2\377", 4 },
        /* garbage outside the alphabet is ignored (RFC 2045 6.8) */
        { CTE_BASE64, "aGVs!!bG8=\r\n", 0, "hello", 0 },
        { CTE_BASE64, "*a G\tV\x80s\377bG8", 0, "hello", 0 },
        { CTE_BASE64, "\0aGk=", 5, "hi", 0 },
        /* "=" ends the data: what follows is ignored */
        { CTE_BASE64, "aGk=aGk=\r\n", 0, "hi", 0 },
        { CTE_BASE64, "aG=k", 0, "h", 0 },
        { CTE_BASE64, "=aGk", 0, "", 0 },
        /* truncated: whole octets only */
        { CTE_BASE64, "aGVsbG8", 0, "hello", 0 },
        { CTE_BASE64, "aGVsbG", 0, "hell", 0 },
        { CTE_BASE64, "aGVsb", 0, "hel", 0 },
        { CTE_BASE64, "a", 0, "", 0 },
        { CTE_BASE64, "Zg=", 0, "f", 0 },
        { CTE_BASE64, "\r\n\r\n", 0, "", 0 },
        /* quoted-printable: RFC 2045 6.7 */
        { CTE_QP, "", 0, "", 0 },
        { CTE_QP, "plain text\r\n", 0, "plain text\r\n", 0 },
        { CTE_QP, "caf=C3=A9\r\n", 0, "caf\303\251\r\n", 0 },
        { CTE_QP, "lower=c3=a9", 0, "lower\303\251", 0 },
        { CTE_QP, "=00=FF", 0, "\0\377", 2 },
        /* soft line breaks, also with transport padding after the "=" */
        { CTE_QP, "soft=\r\nbreak", 0, "softbreak", 0 },
        { CTE_QP, "soft=\nbreak", 0, "softbreak", 0 },
        { CTE_QP, "soft= \t \r\nbreak", 0, "softbreak", 0 },
        { CTE_QP, "soft=  \nbreak", 0, "softbreak", 0 },
        { CTE_QP, "end=", 0, "end=", 0 },
        { CTE_QP, "end=\r\n", 0, "end", 0 },
        { CTE_QP, "end= ", 0, "end", 0 },
        /* rule 3: blanks before a line break (or the end) are dropped */
        { CTE_QP, "end  \r\nline2\r\n", 0, "end\r\nline2\r\n", 0 },
        { CTE_QP, "tab\t\t\nx", 0, "tab\nx", 0 },
        { CTE_QP, "last  ", 0, "last", 0 },
        { CTE_QP, "a b\tc", 0, "a b\tc", 0 },
        { CTE_QP, "keep=20\r\n", 0, "keep \r\n", 0 },
        { CTE_QP, "Now's the time =\r\nfor all folk to come=\r\n to the aid", 0,
          "Now's the time for all folk to come to the aid", 0 },
        /* not escapes: left as they are */
        { CTE_QP, "a=ZZb", 0, "a=ZZb", 0 },
        { CTE_QP, "a=4 c", 0, "a=4 c", 0 },
        { CTE_QP, "a=4", 0, "a=4", 0 },
        { CTE_QP, "a= b", 0, "a= b", 0 },
        { CTE_QP, "a=\rb", 0, "a=\rb", 0 },
        { CTE_QP, "a==41", 0, "a=A", 0 },
        { CTE_QP, "x=\r", 0, "x", 0 },
        /* bare CR is data; CR LF after blanks is a line end */
        { CTE_QP, "a\rb", 0, "a\rb", 0 },
        { CTE_QP, "a \rb", 0, "a \rb", 0 },
        { CTE_QP, "a \r", 0, "a \r", 0 },
        { CTE_QP, "a\r\r\n", 0, "a\r\r\n", 0 },
        { CTE_QP, "n\0ul", 4, "n\0ul", 4 },
    };
    test_parse();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
    test_long_base64();
    test_long_blanks();
    return check_report();
}
