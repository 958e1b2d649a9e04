/* PostgreSQL array literals: quoting keywords on the way in, parsing on the
 * way out, including the characters that need escapes. */
#include "check.h"
#include "pgarray.h"

#include <stdlib.h>

int main(void)
{
    char *items[] = { "$Forwarded", "a\"b", "back\\slash", "with space", "" };
    char *lit = pg_text_array(items, 5);
    CHECK_STREQ(lit, "{\"$Forwarded\",\"a\\\"b\",\"back\\\\slash\",\"with space\",\"\"}");
    size_t n;
    char **back = pg_parse_text_array(lit, &n);
    CHECK(n == 5);
    for (size_t i = 0; i < n && i < 5; i++)
        CHECK_STREQ(back[i], items[i]);
    pg_free_strings(back, n);
    free(lit);

    static const struct { const char *in; size_t n; const char *first; } cases[] = {
        { "{}", 0, NULL },
        { "{a}", 1, "a" },
        { "{a,b,c}", 3, "a" },
        { "{NULL,x}", 1, "x" },
        { "{\"NULL\"}", 1, "NULL" },
        { "", 0, NULL },
        { "garbage", 0, NULL },
        { "{\"unterminated", 1, "unterminated" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char **v = pg_parse_text_array(cases[i].in, &n);
        CHECK_MSG(n == cases[i].n, "case %zu: %zu elements", i, n);
        if (n && cases[i].first)
            CHECK_STREQ(v[0], cases[i].first);
        pg_free_strings(v, n);
    }
    char *empty = pg_text_array(NULL, 0);
    CHECK_STREQ(empty, "{}");
    free(empty);
    return check_report();
}
