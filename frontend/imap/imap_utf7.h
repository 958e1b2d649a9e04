/* Mailbox names on the wire (RFC 3501 5.1.3 modified UTF-7) and as stored
 * (UTF-8). */
#ifndef PETREL_IMAP_UTF7_H
#define PETREL_IMAP_UTF7_H

#include "buf.h"

#include <stddef.h>

/* Decodes a modified UTF-7 name into UTF-8 appended to out. Returns -1 for
 * anything RFC 3501 forbids: raw 8-bit bytes, an unterminated or non-minimal
 * "&...-" run, printable ASCII encoded in base64, invalid UTF-16. */
int imap_utf7_to_utf8(const char *in, size_t len, struct buf *out);
/* Encodes a valid UTF-8 name as modified UTF-7, appended to out. */
void imap_utf8_to_utf7(const char *in, size_t len, struct buf *out);

#endif
