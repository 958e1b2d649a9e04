/* The HAProxy PROXY protocol header, versions 1 and 2
 * (https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt), read by a
 * frontend listener behind a load balancer before anything else (before the
 * TLS handshake on implicit-TLS ports, before the greeting).
 *
 * The parser is incremental and bounded: feed it bytes as they come; it takes
 * only the header's own bytes (never one past its end, so what follows stays
 * for TLS or the protocol) and answers DONE, MORE or ERROR. A v1 header is at
 * most 107 bytes; a v2 header is 16 bytes plus at most PROXY_V2_MAX_LEN.
 *
 * v2 LOCAL (the proxy's own health check), v1 UNKNOWN and v2 UNSPEC/UNIX
 * carry no client address: the caller keeps the real peer address. Unknown
 * v2 TLVs are skipped (AWS NLB sends 0xEA); PP2_TYPE_SSL with the
 * PP2_CLIENT_SSL bit says the client spoke TLS to the proxy. */
#ifndef PETREL_PROXY_HEADER_H
#define PETREL_PROXY_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX 107           /* bytes, CRLF included (spec 2.1) */
#define PROXY_V2_MAX_LEN 2048      /* bytes after the 16-byte v2 header we accept */

enum proxy_result { PROXY_MORE, PROXY_DONE, PROXY_ERROR };

struct proxy_info {
    int version;                   /* 1 or 2 */
    bool local;                    /* v2 LOCAL command */
    int family;                    /* AF_INET, AF_INET6; AF_UNSPEC: no address, keep the peer's */
    char src[48], dst[48];         /* as inet_ntop prints them */
    uint16_t src_port, dst_port;
    bool ssl;                      /* v2: the client connected to the proxy over TLS */
};

struct proxy_parser {
    unsigned char buf[16 + PROXY_V2_MAX_LEN];
    size_t len;                    /* bytes held */
    size_t total;                  /* v2: 16 + length, once known */
    int version;                   /* 0 until the first byte */
    enum proxy_result state;
    const char *error;
};

void proxy_parser_init(struct proxy_parser *p);
/* Takes bytes of data up to the end of the header; *used says how many. After
 * DONE, *info is filled; after ERROR, *error_r says why (and stays so). */
enum proxy_result proxy_parser_feed(struct proxy_parser *p, const void *data, size_t len,
                                    size_t *used, struct proxy_info *info, const char **error_r);

#endif
