/* libFuzzer target for backend/cte_decode.c.
 *
 * Input: one byte choosing the encoding (low 2 bits) and a piece size (the
 * rest), then the encoded data. The data is decoded whole, in pieces of that
 * size, and counted without output: all three must agree, and the output is
 * never longer than the input (base64: three quarters of it). */
#include "cte_decode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

static size_t decode(enum cte kind, const uint8_t *d, size_t n, size_t step, struct buf *out)
{
    struct cte_decoder dec;
    cte_decoder_init(&dec, kind);
    size_t total = 0;
    for (size_t i = 0; i < n; i += step)
        total += cte_decode(&dec, d + i, n - i < step ? n - i : step, out);
    total += cte_decode_finish(&dec, out);
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const enum cte kinds[] = { CTE_IDENTITY, CTE_QP, CTE_BASE64, CTE_QP };
    enum cte kind = kinds[data[0] & 3];
    size_t step = (size_t)(data[0] >> 2) + 1;
    data++;
    size--;
    struct buf whole = {0}, pieces = {0};
    size_t n1 = decode(kind, data, size, size ? size : 1, &whole);
    size_t n2 = decode(kind, data, size, step, &pieces);
    size_t n3 = decode(kind, data, size, step, NULL);
    check(n1 == buf_len(&whole) && n2 == buf_len(&pieces) && n3 == n1 && n2 == n1);
    check(n1 == 0 || memcmp(buf_head(&whole), buf_head(&pieces), n1) == 0);
    check(kind == CTE_BASE64 ? n1 <= size / 4 * 3 + 2 : n1 <= size);
    buf_free(&whole);
    buf_free(&pieces);
    return 0;
}
