/* Line ends of arriving mail made CRLF, before anything else sees the bytes
 * (APPEND, MULTIAPPEND, LMTP: the parse, the SHA-256 behind EMAILID, the
 * search text, the header size, the blob). RFC 5322 2.1 and RFC 3501 2.3.1
 * / RFC 9051 2.3.1 make a message lines ending in CRLF; Dovecot serves
 * every line so and counts RFC822.SIZE, BODYSTRUCTURE and BINARY.SIZE on
 * that form, and so does Petrel from the stored bytes.
 *
 * Where RFC 5322 leaves a stray CR undefined, this does exactly what Dovecot
 * 2.3 does (maildir, mail_save_crlf=no: it saves through i_stream_create_lf
 * and serves through i_stream_create_crlf; compared on Debian's 2.3.19 with
 * the cases in tests/unit/test_crlf_norm.c):
 *   - LF without a CR before it           -> CR LF
 *   - CR LF                                -> CR LF
 *   - n CRs then LF, n >= 2                -> n-1 CRs then LF
 *                                             (CR CR LF -> CR LF)
 *   - a CR followed by anything but LF     -> kept as it is
 *   - a CR that is the message's last byte -> dropped
 *
 * Incremental: fed a message in pieces of any size, state kept across their
 * edges (a CR ending one piece waits for the next byte), the output is the
 * same as for the whole message. A piece of n bytes gives at most 2n
 * (CRLF_NORM_MAX_OUT). Nothing is held back at the end: the only byte ever
 * pending is a CR, and a final CR is dropped, so the output after the last
 * piece is complete without a finishing call. */
#ifndef PETREL_CRLF_NORM_H
#define PETREL_CRLF_NORM_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crlf_norm {
    bool held_cr;    /* a CR was read, not written: an LF next replaces it */
    bool last_cr;    /* the last byte written was a CR: an LF next needs none */
};

#define CRLF_NORM_INIT { false, false }
/* The most bytes crlf_norm_feed writes for n bytes in. */
#define CRLF_NORM_MAX_OUT(n) (2 * (size_t)(n))

void crlf_norm_init(struct crlf_norm *c);
/* Normalises in[0..n) into out, which has room for CRLF_NORM_MAX_OUT(n)
 * bytes (out may not overlap in); returns the bytes written. */
size_t crlf_norm_feed(struct crlf_norm *c, const void *in, size_t n, void *out);
/* The same, appended to b; returns the bytes appended. */
size_t crlf_norm_append(struct crlf_norm *c, const void *in, size_t n, struct buf *b);

#endif
