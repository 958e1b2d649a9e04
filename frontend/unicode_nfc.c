/* NFC through libunistring's u8_normalize (unicode_nfc.h). */
#include "unicode_nfc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uninorm.h>
#include <unistr.h>

char *utf8_nfc(const char *in, size_t len, size_t *len_r)
{
    size_t i = 0;
    while (i < len && (unsigned char)in[i] < 0x80)
        i++;
    if (i == len)   /* the common case, without a call or an allocation */
        return NULL;
    if (u8_check((const uint8_t *)in, len))   /* ill-formed: u8_normalize would substitute */
        return NULL;
    size_t n = 0;
    uint8_t *out = u8_normalize(UNINORM_NFC, (const uint8_t *)in, len, NULL, &n);
    if (!out) {
        if (errno == ENOMEM)
            abort();
        return NULL;
    }
    if (n == len && memcmp(out, in, len) == 0) {
        free(out);
        return NULL;
    }
    char *s = realloc(out, n + 1);
    if (!s)
        abort();
    s[n] = '\0';
    if (len_r)
        *len_r = n;
    return s;
}
