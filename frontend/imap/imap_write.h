/* Writing IMAP strings into a response buffer (common/buf.h).
 *
 * Each writer picks the form that represents the bytes exactly: an atom when
 * allowed, else a quoted string, else a literal "{n}\r\n" followed by the
 * bytes. A literal is used when the string holds CR, LF or 8-bit bytes, or is
 * longer than max_quoted (long quoted strings are hard on clients and
 * escaping would make them longer still). NUL cannot appear in any IMAP string
 * outside a literal8, so those writers refuse it rather than drop it. */
#ifndef PETREL_IMAP_WRITE_H
#define PETREL_IMAP_WRITE_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Writes s as-is; the caller knows it is a valid atom (e.g. a flag name). */
void imap_write_atom(struct buf *out, const char *s, size_t len);
/* string: quoted or literal. Returns false, writing nothing, if s holds NUL. */
bool imap_write_string(struct buf *out, const char *s, size_t len, size_t max_quoted);
/* nstring: NIL when s is NULL, else as imap_write_string. */
bool imap_write_nstring(struct buf *out, const char *s, size_t len, size_t max_quoted);
/* astring: an atom when every byte is an ASTRING-CHAR (and it is not "NIL",
 * which a client could read as NIL), else as imap_write_string. */
bool imap_write_astring(struct buf *out, const char *s, size_t len, size_t max_quoted);
/* astring for a client that takes UTF-8 in quoted strings (RFC 9051
 * QUOTED-CHAR, RFC 6855 3 after ENABLE UTF8=ACCEPT): 8-bit text is quoted
 * rather than sent as a literal. The caller knows s is valid UTF-8. */
bool imap_write_utf8_astring(struct buf *out, const char *s, size_t len, size_t max_quoted);
/* A literal; binary gives a literal8 "~{n}", the only form that carries NUL. */
void imap_write_literal(struct buf *out, const char *s, size_t len, bool binary);
/* Message bytes bound for a "{n}" literal (BODY[...] data), in place: a
 * literal is CHAR8, which excludes NUL (RFC 3501 9), so each NUL becomes
 * 0x80 as Dovecot sends it; the length stays. Returns how many it changed. */
size_t imap_literal_nul_to_0x80(char *s, size_t len);

#endif
