/* Incremental MIME parser: the part tree, IMAP BODYSTRUCTURE / BODY / ENVELOPE
 * strings and decoded searchable text, computed once when a message arrives.
 *
 * A message is fed in arbitrary pieces (mime_parser_feed) and finished with
 * mime_parser_finish. Memory is bounded whatever the message size: the parser
 * keeps the header bytes of the part being parsed (up to max_header_bytes),
 * the boundary stack (at most max_depth boundaries of at most
 * MIME_BOUNDARY_MAX bytes), a fixed line-prefix buffer, and the part tree
 * (at most max_parts parts, each holding strings taken from its own header).
 *
 * Structure follows Dovecot's message-parser (src/lib-mail) where RFCs leave
 * choices: boundaries match by prefix (the longest active boundary wins, the
 * innermost on a tie), the [CR]LF before a boundary line belongs to the
 * boundary, a boundary seen inside a header ends that header, a part without
 * Content-Type is text/plain (message/rfc822 under multipart/digest), the
 * Content-* fields of a part that is not MIME (no MIME-Version and no
 * Content-Type, and not a child of a multipart) are ignored, parts nested
 * deeper than max_depth are opaque leaves (their Content-Type is still
 * reported), and once max_parts parts exist the last one takes the rest of
 * the message as its body.
 *
 * Sizes are bytes of the message as stored (no CRLF conversion); each part
 * also records the CRLF-normalised ("virtual", Dovecot's) size for callers
 * that serve bare-LF messages converted to CRLF.
 *
 * IMAP strings are written as Dovecot 2.3 writes them (checked against
 * Dovecot 2.3.19.1 in tests/unit/test_mime_dovecot.c): values as in the
 * message, case kept, encoded words not decoded; RFC 2231 continuations
 * merged into one "name*" (or "name") parameter whose value stays encoded;
 * text parts without a charset get ("charset" "us-ascii"); a multipart
 * without parts gets one empty text/plain part; strings with CR, LF, 8-bit
 * or more than 4 quoted-specials are literals, and Subject and display
 * names collapse blanks (a literal when anything changed). A single
 * text/plain us-ascii 7bit message is written in lower case. Known
 * differences: Dovecot counts sizes after LF -> CRLF (use crlf_sizes), it
 * may turn a header line longer than its input buffer into a literal, and it
 * reads a bare CR inside a header field differently.
 *
 * Ownership: a parser owns everything until mime_parser_finish, which moves
 * the tree and strings into the caller's mime_result and frees the parser.
 * The text sink's data pointer is valid only during the call. */
#ifndef PETREL_MIME_H
#define PETREL_MIME_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* RFC 2046 allows 70; Dovecot compares at most this many bytes. */
#define MIME_BOUNDARY_MAX 80

struct mime_limits {
    unsigned max_depth;         /* containers (multipart, message/rfc822) on a path; default 100 */
    unsigned max_parts;         /* parts in the tree; default 10000 */
    size_t max_header_bytes;    /* header bytes kept per part for parsing; default 256 KiB */
    unsigned max_header_lines;  /* header fields parsed per part; default 2000 */
    size_t max_text;            /* bytes of decoded searchable text per message (the "Name: " framing
                                 * of result->text comes on top); default 1 MiB */
};

/* Values used for any limit given as 0, and by mime_parser_new(NULL). The
 * backend passes max_text from its search_text_max setting (mime_store.c). */
#define MIME_DEFAULT_MAX_DEPTH 100
#define MIME_DEFAULT_MAX_PARTS 10000
#define MIME_DEFAULT_MAX_HEADER_BYTES (256 * 1024)
#define MIME_DEFAULT_MAX_HEADER_LINES 2000
#define MIME_DEFAULT_MAX_TEXT (1024 * 1024)

enum mime_part_flags {
    MIME_PART_MULTIPART = 1 << 0,   /* has (or may have) children separated by boundaries */
    MIME_PART_MESSAGE = 1 << 1,     /* message/rfc822: exactly one child, the embedded message */
    MIME_PART_TEXT = 1 << 2,        /* text/ * or no Content-Type: BODYSTRUCTURE gives lines */
    MIME_PART_IS_MIME = 1 << 3,     /* Content-* fields apply */
    MIME_PART_OVERFLOW = 1 << 4,    /* max_parts reached here: the body runs to the end */
    MIME_PART_HAS_NULS = 1 << 5,    /* a NUL byte in header or body */
    MIME_PART_HDR_TRUNCATED = 1 << 6, /* header ended by a boundary, no blank line */
    MIME_PART_HDR_CAPPED = 1 << 7,  /* header longer than max_header_bytes/lines: the rest unparsed */
    MIME_PART_BIN_SIZES = 1 << 8,   /* bin_size and bin_cte_len are set (trees stored before them lack it) */
};

struct mime_param {
    char *name;
    char *value;
};

/* One node of the part tree. Parts are stored in document order (preorder):
 * index 0 is the whole message; a part's children follow it. Offsets are in
 * the raw message: header [hdr_off, body_off), body [body_off, end_off). All
 * strings are owned by the tree; a NULL string means the field is absent. */
struct mime_part {
    uint64_t hdr_off, body_off, end_off;
    uint64_t hdr_vsize, body_vsize;   /* sizes with every bare LF counted as CRLF */
    uint32_t hdr_lines, body_lines;   /* LF count */
    uint32_t flags;                   /* enum mime_part_flags */
    int32_t parent;                   /* -1 for the root */
    int32_t first_child, next;        /* -1 when none */
    uint32_t depth;                   /* containers above this part */
    /* For IMAP BINARY (backend/binary_part.h), with MIME_PART_BIN_SIZES: */
    uint64_t bin_size;                /* a base64 or quoted-printable leaf: its body's decoded size */
    uint32_t bin_cte_len;             /* header bytes of Content-Transfer-Encoding fields */

    char *type, *subtype;             /* as written, e.g. "TEXT" "Plain"; NULL: none given */
    struct mime_param *params;        /* Content-Type parameters, RFC 2231 merged as Dovecot does */
    unsigned nparams;
    char *id, *description, *encoding, *md5;
    char *disposition;
    struct mime_param *disp_params;
    unsigned ndisp_params;
    char **language;                  /* Content-Language tags */
    unsigned nlanguage;
    char *location;
    /* The IMAP ENVELOPE of the message this part heads: set on the root and
     * on the single child of every message/rfc822 part; NULL elsewhere. */
    char *envelope;
};

struct mime_tree {
    struct mime_part *parts;
    unsigned count;
    unsigned cap;
};

enum mime_text_kind {
    MIME_TEXT_HEADER,   /* name = header field name; data = its value, unfolded, RFC 2047 decoded */
    MIME_TEXT_BODY,     /* name = NULL; data = a piece of a text/ * body, decoded to UTF-8 */
};

/* Receives searchable text as UTF-8. part is the index in the tree of the
 * part the text comes from. A body arrives in several calls. The total given
 * per message is at most max_text bytes. */
typedef void mime_text_fn(void *ctx, enum mime_text_kind kind, unsigned part,
                          const char *name, const char *data, size_t len);

struct mime_result {
    struct mime_tree tree;      /* owned; released by mime_result_free */
    struct buf bodystructure;   /* NUL-terminated: IMAP BODYSTRUCTURE value */
    struct buf body;            /* NUL-terminated: IMAP BODY (non-extensible) value */
    struct buf envelope;        /* NUL-terminated: IMAP ENVELOPE value, without the outer parens */
    struct buf text;            /* searchable text when no sink was set: "Name: value\n" per
                                 * header field, then each text body followed by "\n" */
    uint64_t header_size;       /* bytes of the top-level header, blank line included */
    uint64_t size;              /* bytes fed */
    int text_truncated;         /* max_text was reached */
};

struct mime_parser;

/* limits may be NULL (defaults); zero fields take the defaults. */
struct mime_parser *mime_parser_new(const struct mime_limits *limits);
/* Searchable text goes to fn instead of result->text. Call before feeding. */
void mime_parser_set_text_sink(struct mime_parser *p, mime_text_fn *fn, void *ctx);
void mime_parser_feed(struct mime_parser *p, const void *data, size_t len);
/* Ends the message, fills *out (which the caller then owns and releases with
 * mime_result_free) and frees the parser. Always succeeds: any input gives a
 * tree whose offsets lie within [0, size]. */
void mime_parser_finish(struct mime_parser *p, struct mime_result *out);
/* Frees a parser without a result (an aborted upload). NULL is fine. */
void mime_parser_free(struct mime_parser *p);
void mime_result_free(struct mime_result *r);

/* One-shot convenience. */
void mime_parse(const void *msg, size_t len, const struct mime_limits *limits,
                struct mime_result *out);

/* ---- IMAP strings from a tree (also usable on a decoded tree) ---- */

/* Appends the BODYSTRUCTURE (extended = 1) or BODY (extended = 0) value of
 * part idx (0: the message). Strings are quoted, or sent as literals when
 * they hold CR, LF, 8-bit bytes or more than 4 quoted-specials (Dovecot's
 * rule). With crlf_sizes, sizes are the CRLF-normalised ones. */
void mime_write_bodystructure(struct buf *out, const struct mime_tree *t, unsigned idx,
                              int extended, int crlf_sizes);

/* ---- stored form ---- */

/* A compact binary form of the tree: magic "PMT1", then per part varints
 * and length-prefixed strings. Decoding checks every length and link and
 * fails (-1) on anything malformed; it never trusts the input. */
void mime_tree_encode(const struct mime_tree *t, struct buf *out);
int mime_tree_decode(const void *data, size_t len, struct mime_tree *t);
void mime_tree_free(struct mime_tree *t);

enum mime_section_kind {
    MIME_SECTION_ALL,      /* BODY[]  or BODY[1.2]: a part's content */
    MIME_SECTION_HEADER,   /* HEADER, HEADER.FIELDS (.NOT): the caller filters the fields */
    MIME_SECTION_TEXT,     /* TEXT */
    MIME_SECTION_MIME,     /* 1.2.MIME: the part's own MIME header */
};

struct mime_range {
    uint64_t start, end;   /* [start, end) in the raw message */
    enum mime_section_kind kind;
    int part;              /* index of the part the range belongs to */
};

/* Resolves an IMAP section spec ("", "1.2", "2.HEADER", "1.MIME", "TEXT",
 * "3.HEADER.FIELDS (From)" — anything after HEADER.FIELDS is ignored here).
 * Case-insensitive. Returns 0 and the range, or -1 when the section does not
 * exist or is malformed. A section naming a part that is not in the message
 * but whose parent exists (e.g. "1.1" of a single text part) is -1; RFC 3501
 * lets servers answer such a FETCH with an empty string, which is the caller's
 * choice. HEADER or TEXT after a part that is not a message is an empty range
 * (Dovecot's answer). */
int mime_find_section(const struct mime_tree *t, const char *section, struct mime_range *out);

/* ---- helpers exposed for tests and for other modules ---- */

/* Decodes RFC 2047 encoded words in a header value to UTF-8 (unfolding it),
 * appending to out. Undecodable words are kept as they are. */
void mime_decode_header_value(struct buf *out, const char *value, size_t len);
/* Appends in converted from charset to UTF-8, replacing what does not convert
 * with U+FFFD. Unknown charsets are taken as UTF-8. */
void mime_charset_to_utf8(struct buf *out, const char *charset, const char *in, size_t len);
/* Appends the IMAP ENVELOPE (without outer parens) for a raw header block. */
void mime_envelope_from_header(struct buf *out, const char *hdr, size_t len);

#endif
