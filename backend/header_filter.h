/* BODY[HEADER.FIELDS (...)] and BODY[HEADER.FIELDS.NOT (...)]: the header
 * fields of a header block whose names are (or are not) in a list. */
#ifndef PETREL_HEADER_FILTER_H
#define PETREL_HEADER_FILTER_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Appends to out every field of hdr (len bytes, as stored: CRLF or bare LF)
 * whose name matches one of names[0..n) case-insensitively (or, with
 * exclude, matches none), continuation lines included, then the blank line
 * that ends a header, as RFC 9051 6.4.5 asks. Line ends are kept as stored,
 * except that without exclude a run of CRs before a CRLF loses one, as in
 * Dovecot. */
void header_filter(const char *hdr, size_t len, char *const *names, size_t n, bool exclude,
                   struct buf *out);

#endif
