/* The size of a message as POP3 RETR sends it (frontend/pop3/pop3_session.c
 * emit()): every bare LF becomes CRLF and an unterminated last line gets its
 * line end (just LF after a trailing CR, else CRLF); dot-stuffing is not
 * counted (RFC 1939 counts octets before it). Stored per body at APPEND
 * (blobs.crlf_size, 009_pop3_size.sql) so STAT, LIST and "+OK n octets" are
 * exact for messages stored with bare LF. Since line ends are made CRLF on
 * arrival (crlf_norm.h), a new body's count differs from its size only by
 * the line end of an unterminated last line; the bodies stored as sent
 * before that still need it.
 *
 * Fed in arbitrary pieces; a CRLF split across pieces counts once. */
#ifndef PETREL_CRLF_SIZE_H
#define PETREL_CRLF_SIZE_H

#include <stddef.h>
#include <stdint.h>

struct crlf_size {
    uint64_t bytes;     /* fed so far */
    uint64_t bare_lf;   /* LFs not preceded by CR */
    int last;           /* the last byte fed, -1 before any */
};

#define CRLF_SIZE_INIT { 0, 0, -1 }

void crlf_size_init(struct crlf_size *c);
void crlf_size_feed(struct crlf_size *c, const void *data, size_t len);
/* The octets RETR sends for what was fed. */
uint64_t crlf_size_total(const struct crlf_size *c);

#endif
