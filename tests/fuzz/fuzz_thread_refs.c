/* libFuzzer target for the threading header reader (backend/thread_refs.c).
 *
 * The input is fed whole and then in pieces whose sizes come from the first
 * byte; both must give the same parameters, at most THREAD_REFS_MAX
 * references, each a valid id that is not the message's own. */
#include "thread_refs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

static void run(const uint8_t *d, size_t len, size_t step, char **msgid, char **refs)
{
    struct thread_refs t;
    thread_refs_init(&t);
    for (size_t i = 0; i < len; i += step)
        thread_refs_feed(&t, d + i, len - i < step ? len - i : step);
    for (int f = 0; f < TF_COUNT; f++)
        check(buf_len(&t.value[f]) <= THREAD_FIELD_MAX);
    thread_refs_params(&t, msgid, refs);
    thread_refs_free(&t);
}

static void valid_id(const char *s, size_t n)
{
    check(n >= 1 && n <= THREAD_MSGID_MAX);
    for (size_t i = 0; i < n; i++)
        check(s[i] > ' ' && s[i] < 0x7f && s[i] != '<' && s[i] != '>');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *m1, *r1, *m2, *r2;
    size_t step = size ? (size_t)data[0] % 17 + 1 : 1;
    run(data, size, size + 1, &m1, &r1);
    run(data, size, step, &m2, &r2);
    check((m1 == NULL) == (m2 == NULL) && (!m1 || strcmp(m1, m2) == 0));
    check(strcmp(r1, r2) == 0);
    if (m1)
        valid_id(m1, strlen(m1));
    /* r1 is {"id","id",...}: ids hold no quote or backslash to escape. */
    size_t n = strlen(r1), count = 0;
    check(n >= 2 && r1[0] == '{' && r1[n - 1] == '}');
    for (size_t i = 1; i + 1 < n;) {
        check(r1[i] == '"');
        const char *end = strchr(r1 + i + 1, '"');
        check(end != NULL);
        valid_id(r1 + i + 1, (size_t)(end - r1 - i - 1));
        check(!m1 || strlen(m1) != (size_t)(end - r1 - i - 1) ||
              memcmp(m1, r1 + i + 1, strlen(m1)) != 0);
        count++;
        i = (size_t)(end - r1) + 1;
        if (r1[i] == ',')
            i++;
    }
    check(count <= THREAD_REFS_MAX);
    free(m1);
    free(r1);
    free(m2);
    free(r2);
    return 0;
}
