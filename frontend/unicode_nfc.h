/* Unicode Normalization Form C (UAX #15) for names that come in from
 * clients. RFC 9051 5.1 and RFC 6855 3 want UTF-8 mailbox names to be
 * Net-Unicode (RFC 5198 2), which is NFC, so that "Caf\u00e9" and
 * "Cafe\u0301" (the same text, decomposed, as macOS file names are) name
 * one mailbox. The tables are libunistring's. */
#ifndef PETREL_UNICODE_NFC_H
#define PETREL_UNICODE_NFC_H

#include <stddef.h>

/* The NFC form of the well-formed UTF-8 text in[0..len): a malloc'd,
 * NUL-terminated string (its length in *len_r unless len_r is NULL), or
 * NULL when the text is in NFC already (ASCII always is) or is not
 * well-formed UTF-8, so that NULL means "use it as it is". Aborts when
 * memory runs out. */
char *utf8_nfc(const char *in, size_t len, size_t *len_r);

#endif
