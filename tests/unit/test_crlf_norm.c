/* Line ends made CRLF at arrival (backend/crlf_norm.c), whatever the split.
 *
 * The expected outputs of the first table are what Debian's Dovecot 2.3.19
 * (maildir) answered to FETCH BODY[] for each input APPENDed as it is. Every
 * case is fed whole, in two pieces at every cut, in three pieces at every
 * pair of cuts and byte by byte; each piece's output must stay within
 * CRLF_NORM_MAX_OUT. Then seeded random inputs over the alphabet that
 * matters ("\r", "\n", "x") are compared with a plain two-step model of
 * Dovecot's two streams. */
#include "check.h"
#include "crlf_norm.h"

#include <stdlib.h>

struct out {
    char data[4096];
    size_t len;
    int over_bound;   /* a piece wrote more than CRLF_NORM_MAX_OUT */
};

static void feed(struct crlf_norm *c, struct out *o, const char *p, size_t n)
{
    size_t wrote = crlf_norm_feed(c, p, n, o->data + o->len);
    if (wrote > CRLF_NORM_MAX_OUT(n))
        o->over_bound = 1;
    o->len += wrote;
}

static int same(const struct out *o, const char *want, size_t want_len)
{
    return !o->over_bound && o->len == want_len && memcmp(o->data, want, want_len) == 0;
}

/* in (n bytes) fed in every split listed above gives want. */
static void agrees(const char *in, size_t n, const char *want, size_t want_len)
{
    struct crlf_norm c;
    struct out o;
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++) {
            crlf_norm_init(&c);
            o.len = 0;
            o.over_bound = 0;
            feed(&c, &o, in, a);
            feed(&c, &o, in + a, b - a);
            feed(&c, &o, in + b, n - b);
            CHECK_MSG(same(&o, want, want_len), "input of %zu bytes cut at %zu and %zu", n, a, b);
        }
    crlf_norm_init(&c);
    o.len = 0;
    o.over_bound = 0;
    for (size_t i = 0; i < n; i++) {
        feed(&c, &o, in + i, 1);
        feed(&c, &o, in + i, 0);   /* empty pieces change nothing */
    }
    CHECK_MSG(same(&o, want, want_len), "input of %zu bytes byte by byte", n);
}

#define AGREES(in, want) agrees(in, sizeof in - 1, want, sizeof want - 1)

/* Dovecot's two streams one after the other, written plainly: "\r\n" -> "\n"
 * keeping other CRs and dropping a final one (i_stream_create_lf), then a CR
 * before every LF that lacks one (i_stream_create_crlf). */
static size_t model(const char *in, size_t n, char *out)
{
    char *lf = malloc(n + 1);
    size_t m = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' && (i + 1 == n || in[i + 1] == '\n'))
            continue;
        lf[m++] = in[i];
    }
    for (size_t i = 0; i < m; i++) {
        if (lf[i] == '\n' && (i == 0 || lf[i - 1] != '\r'))
            out[k++] = '\r';
        out[k++] = lf[i];
    }
    free(lf);
    return k;
}

static void against_model(unsigned seed, size_t n)
{
    static const char alphabet[] = "\r\n\r\nx";
    char in[64], want[128];
    srand(seed);
    for (size_t i = 0; i < n; i++)
        in[i] = alphabet[rand() % 5];
    size_t want_len = model(in, n, want);
    agrees(in, n, want, want_len);
}

int main(void)
{
    /* Answered by Dovecot 2.3.19, input APPENDed as it is. */
    AGREES("Subject: a\n\nline1\nline2\n", "Subject: a\r\n\r\nline1\r\nline2\r\n");
    AGREES("Subject: a\r\n\r\nx\ry\r\nz\r\n", "Subject: a\r\n\r\nx\ry\r\nz\r\n");
    AGREES("Subject: a\r\n\r\nx\r\r\ny\r\n", "Subject: a\r\n\r\nx\r\ny\r\n");
    AGREES("Subject: a\r\n\r\nx\r\r\r\ny\r\n", "Subject: a\r\n\r\nx\r\r\ny\r\n");
    AGREES("Subject: a\r\n\r\nx\r", "Subject: a\r\n\r\nx");
    AGREES("Subject: a\r\n\r\nx", "Subject: a\r\n\r\nx");
    AGREES("Subject: a\n\r\nx\n", "Subject: a\r\n\r\nx\r\n");
    AGREES("Subject: a\rb\r\n\r\nx\r\n", "Subject: a\rb\r\n\r\nx\r\n");
    AGREES("Subject: a\r\r\n\r\r\nbody\r\n", "Subject: a\r\n\r\nbody\r\n");
    AGREES("Subject: a\r\n\r\n\r\r\r\n\n\r\n", "Subject: a\r\n\r\n\r\r\n\r\n\r\n");
    AGREES("Subject: a\r\n\r\nx\r\r", "Subject: a\r\n\r\nx\r");
    AGREES("Subject: a\n\nx\ny", "Subject: a\r\n\r\nx\r\ny");

    /* Edges of the same rules. */
    AGREES("", "");
    AGREES("\r", "");
    AGREES("\n", "\r\n");
    AGREES("\r\n", "\r\n");
    AGREES("\n\n\n", "\r\n\r\n\r\n");      /* the 2x bound, reached */
    AGREES("\r\rx", "\r\rx");
    AGREES("\r\n\r", "\r\n");
    AGREES("\rx\n", "\rx\r\n");              /* a kept CR is not a line end */
    AGREES("\r\r\r\r\n", "\r\r\r\n");
    AGREES("a\r\x00\n", "a\r\x00\r\n");     /* NUL is a byte like any other */

    for (unsigned seed = 1; seed <= 300; seed++)
        against_model(seed, 1 + seed % 24);

    /* The buf form appends, from wherever the buffer is. */
    struct buf b = { 0 };
    buf_append(&b, "ab", 2);
    buf_consume(&b, 1);
    struct crlf_norm c = CRLF_NORM_INIT;
    CHECK(crlf_norm_append(&c, "x\n\r", 3, &b) == 3);
    CHECK(crlf_norm_append(&c, "\n", 1, &b) == 2);   /* the held CR ended a line */
    CHECK(crlf_norm_append(&c, NULL, 0, &b) == 0);
    CHECK(buf_len(&b) == 6 && memcmp(buf_head(&b), "bx\r\n\r\n", 6) == 0);
    buf_free(&b);
    return check_report();
}
