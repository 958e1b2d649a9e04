/* The IMAP form of OBJECTID identifiers (RFC 8474): MAILBOXID, EMAILID and
 * THREADID. The database keeps each as a random UUID
 * (010_objectid_savedate.sql); IMAP sees a kind letter and its 32 hex digits,
 * lower case: "F" mailbox, "M" message, "T" thread (the shape Cyrus sends;
 * RFC 8474 allows 1-255 of [A-Za-z0-9_-]). The letter keeps kinds apart, so
 * SEARCH THREADID with an EMAILID matches nothing. */
#ifndef PETREL_OBJECTID_H
#define PETREL_OBJECTID_H

#include <stdbool.h>

#define OBJECTID_MAILBOX 'F'
#define OBJECTID_EMAIL 'M'
#define OBJECTID_THREAD 'T'

/* Letter, 32 hex digits, NUL. */
#define OBJECTID_LEN 34
/* A UUID as PostgreSQL writes it, with NUL. */
#define OBJECTID_UUID_LEN 37

/* out = kind + the hex digits of uuid (PostgreSQL's text form). Returns
 * false, with out "", when uuid is not one (NULL, empty: a NIL THREADID). */
bool objectid_format(char kind, const char *uuid, char out[OBJECTID_LEN]);
/* The UUID text of an id of this kind; false when id is not one we make
 * (then nothing can match it). */
bool objectid_parse(char kind, const char *id, char uuid[OBJECTID_UUID_LEN]);

#endif
