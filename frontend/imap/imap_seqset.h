/* IMAP sequence sets (RFC 3501 / RFC 9051 sequence-set, RFC 5182 "$").
 *
 * A parsed set is a sorted list of disjoint, non-adjacent inclusive ranges,
 * "*" already replaced by the caller's maximum:
 *   - message sequence numbers (IMAP_SEQSET_SEQ): "*" is the number of
 *     messages, and every number must lie in 1..max. An empty mailbox (max 0)
 *     makes every set an error, as no message number exists.
 *   - UIDs (IMAP_SEQSET_UID): "*" is the largest UID in the mailbox. Numbers
 *     above it are kept, as a UID set is a filter over existing messages. So
 *     "559:*" with max 300 is the range 300:559, which selects just UID 300:
 *     RFC 3501 6.4.8 / RFC 9051 6.4.9, "559:*" always includes the last
 *     message even when 559 is above every UID. In an empty mailbox (max 0) a
 *     range using "*" selects nothing and is left out; the set may be empty. */
#ifndef PETREL_IMAP_SEQSET_H
#define PETREL_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_range {
    uint32_t lo, hi;  /* inclusive, lo <= hi, lo >= 1 */
};

struct imap_seqset {
    struct imap_range *ranges;  /* owned; free with imap_seqset_free() */
    size_t count;
    bool searchres;             /* the set was "$": use the saved SEARCH result */
};

enum imap_seqset_kind { IMAP_SEQSET_SEQ, IMAP_SEQSET_UID };

/* The *error_r of a set over max_ranges (a server limit, not bad syntax:
 * callers answer NO [LIMIT]); compare the pointer. */
extern const char imap_seqset_too_many[];

/* Parses s (len bytes, no NUL needed). max_ranges bounds the ranges written
 * in the input, before merging. Returns 0, or -1 with a short reason in
 * *error_r and set empty. "$" gives searchres and no ranges. */
int imap_seqset_parse(const char *s, size_t len, enum imap_seqset_kind kind, uint32_t max,
                      size_t max_ranges, struct imap_seqset *set, const char **error_r);
void imap_seqset_free(struct imap_seqset *set);

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* Numbers in the set. */
uint64_t imap_seqset_count(const struct imap_seqset *set);

/* Writes ranges as "1:5,7,9:12" plus a NUL into out (size bytes). Returns
 * true and the length in *len_r; if it does not fit, returns false with the
 * length it would need (NUL excluded) in *len_r and out holding "". */
bool imap_seqset_format(const struct imap_range *ranges, size_t count, char *out,
                        size_t size, size_t *len_r);

#endif
