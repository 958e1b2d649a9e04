/* NFC of names from clients (frontend/unicode_nfc.h): what changes, what is
 * left alone (NULL), and the cases of UAX #15 that are not just "compose
 * a letter and its accent". */
#include "check.h"
#include "unicode_nfc.h"

#include <stdlib.h>
#include <string.h>

static const struct { const char *in, *nfc; } changed[] = {
    { "Cafe\xcc\x81", "Caf\xc3\xa9" },                        /* e + U+0301 */
    { "Cafe\xcc\x81/e\xcc\x81t\xc3\xa9", "Caf\xc3\xa9/\xc3\xa9t\xc3\xa9" },   /* every level */
    { "\xe1\x84\x80\xe1\x85\xa1", "\xea\xb0\x80" },           /* Hangul jamo to U+AC00 */
    { "\xe2\x84\xab", "\xc3\x85" },                           /* U+212B ANGSTROM SIGN, a singleton */
    { "a\xcc\x87\xcc\xa3", "\xe1\xba\xa1\xcc\x87" },          /* marks reordered, then composed */
    { "\xe0\xa5\x98", "\xe0\xa4\x95\xe0\xa4\xbc" },           /* U+0958, excluded from composition: grows */
    { "INBOX/A\xcc\x8a", "INBOX/\xc3\x85" },
};

static const char *const unchanged[] = {
    "", "INBOX", "Q&A", "Caf&AOk-",               /* ASCII */
    "Caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",    /* NFC already */
    "q\xcc\x81",                                  /* no precomposed q with acute */
    "\xe1\xba\xa1\xcc\x87",                       /* the reordered result above */
    "Caf\xe9", "\xed\xa0\x80", "e\xcc",           /* ill-formed: left to the caller's check */
};

int main(void)
{
    for (size_t i = 0; i < sizeof changed / sizeof changed[0]; i++) {
        size_t len = 0;
        char *out = utf8_nfc(changed[i].in, strlen(changed[i].in), &len);
        CHECK_MSG(out != NULL, "changed[%zu] left alone", i);
        if (!out)
            continue;
        CHECK_STREQ(out, changed[i].nfc);
        CHECK(len == strlen(changed[i].nfc));
        CHECK_MSG(utf8_nfc(out, len, NULL) == NULL, "NFC of changed[%zu] is not stable", i);
        free(out);
    }
    for (size_t i = 0; i < sizeof unchanged / sizeof unchanged[0]; i++)
        CHECK_MSG(utf8_nfc(unchanged[i], strlen(unchanged[i]), NULL) == NULL, "unchanged[%zu] changed", i);
    /* Only len bytes count: a decomposed tail beyond them is not looked at. */
    CHECK(utf8_nfc("Cafe\xcc\x81", 4, NULL) == NULL);
    return check_report();
}
