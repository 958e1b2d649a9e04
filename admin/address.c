/* Address syntax for accounts: a pragmatic subset of RFC 5321 that every
 * mail client can type: dot-atom local part, DNS-style domain, ASCII only
 * (no SMTPUTF8 accounts yet), stored lower-case. */
#include "admin.h"

#include <ctype.h>
#include <string.h>

static bool atext(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static int check_local(const char *s, size_t n, const char **why)
{
    if (n == 0 || n > 64)
        return *why = "the part before @ must be 1 to 64 characters", -1;
    if (s[0] == '.' || s[n - 1] == '.')
        return *why = "the part before @ may not start or end with a dot", -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && s[i + 1] == '.')
            return *why = "the part before @ may not contain two dots in a row", -1;
        if (s[i] != '.' && !atext((unsigned char)s[i]))
            return *why = "the part before @ has a character not allowed in an address", -1;
    }
    return 0;
}

static int check_label(const char *s, size_t n, const char **why)
{
    if (n == 0 || n > 63)
        return *why = "each part of the domain must be 1 to 63 characters", -1;
    if (s[0] == '-' || s[n - 1] == '-')
        return *why = "a domain part may not start or end with a hyphen", -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return *why = "the domain may hold only letters, digits, hyphens and dots", -1;
    return 0;
}

static int check_domain(const char *s, const char **why)
{
    while (true) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (check_label(s, n, why) < 0)
            return -1;
        if (!dot)
            return 0;
        s = dot + 1;
    }
}

int address_normalise(const char *in, char *out, const char **why)
{
    size_t n = strlen(in);
    if (n == 0 || n > ADDRESS_MAX)
        return *why = "an address must be 1 to 254 characters", -1;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    char *at = strchr(out, '@');
    if (!at || strchr(at + 1, '@'))
        return *why = "an address needs exactly one @ (local@domain)", -1;
    if (check_local(out, (size_t)(at - out), why) < 0)
        return -1;
    return check_domain(at + 1, why);
}
