#include "imap/imap_fetch_binary.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* section-part = nz-number *("." nz-number), or nothing (RFC 9051 9). */
static bool section_valid(const char *s, size_t n)
{
    bool start = true;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && !start && i + 1 < n) {
            start = true;
        } else if (s[i] >= '0' && s[i] <= '9' && !(start && s[i] == '0')) {
            start = false;
        } else {
            return false;
        }
    }
    return true;
}

static int parse_partial(const char *p, const char *end, struct fetch_binary *it)
{
    if (p == end)
        return 0;
    unsigned long long off, len;
    int used = 0;
    if (*p != '<' || end[-1] != '>' || p[1] < '0' || p[1] > '9' ||
        sscanf(p, "<%llu.%llu>%n", &off, &len, &used) != 2 || p + used != end || len == 0)
        return -1;
    it->partial = true;
    it->off = off;
    it->len = len;
    return 0;
}

int fetch_binary_parse(const char *s, size_t n, struct fetch_binary *it)
{
    static const struct { const char *name; bool size_only, peek; } kinds[] = {
        { "BINARY[", false, false }, { "BINARY.PEEK[", false, true }, { "BINARY.SIZE[", true, true },
    };
    size_t pre = 0;
    memset(it, 0, sizeof *it);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t kl = strlen(kinds[i].name);
        if (n >= kl && strncasecmp(s, kinds[i].name, kl) == 0) {
            pre = kl;
            it->size_only = kinds[i].size_only;
            it->peek = kinds[i].peek;
        }
    }
    if (!pre)
        return 0;
    const char *sec = s + pre, *end = s + n;
    const char *close = memchr(sec, ']', (size_t)(end - sec));
    if (!close)
        return -1;
    size_t sl = (size_t)(close - sec);
    if (sl > FETCH_BINARY_MAX_SECTION || !section_valid(sec, sl))
        return -1;
    memcpy(it->section, sec, sl);
    it->section[sl] = '\0';
    if (parse_partial(close + 1, end, it) < 0 || (it->size_only && it->partial))
        return -1;
    int w = snprintf(it->label, sizeof it->label, "%s[%s]", it->size_only ? "BINARY.SIZE" : "BINARY",
                     it->section);
    /* RFC 3516 9 (and Dovecot) give the origin octet of a partial answer. */
    if (it->partial)
        snprintf(it->label + w, sizeof it->label - (size_t)w, "<%llu>", (unsigned long long)it->off);
    return 1;
}

void fetch_binary_request(const struct fetch_binary *it, Petrel__BodyReq *br)
{
    br->binary = true;
    br->size_only = it->size_only;
    br->section = (char *)it->section;
    br->partial = it->partial;
    br->offset = it->off;
    br->length = it->len;
}

void fetch_binary_write_head(struct buf *out, const struct fetch_binary *it, const Petrel__Chunk *first)
{
    if (it->size_only)
        buf_printf(out, "%s %llu", it->label, (unsigned long long)first->total);
    else
        buf_printf(out, "%s %s{%llu}\r\n", it->label, first->binary ? "~" : "",
                   (unsigned long long)first->total);
}
