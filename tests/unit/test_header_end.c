/* Where the header ends (backend/header_end.c), whatever the piece split. */
#include "check.h"
#include "header_end.h"

/* The header size of s fed whole, at every two-piece split and byte by byte
 * must all be want. */
static void agrees(const char *s, uint64_t want)
{
    size_t n = strlen(s);
    struct header_end h;
    for (size_t cut = 0; cut <= n; cut++) {
        header_end_init(&h);
        header_end_feed(&h, s, cut);
        CHECK_MSG(header_end_feed(&h, s + cut, n - cut) == want, "\"%s\" cut at %zu", s, cut);
    }
    header_end_init(&h);
    uint64_t got = 0;
    for (size_t i = 0; i < n; i++)
        got = header_end_feed(&h, s + i, 1);
    CHECK_MSG(got == want, "\"%s\" byte by byte: %llu", s, (unsigned long long)got);
}

int main(void)
{
    agrees("Subject: x\r\n\r\nbody\r\n", 14);
    agrees("Subject: x\n\nbody\n", 12);
    agrees("Subject: x\r\nTo: y\r\n\r\n\r\nbody", 21);
    /* starting with the empty line: a header of just that line */
    agrees("\r\nno header\r\n", 2);
    agrees("\nno header\n", 1);
    /* no empty line at all: not found */
    agrees("Subject: x\r\nX: y\r\n", 0);
    agrees("", 0);
    agrees("\r", 0);
    return check_report();
}
