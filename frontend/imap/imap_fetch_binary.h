/* The FETCH items of RFC 3516 (IMAP BINARY, also RFC 9051 6.4.5):
 * BINARY[section]<partial>, BINARY.PEEK[section]<partial> and
 * BINARY.SIZE[section]. cmd_fetch.c streams them like BODY[section]; the
 * backend decodes (backend/op_binary.c). */
#ifndef PETREL_IMAP_FETCH_BINARY_H
#define PETREL_IMAP_FETCH_BINARY_H

#include "buf.h"
#include "petrel.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest section-binary accepted: part numbers nested this deep are not
 * real mail (the MIME parser's max_depth is 100, its numbers short). */
#define FETCH_BINARY_MAX_SECTION 100

struct fetch_binary {
    bool size_only;          /* BINARY.SIZE */
    bool peek;               /* BINARY.PEEK, or BINARY.SIZE: \Seen stays */
    bool partial;
    uint64_t off, len;
    char section[FETCH_BINARY_MAX_SECTION + 1];   /* "" or "1.2.3" */
    char label[FETCH_BINARY_MAX_SECTION + 40];    /* "BINARY[1.2]<10>", "BINARY.SIZE[1]" */
};

/* Parses one FETCH item. Returns 1 when it is a valid BINARY item, 0 when it
 * is not a BINARY item at all, -1 when it is one but malformed (BAD): a
 * section other than part numbers (RFC 9051 section-binary), a partial on
 * BINARY.SIZE, a zero-length partial. */
int fetch_binary_parse(const char *s, size_t n, struct fetch_binary *it);

/* Fills the BodyReq for it (section points into it). */
void fetch_binary_request(const struct fetch_binary *it, Petrel__BodyReq *br);

/* Writes the item's response from the first Chunk of its stream:
 * "BINARY[1] ~{n}\r\n" (literal8 when the backend says so, RFC 3516 4.3) or
 * "BINARY.SIZE[1] n". */
void fetch_binary_write_head(struct buf *out, const struct fetch_binary *it, const Petrel__Chunk *first);

#endif
