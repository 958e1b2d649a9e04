/* Address lists in CIDR notation ("10.0.0.0/8, 127.0.0.1 ::1 fd00::/8"),
 * for settings such as secure_networks and proxy_trusted. An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) matches the IPv4 entries. */
#ifndef PETREL_CIDR_H
#define PETREL_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIDR_MAX 64   /* entries per list */

struct cidr {
    uint8_t addr[16];     /* IPv4 in the first 4 bytes */
    int family;           /* AF_INET or AF_INET6 */
    int bits;
};

struct cidr_list {
    struct cidr e[CIDR_MAX];
    size_t n;
};

/* Parses a list separated by commas, spaces or semicolons; an empty string is
 * an empty list. Returns 0, or -1 with the offending entry in err. */
int cidr_parse_list(const char *text, struct cidr_list *out, char *err, size_t errlen);
/* True if the textual address ip (as inet_ntop prints it) is in the list. */
bool cidr_match(const struct cidr_list *l, const char *ip);

#endif
