#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int parse_one(const char *s, struct cidr *c)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof host)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(c, 0, sizeof *c);
    int max;
    if (inet_pton(AF_INET, host, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    c->bits = max;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || b < 0 || b > max)
            return -1;
        c->bits = (int)b;
    }
    return 0;
}

int cidr_parse_list(const char *text, struct cidr_list *out, char *err, size_t errlen)
{
    out->n = 0;
    const char *p = text ? text : "";
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == ';' || *p == '\t')
            p++;
        if (!*p)
            return 0;
        size_t len = strcspn(p, ", ;\t");
        char item[80];
        if (len >= sizeof item || out->n == CIDR_MAX ||
            parse_one((snprintf(item, sizeof item, "%.*s", (int)len, p), item), &out->e[out->n]) < 0) {
            snprintf(err, errlen, "invalid network \"%.*s\" (or more than %d)", (int)len, p, CIDR_MAX);
            return -1;
        }
        out->n++;
        p += len;
    }
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool cidr_match(const struct cidr_list *l, const char *ip)
{
    uint8_t a[16];
    int family;
    if (inet_pton(AF_INET, ip, a) == 1) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, ip, a) == 1) {
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        family = AF_INET6;
        if (memcmp(a, mapped, 12) == 0) {
            memmove(a, a + 12, 4);
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->e[i].family == family && prefix_eq(a, l->e[i].addr, l->e[i].bits))
            return true;
    return false;
}
