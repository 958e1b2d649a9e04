/* Where a message's header ends, found while its bytes stream in (APPEND,
 * LMTP): just after the first empty line, CRLF or bare LF. Bytes come in any
 * pieces. A message that starts with its empty line has a header of just
 * that line: Dovecot answers BODY[HEADER] "\r\n" and the rest as TEXT, and
 * the MIME parser (backend/mime) agrees. */
#ifndef PETREL_HEADER_END_H
#define PETREL_HEADER_END_H

#include <stddef.h>
#include <stdint.h>

struct header_end {
    uint64_t seen;   /* bytes fed so far */
    uint64_t size;   /* the header's size once found, else 0 */
    char tail[4];    /* the last bytes fed */
};

void header_end_init(struct header_end *h);
/* Feeds the next piece; returns the header size once known, else 0. */
uint64_t header_end_feed(struct header_end *h, const void *data, size_t n);

#endif
