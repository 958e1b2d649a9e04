/* Shared between the files of backend/mime/; not for other modules. */
#ifndef PETREL_MIME_INTERNAL_H
#define PETREL_MIME_INTERNAL_H

#include "mime/mime.h"

#include <stdbool.h>
#include <stddef.h>

void *mime_xmalloc(size_t n);
void *mime_xrealloc(void *p, size_t n);
char *mime_xstrndup(const char *s, size_t n);
char *mime_buf_strdup(const struct buf *b);   /* copy of the contents as a C string */
/* Ensures a NUL after the contents (not counted in the length). */
void mime_buf_terminate(struct buf *b);

/* ---- RFC 822 tokenizer (semantics of Dovecot's rfc822-parser) ---- */

struct rfc822 {
    const unsigned char *p, *end;
    struct buf *last_comment;   /* when set, receives the text of the last comment skipped */
};

void rfc822_init(struct rfc822 *r, const void *data, size_t len, struct buf *last_comment);
/* Skips whitespace, CR/LF and comments: 1 = more input, 0 = end, -1 = broken comment. */
int rfc822_skip_lwsp(struct rfc822 *r);
int rfc822_mime_token(struct rfc822 *r, struct buf *out);
int rfc822_quoted_string(struct rfc822 *r, struct buf *out);
int rfc822_atom(struct rfc822 *r, struct buf *out);
int rfc822_dot_atom(struct rfc822 *r, struct buf *out);
int rfc822_phrase(struct rfc822 *r, struct buf *out);
int rfc822_domain(struct rfc822 *r, struct buf *out);
int rfc822_content_type(struct rfc822 *r, struct buf *out);

/* Parameters after a content type or disposition, with RFC 2231
 * continuations merged the way Dovecot does (values stay encoded). */
void mime_params_parse(struct rfc822 *r, struct mime_param **params, unsigned *count);
void mime_params_free(struct mime_param *params, unsigned count);

/* ---- addresses ---- */

struct mime_addr {
    char *name, *route, *mailbox, *domain;   /* NULL = NIL */
};

/* Parses an address list as Dovecot's message_address_parse(fill_missing):
 * group start = (NIL NIL name NIL), group end = all NIL. Returns the count;
 * *out is an array the caller frees with mime_addrs_free. */
unsigned mime_addrs_parse(const char *value, size_t len, struct mime_addr **out);
void mime_addrs_free(struct mime_addr *a, unsigned n);

/* ---- header fields ---- */

/* One field of a stored header block. value is Dovecot's "full value":
 * leading blanks after the colon skipped, CRs before LFs dropped, folded
 * lines joined with "\n" (the continuation's leading blank kept), NULs
 * replaced by U+FFFD (as Dovecot 2.3 does). */
struct mime_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Iterates over the fields of hdr[0..len): returns 1 with *f filled (value
 * in scratch, valid until the next call), 0 at the end. *pos starts at 0. */
int mime_field_next(const char *hdr, size_t len, size_t *pos, struct buf *scratch,
                    struct mime_field *f);
bool mime_field_is(const struct mime_field *f, const char *name);

/* ---- body text: transfer decoding, charset to UTF-8, HTML tags dropped ---- */

struct mime_text_dec;
struct mime_text_dec *mime_text_dec_new(const char *encoding, const char *charset, int html);
/* Appends the UTF-8 text of data to out; state carries over between calls. */
void mime_text_dec_feed(struct mime_text_dec *d, const char *data, size_t len, struct buf *out);
void mime_text_dec_finish(struct mime_text_dec *d, struct buf *out);
void mime_text_dec_free(struct mime_text_dec *d);

/* ---- IMAP output ---- */

void imap_append_nstring(struct buf *b, const char *s);                    /* NULL = NIL */
void imap_append_nstring_nolf(struct buf *b, const char *s);               /* CR, LF out (or a space) */
void imap_append_string_for_humans(struct buf *b, const char *s, size_t n);

#endif
