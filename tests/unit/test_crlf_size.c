/* The POP3 size of a message (backend/crlf_size.c): bare LF counted as CRLF,
 * an unterminated last line given its line end, whatever the piece split. */
#include "check.h"
#include "crlf_size.h"

static uint64_t whole(const char *s)
{
    struct crlf_size c = CRLF_SIZE_INIT;
    crlf_size_feed(&c, s, strlen(s));
    return crlf_size_total(&c);
}

/* Every split point into two pieces, plus byte by byte, give the same. */
static int split_agrees(const char *s, uint64_t want)
{
    size_t n = strlen(s);
    for (size_t cut = 0; cut <= n; cut++) {
        struct crlf_size c;
        crlf_size_init(&c);
        crlf_size_feed(&c, s, cut);
        crlf_size_feed(&c, s + cut, n - cut);
        if (crlf_size_total(&c) != want)
            return 0;
    }
    struct crlf_size c = CRLF_SIZE_INIT;
    for (size_t i = 0; i < n; i++)
        crlf_size_feed(&c, s + i, 1);
    return crlf_size_total(&c) == want;
}

int main(void)
{
    static const struct { const char *in; uint64_t want; } cases[] = {
        { "", 0 },
        { "\r\n", 2 },
        { "\n", 2 },
        { "a\r\n", 3 },
        { "a\n", 3 },
        { "a", 3 },                           /* "a\r\n" is sent */
        { "a\r", 3 },                         /* "a\r\n" */
        { "Subject: x\n\nbody\n", 20 },
        { "Subject: x\r\n\r\nbody\r\n", 20 },
        { "a\r\r\n", 4 },                     /* the CR before CRLF stays bare */
        { "bare\rcr\r\n", 9 },
        { "\n\n\n", 6 },
        { "\r\n\n", 4 },
        { "x\ny", 6 },
        { "From: a@example.com\nSubject: lf\n\n.leading dot\nplain\n..two dots\n.\nend", 77 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_MSG(whole(cases[i].in) == cases[i].want, "case %zu: got %llu, want %llu", i,
                  (unsigned long long)whole(cases[i].in), (unsigned long long)cases[i].want);
        CHECK_MSG(split_agrees(cases[i].in, cases[i].want), "case %zu split", i);
    }
    /* Empty pieces change nothing. */
    struct crlf_size c = CRLF_SIZE_INIT;
    crlf_size_feed(&c, "a\r", 2);
    crlf_size_feed(&c, NULL, 0);
    crlf_size_feed(&c, "\n", 1);
    CHECK(crlf_size_total(&c) == 3);
    return check_report();
}
