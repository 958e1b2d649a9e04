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

/* Checks a UTF-8 name as it comes from a client that enabled UTF-8 names
 * (IMAP4rev2, UTF8=ACCEPT): well-formed UTF-8 (shortest form, no
 * surrogates, at most U+10FFFF) without control characters, which RFC 9051
 * 5.1 and RFC 6855 3 exclude by requiring Net-Unicode (RFC 5198). Returns
 * 0, or -1. NFC comes after (unicode_nfc.h, imap_mailbox_name). */
int imap_utf8_name_check(const char *in, size_t len);

#endif
