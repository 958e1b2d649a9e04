/* Text as IMAP SEARCH compares it (backend/op_search.c, 006_search.sql).
 *
 * Stored text and search strings go through the same folding, so matching
 * is a plain case-sensitive substring test in PostgreSQL (LIKE / ~), which
 * does not depend on the database's locale and which pg_trgm indexes serve.
 * Folding: the result is valid UTF-8 (an invalid byte becomes U+FFFD), NUL
 * is dropped, and letters take their simple lower case for ASCII, Latin-1,
 * Latin Extended-A and Additional, Greek, Cyrillic and fullwidth Latin. */
#ifndef PETREL_SEARCH_TEXT_H
#define PETREL_SEARCH_TEXT_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Appends s folded. With oneline, CR, LF and TAB become spaces. */
void search_fold(struct buf *out, const char *s, size_t len, bool oneline);

/* Appends s as a LIKE pattern matching it as a substring: "%" s "%", with
 * "\", "%" and "_" escaped. s should already be folded. */
void search_like_pattern(struct buf *out, const char *s, size_t len);
/* Appends s as an advanced regular expression matching it literally. */
void search_regex_literal(struct buf *out, const char *s, size_t len);

/* The date of an RFC 5322 Date: value, as written (its own zone): returns 0
 * with *y, *m (1-12), *d, or -1 when it does not parse. Obsolete forms are
 * taken: a missing weekday, two- or three-digit years, comments after. */
int search_parse_date(const char *s, size_t len, int *y, int *m, int *d);

#endif
