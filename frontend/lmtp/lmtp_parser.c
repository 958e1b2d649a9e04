#include "lmtp_parser.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *lmtp_after_prefix(const char *args, const char *word)
{
    size_t n = strlen(word);
    if (strncasecmp(args, word, n) != 0)
        return NULL;
    return args + n;
}

char *lmtp_parse_path(const char **pp)
{
    const char *p = *pp;
    while (*p == ' ')
        p++;
    if (*p != '<')
        return NULL;
    p++;
    if (*p == '@') {   /* RFC 5321 4.1.2 source route: ignored */
        const char *colon = strchr(p, ':');
        if (!colon)
            return NULL;
        p = colon + 1;
    }
    const char *start = p;
    bool quoted = false;
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f)
            return NULL;
        if (quoted && ch == '\\' && p[1]) {   /* quoted-pairSMTP: %d92 %d32-126 */
            unsigned char next = (unsigned char)p[1];
            if (next < 0x20 || next == 0x7f)
                return NULL;
            p++;
            continue;
        }
        if (ch == '"')
            quoted = !quoted;
        else if (!quoted && ch == '>')
            break;
        else if (!quoted && (ch == ' ' || ch == '<'))
            return NULL;
    }
    if (*p != '>' || (size_t)(p - start) > LMTP_MAX_ADDRESS)
        return NULL;
    char *addr = strndup(start, (size_t)(p - start));
    if (!addr)
        abort();
    *pp = p + 1;
    return addr;
}

bool lmtp_next_param(const char **pp, char *key, size_t keyn, const char **val_r, size_t *vlen_r)
{
    const char *p = *pp;
    while (*p == ' ')
        p++;
    if (!*p)
        return false;
    size_t k = 0;
    while (*p && *p != ' ' && *p != '=') {
        if (k + 1 < keyn)
            key[k++] = (char)toupper((unsigned char)*p);
        p++;
    }
    key[k] = '\0';
    *val_r = NULL;
    *vlen_r = 0;
    if (*p == '=') {
        *val_r = ++p;
        while (*p && *p != ' ')
            p++;
        *vlen_r = (size_t)(p - *val_r);
    }
    *pp = p;
    return true;
}

bool lmtp_value_is(const char *v, size_t n, const char *want)
{
    return v && n == strlen(want) && strncasecmp(v, want, n) == 0;
}

bool lmtp_parse_size(const char *v, size_t n, uint64_t *size)
{
    if (!v || n == 0 || n > 19)   /* 19 digits cannot overflow 64 bits */
        return false;
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)v[i]))
            return false;
        s = s * 10 + (uint64_t)(v[i] - '0');
    }
    *size = s;
    return true;
}
