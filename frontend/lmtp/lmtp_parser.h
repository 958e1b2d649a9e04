/* The arguments of LMTP's MAIL and RCPT (RFC 2033, which takes SMTP's:
 * RFC 5321 4.1.2): "FROM:<path>" or "TO:<path>", then ESMTP parameters
 * " KEY[=VALUE]". Every function reads a NUL-terminated command line and
 * stops at its end. */
#ifndef PETREL_LMTP_PARSER_H
#define PETREL_LMTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of one address: RFC 5321 4.5.3.1.3 caps a path at 256, so this is
 * the protocol's limit with slack, not a deployment's: no setting. */
#define LMTP_MAX_ADDRESS 512

/* Room for a parameter's key, NUL included: the ones LMTP knows (SIZE,
 * BODY, SMTPUTF8) are short, and a longer key, cut, is unknown all the
 * same. */
#define LMTP_PARAM_KEY 32

/* After the verb, expects word (" FROM:", case-insensitive) and returns
 * what follows it, or NULL. */
const char *lmtp_after_prefix(const char *args, const char *word);

/* Parses "<path>" at *pp (spaces allowed before it): a source route
 * "@a,@b:" is dropped, a quoted local part is kept as written. Returns the
 * malloc'd address (at most LMTP_MAX_ADDRESS bytes, no control character)
 * and leaves *pp after the ">", or NULL for a malformed path. */
char *lmtp_parse_path(const char **pp);

/* The next " KEY[=VALUE]" parameter at *pp: the key upper-cased into key
 * (cut to keyn - 1 bytes), the value as a view (NULL without "="). False
 * at the end of the line. */
bool lmtp_next_param(const char **pp, char *key, size_t keyn, const char **val_r, size_t *vlen_r);

/* Whether the value v (n bytes, may be NULL) is want, case-insensitively. */
bool lmtp_value_is(const char *v, size_t n, const char *want);

/* RFC 1870's SIZE value: 1 to 19 digits. */
bool lmtp_parse_size(const char *v, size_t n, uint64_t *size);

#endif
