/* Incremental Content-Transfer-Encoding decoders (RFC 2045 6.7, 6.8) for
 * IMAP BINARY (RFC 3516): a part's body is fed in arbitrary pieces and the
 * decoded bytes come out as they are known, whatever the split. The state
 * between pieces is a few bytes plus at most CTE_MAX_BLANKS held blanks, so
 * a 20 MB attachment decodes in bounded memory.
 *
 * Bad input never fails; it decodes the way RFC 2045 tells a robust decoder
 * to (Dovecot 2.3 instead answers NO [PARSE], or for truncated base64 drops
 * the connection, which no client can act on):
 *  - base64: characters outside the alphabet are ignored (6.8 "must be
 *    ignored"); the first "=" ends the data (6.8: "may be taken as evidence
 *    that the end of the data has been reached"), what follows is ignored;
 *    bits left over at the end that do not make a whole octet are dropped.
 *  - quoted-printable: "=XX" with upper- or lower-case hex is the octet; "="
 *    followed by blanks and a line break is a soft line break; blanks before
 *    a line break (or the end of the data) are dropped (rule 3: transport
 *    padding); an "=" not followed by any of these stays as it is, with what
 *    follows it (6.7 note 1: "leave the sequence as is"). Line breaks, CRLF or
 *    bare LF, are kept as written. */
#ifndef PETREL_CTE_DECODE_H
#define PETREL_CTE_DECODE_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cte {
    CTE_IDENTITY,   /* 7bit, 8bit, binary, or no Content-Transfer-Encoding */
    CTE_QP,
    CTE_BASE64,
    CTE_UNKNOWN,    /* anything else: IMAP BINARY answers NO [UNKNOWN-CTE] */
};

/* The encoding a part's Content-Transfer-Encoding token names (as the MIME
 * parser stored it: NULL when absent). Case-insensitive, like Dovecot's
 * message_decoder_parse_cte. */
enum cte cte_parse(const char *token);

/* Quoted-printable blanks held while it is unknown whether a line break
 * follows them; a longer run is let through as data (no real line has
 * this many: RFC 2045 limits lines to 76 characters). */
#define CTE_MAX_BLANKS 256

struct cte_decoder {
    enum cte kind;
    /* base64 */
    uint32_t acc;          /* bits not yet output */
    int bits;              /* how many */
    bool ended;            /* "=" seen: the rest is ignored */
    /* quoted-printable */
    int qp;                /* state, see cte_decode.c */
    unsigned char hex;     /* first hex digit after "=" */
    bool cr;               /* a CR is held after the blanks */
    size_t nblanks;
    char blanks[CTE_MAX_BLANKS];
};

/* Whether a header line (its first n bytes; only the first CTE_NAME_SCAN
 * are looked at) starts a Content-Transfer-Encoding field: the name before
 * the colon, trailing blanks trimmed, case-insensitive. */
#define CTE_NAME_SCAN 64
bool cte_field_starts(const char *line, size_t n);

/* kind must not be CTE_UNKNOWN. */
void cte_decoder_init(struct cte_decoder *d, enum cte kind);
/* Decodes in[0..len) and appends the result to out, or only counts it when
 * out is NULL (then for every call on this decoder: counting keeps less
 * state). Returns the number of decoded bytes this call produced. */
size_t cte_decode(struct cte_decoder *d, const void *in, size_t len, struct buf *out);
/* Ends the data: flushes what was held (an "=" at the very end stays).
 * Returns the bytes it produced, like cte_decode. */
size_t cte_decode_finish(struct cte_decoder *d, struct buf *out);

#endif
