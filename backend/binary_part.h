/* What IMAP BINARY[section] sends for a part of a stored message, as a plan
 * over the raw message (RFC 3516, RFC 9051 6.4.5), and the transformation
 * that turns the raw bytes into it piece by piece.
 *
 * RFC 3516 says only "after performing CTE-related decoding"; for a part
 * that is not a leaf (BINARY[] of a message, a multipart or message/rfc822
 * part) we do what Dovecot 2.3 does (index-mail-binary.c), checked against
 * Dovecot 2.3.19.1:
 *  - the part's own header is sent only for BINARY[] (the whole message);
 *  - every leaf below it has its body decoded; every header sent of a part
 *    encoded in base64 or quoted-printable loses its Content-Transfer-Encoding
 *    field(s) and gets "Content-Transfer-Encoding: binary" CRLF before the
 *    blank line; everything else (boundaries, preambles, other headers) is
 *    copied as it is;
 *  - if nothing at all was decoded, the result is the raw section unchanged
 *    (even a header that would have been rewritten), and it goes as a
 *    literal8 only when it holds a NUL; a decoded result always does;
 *  - any part in the subtree with an encoding other than 7bit, 8bit, binary,
 *    base64 or quoted-printable fails the whole fetch with UNKNOWN-CTE.
 * Unlike Dovecot, bytes copied as they are keep their line endings (Petrel's
 * BODY[] does not convert bare LF to CRLF either), and the encoding is the
 * one the MIME parser recorded (the first Content-Transfer-Encoding of a
 * MIME part; none for a non-MIME part), where Dovecot reads the last field
 * of any part again. */
#ifndef PETREL_BINARY_PART_H
#define PETREL_BINARY_PART_H

#include "buf.h"
#include "cte_decode.h"
#include "mime/mime.h"

#include <stdbool.h>
#include <stdint.h>

/* What BINARY adds to a rewritten header. */
#define BINARY_CTE_FIELD "Content-Transfer-Encoding: binary\r\n"
#define BINARY_CTE_FIELD_LEN 35

enum bin_seg_kind {
    BIN_RAW,      /* copied as it is */
    BIN_HEADER,   /* a header whose Content-Transfer-Encoding is rewritten */
    BIN_BODY,     /* a leaf body, decoded */
};

struct bin_seg {
    enum bin_seg_kind kind;
    enum cte cte;             /* BIN_BODY */
    uint64_t start, end;      /* raw bytes [start, end) */
    uint64_t size;            /* bytes it becomes; valid when sized */
    bool sized;
};

struct bin_plan {
    struct bin_seg *segs;     /* owned, in message order */
    size_t n, cap;
    bool converted;           /* a body is decoded: else send the raw range as it is */
    bool has_nuls;            /* a part in the subtree holds a NUL */
    uint64_t start, end;      /* the raw range the section covers */
};

/* Plans BINARY for part idx of t: include_hdr for BINARY[] (the root), else
 * the part's body only. Sizes are filled where the tree has them
 * (mime_part.bin_size, see mime.h). Returns 0, or -1 when a part of the
 * subtree has an encoding we cannot decode (*plan is then empty). */
int bin_plan_build(const struct mime_tree *t, unsigned idx, bool include_hdr, struct bin_plan *plan);
void bin_plan_free(struct bin_plan *plan);
/* The size of the result, when every segment is sized (else false). */
bool bin_plan_size(const struct bin_plan *plan, uint64_t *size_r);

/* Streaming removal of Content-Transfer-Encoding fields from a header, and
 * insertion of BINARY_CTE_FIELD before the blank line that ends it (at the
 * end when there is none). Holds at most CTE_NAME_SCAN bytes between pieces. */
struct hdr_rewrite {
    int state;
    bool dropping;            /* the field being read is a dropped one */
    bool inserted;
    size_t nheld;
    char held[CTE_NAME_SCAN];  /* the start of a line, until its name is known */
};

/* Turns the raw bytes of one segment after another into the output. */
struct bin_transform {
    const struct bin_seg *seg;
    struct cte_decoder dec;
    struct hdr_rewrite hdr;
};

/* Starts a segment. */
void bin_transform_begin(struct bin_transform *x, const struct bin_seg *seg);
/* Appends what raw[0..n) of the current segment becomes to out (NULL:
 * count only); returns that many bytes. */
size_t bin_transform_feed(struct bin_transform *x, const char *raw, size_t n, struct buf *out);
/* Ends the current segment, flushing what was held. */
size_t bin_transform_end(struct bin_transform *x, struct buf *out);

/* Checks a BINARY section: "" or nz-number *("." nz-number), each part
 * number at most 9 digits. */
bool bin_section_valid(const char *section);

#endif
