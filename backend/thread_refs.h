/* The Message-ID, In-Reply-To and References of a message arriving now
 * (APPEND, LMTP), read from its header as it streams in, so the database can
 * put the message into a thread (THREADID, 010_objectid_savedate.sql) in the
 * same statement that stores it.
 *
 * Fed in arbitrary pieces; after the blank line that ends the header the rest
 * is ignored. Memory is bounded: at most THREAD_FIELD_MAX bytes of each of
 * the three fields are kept (folded lines unfolded). An id is the content of
 * one <...>: 1 to THREAD_MSGID_MAX bytes of printable ASCII without "<", ">",
 * spaces, quotes or backslashes (RFC 5322 3.6.4 msg-id; only the obsolete
 * quoted-string forms are lost); anything else in the fields (comments, the
 * phrases of obsolete In-Reply-To forms, 8-bit junk) is skipped. */
#ifndef PETREL_THREAD_REFS_H
#define PETREL_THREAD_REFS_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Bytes kept of each field: a References of a thread hundreds of messages
 * deep fits; only its first and last ids are used anyway. */
#define THREAD_FIELD_MAX 65536
/* RFC 5322 2.1.1: no line is longer than 998 bytes, and an id cannot fold. */
#define THREAD_MSGID_MAX 998
/* Ids a message refers to that are looked up: the first of References (the
 * thread's root), the last ones (the nearest ancestors) and In-Reply-To.
 * A constant, not a setting: a longer References is cut, never refused, so
 * no client meets it; it only bounds the lookups per stored message, and
 * THREADIDs would differ between backends configured differently. */
#define THREAD_REFS_MAX 64

enum thread_field { TF_NONE = -1, TF_MESSAGE_ID, TF_IN_REPLY_TO, TF_REFERENCES, TF_COUNT };

struct thread_refs {
    int state;                        /* where in the header the next byte is */
    enum thread_field field;          /* the field being read, TF_NONE for others */
    char name[16];                    /* the field name so far */
    size_t name_len;                  /* > sizeof name - 1: too long to be ours */
    struct buf value[TF_COUNT];       /* unfolded values, owned */
};

void thread_refs_init(struct thread_refs *t);
void thread_refs_feed(struct thread_refs *t, const void *data, size_t len);
void thread_refs_free(struct thread_refs *t);

/* The statement parameters: the message's own id (malloc'd; NULL when it has
 * none) and a text[] literal (malloc'd) of the ids it refers to, References
 * (its first and last THREAD_REFS_MAX - 1) then In-Reply-To, each once and
 * never its own, at most THREAD_REFS_MAX. */
void thread_refs_params(const struct thread_refs *t, char **msgid_r, char **refs_r);

#endif
