/* libFuzzer target for backend/crlf_norm.c.
 *
 * Input: one byte giving a piece size (1..256), then the message. It is
 * normalised whole and in pieces of that size; both must agree, each piece
 * must stay within CRLF_NORM_MAX_OUT, and the output must be what
 * crlf_norm.h promises: every LF has a CR before it. Normalising the output
 * again adds nothing; it is not the identity, though: a run of CRs before
 * an LF loses one more CR, as it would in Dovecot on a second APPEND. */
#include "crlf_norm.h"

#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

static void lines_end_crlf(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check(d[i] != '\n' || (i > 0 && d[i - 1] == '\r'));
}

static size_t normalise(const uint8_t *d, size_t n, size_t step, uint8_t *out)
{
    struct crlf_norm c = CRLF_NORM_INIT;
    size_t total = 0;
    for (size_t i = 0; i < n; i += step) {
        size_t len = n - i < step ? n - i : step;
        size_t wrote = crlf_norm_feed(&c, d + i, len, out + total);
        check(wrote <= CRLF_NORM_MAX_OUT(len));
        total += wrote;
    }
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    data++;
    size--;
    uint8_t *whole = malloc(CRLF_NORM_MAX_OUT(size) + 1);
    uint8_t *pieces = malloc(CRLF_NORM_MAX_OUT(size) + 1);
    uint8_t *again = malloc(CRLF_NORM_MAX_OUT(CRLF_NORM_MAX_OUT(size)) + 1);
    check(whole && pieces && again);
    size_t n1 = normalise(data, size, size ? size : 1, whole);
    size_t n2 = normalise(data, size, step, pieces);
    check(n1 == n2 && memcmp(whole, pieces, n1) == 0);
    lines_end_crlf(whole, n1);
    size_t n3 = normalise(whole, n1, step, again);
    check(n3 <= n1);
    lines_end_crlf(again, n3);
    free(whole);
    free(pieces);
    free(again);
    return 0;
}
