/* libFuzzer target for LMTP's MAIL and RCPT argument parser.
 *
 * Input: the arguments of one command line (after the verb), cut at the
 * first NUL as the line reader would. Checks what lmtp_parser.h promises:
 * an address within LMTP_MAX_ADDRESS bytes without a control character,
 * found between the '<' and the '>' it stops after; parameters that move
 * forward, never past the line's end, with keys upper-cased and without
 * spaces or '=', and values without spaces. */
#include "lmtp/lmtp_parser.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_params(const char *p, const char *end)
{
    char key[LMTP_PARAM_KEY];
    const char *val;
    size_t vlen;
    for (;;) {
        const char *before = p;
        if (!lmtp_next_param(&p, key, sizeof key, &val, &vlen)) {
            for (; before < end; before++)
                check(*before == ' ');   /* only spaces were left */
            return;
        }
        check(p > before && p <= end);
        check(*p == '\0' || *p == ' ');
        for (const char *k = key; *k; k++)
            check(*k != ' ' && *k != '=' && !islower((unsigned char)*k));
        check(!val || (val > before && val + vlen == p && !memchr(val, ' ', vlen)));
        uint64_t size;
        if (lmtp_parse_size(val, vlen, &size))
            check(vlen >= 1 && vlen <= 19);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    memcpy(line, data, size);
    line[size] = '\0';
    const char *end = line + strlen(line);
    const char *p = line;
    char *addr = lmtp_parse_path(&p);
    if (addr) {
        size_t n = strlen(addr);
        check(n <= LMTP_MAX_ADDRESS);
        for (size_t i = 0; i < n; i++)
            check((unsigned char)addr[i] >= 0x20 && addr[i] != 0x7f);
        check(p > line && p <= end && p[-1] == '>');
        check(p - 1 - n >= line && memcmp(p - 1 - n, addr, n) == 0);
        free(addr);
        check_params(p, end);
    } else {
        check(p == line);
        check_params(line, end);
    }
    lmtp_after_prefix(line, " FROM:");
    free(line);
    return 0;
}
