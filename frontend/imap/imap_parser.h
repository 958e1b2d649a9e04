/* IMAP command input: an incremental command reader and an argument parser.
 *
 * The reader (struct imap_reader) turns the raw byte stream from a client into
 * whole commands. It knows only line and literal framing: where a command ends,
 * where literals are and how big they may be. It never interprets arguments, so
 * a syntax error can never desynchronise the stream.
 *
 * The parser (imap_parse_command) turns one command the reader produced into a
 * tag, a command name and a tree of arguments.
 *
 * Command buffer format, shared by both: the command's lines joined in order,
 * every literal kept as its announcement, exactly "\r\n", then its data; the
 * final line's line ending is not included. So
 *     A1 LOGIN {3}\r\nbob "pw"\r\n
 * arrives as the 21 bytes  A1 LOGIN {3}\r\nbob "pw"  whatever line endings the
 * client used (bare LF is accepted). Literal data may contain NUL: every string
 * is (pointer, length), never NUL-terminated by contract. */
#ifndef PETREL_IMAP_PARSER_H
#define PETREL_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Reader --------------------------------------------------------------- */

/* Framing limits. The session typically uses a smaller max_line before login. */
struct imap_limits {
    size_t max_line;            /* bytes in one line, line ending excluded */
    size_t max_literal;         /* bytes in one literal kept in the buffer */
    size_t max_nonsync_literal; /* largest {n+} the client may send at all
                                   (4096 for LITERAL-); larger is fatal */
    size_t max_literals_total;  /* literal bytes kept per command */
    size_t max_literal_count;   /* literals kept per command */
    size_t max_command;         /* whole command buffer, lines plus literals */
};

enum imap_read_result {
    IMAP_READ_MORE,         /* all input consumed, nothing to report */
    IMAP_READ_COMMAND,      /* a complete command is in imap_reader_text() */
    IMAP_READ_LITERAL,      /* paused at a literal announcement; resolve it */
    IMAP_READ_LITERAL_DATA, /* a chunk of a streamed literal: imap_reader_chunk() */
    IMAP_READ_ERROR,        /* see imap_reader_error() */
};

enum imap_read_error {
    IMAP_RERR_NONE,
    /* Recoverable: the reader has dropped the command and is in step with
     * the client again; answer BAD (or NO [TOOBIG]) and go on. */
    IMAP_RERR_LINE_TOO_LONG,
    IMAP_RERR_COMMAND_TOO_BIG,
    IMAP_RERR_NUL,              /* NUL outside a literal */
    IMAP_RERR_BARE_CR,          /* CR not followed by LF */
    IMAP_RERR_LITERAL_TOO_BIG,  /* from imap_reader_accept_literal() */
    IMAP_RERR_TOO_MANY_LITERALS,
    /* Fatal: the stream cannot be resynchronised; send BYE and close. */
    IMAP_RERR_LITERAL_SIZE,     /* unparsable or overflowing {n} */
    IMAP_RERR_NONSYNC_TOO_BIG,  /* {n+} over max_nonsync_literal */
    IMAP_RERR_MISUSE,           /* caller broke the protocol of this API */
};

/* The literal the reader paused at. */
struct imap_literal {
    uint64_t size;
    bool nonsync;  /* {n+}: the data follows without a continuation request */
    bool binary;   /* ~{n}: literal8 (RFC 3516) */
    bool fits;     /* imap_reader_accept_literal() would succeed */
};

/* All fields are private; the struct is public so a session can embed it. */
struct imap_reader {
    struct imap_limits limits;
    char *buf;                 /* owned command buffer, NUL after len */
    size_t len, cap;
    size_t line_start;         /* where the current line begins in buf */
    int state;
    bool command_start;        /* no byte of this command stored yet */
    bool cr;                   /* previous byte was CR */
    bool quiet;                /* skipping without a report at the end */
    bool in_quote, escape;     /* quoted-string state of the current line */
    int tail;                  /* literal-announcement recogniser */
    bool tail_binary, tail_nonsync, tail_overflow;
    uint64_t tail_size;
    struct imap_literal lit;
    uint64_t lit_left;         /* literal bytes still to absorb/stream/skip */
    size_t literal_count;
    uint64_t literals_total;
    enum imap_read_error error;
    const char *chunk;         /* IMAP_READ_LITERAL_DATA: view into the input */
    size_t chunk_len;
    bool chunk_last;
};

void imap_reader_init(struct imap_reader *r, const struct imap_limits *limits);
void imap_reader_free(struct imap_reader *r);
/* Takes effect from the next command; call only between commands. */
void imap_reader_set_limits(struct imap_reader *r, const struct imap_limits *limits);

/* Feeds input. *used_r tells how much of it was consumed: feed the rest
 * again after handling the event (pipelined commands). Views returned by the
 * accessors below stay valid until the next feed or resolve call. After a
 * fatal error every feed returns IMAP_READ_ERROR and consumes nothing. A
 * streamed empty literal's one zero-length chunk comes from the next feed,
 * even one with no input. */
enum imap_read_result imap_reader_feed(struct imap_reader *r, const void *in,
                                       size_t len, size_t *used_r);

/* The command (IMAP_READ_COMMAND), the text up to and including the literal
 * announcement (IMAP_READ_LITERAL), or what was kept of a rejected line
 * (IMAP_READ_ERROR; enough to find the tag). NUL-terminated for debugging only. */
const char *imap_reader_text(const struct imap_reader *r, size_t *len_r);
const struct imap_literal *imap_reader_literal(const struct imap_reader *r);
/* IMAP_READ_LITERAL_DATA: a view into the caller's input; last is set on the
 * chunk that completes the literal (a zero-length one for an empty literal). */
const char *imap_reader_chunk(const struct imap_reader *r, size_t *len_r, bool *last_r);
enum imap_read_error imap_reader_error(const struct imap_reader *r);
bool imap_read_error_is_fatal(enum imap_read_error e);
/* Short human reason, suitable for "tag BAD reason" or "* BYE reason". */
const char *imap_read_error_reason(enum imap_read_error e);

/* Resolving an IMAP_READ_LITERAL event; exactly one must be called before the
 * next feed.
 *
 * accept: the data becomes part of the command buffer. For a synchronizing
 * literal the caller sends "+ OK" when this returns IMAP_READ_MORE. When the
 * literal does not fit it returns IMAP_READ_ERROR (recoverable): the command
 * is dropped, and a non-synchronizing literal's data and the rest of its command
 * are skipped silently. */
enum imap_read_result imap_reader_accept_literal(struct imap_reader *r);
/* reject: the caller has answered the command (NO/BAD); the reader drops it,
 * skipping silently what a non-synchronizing client sends anyway. */
enum imap_read_result imap_reader_reject_literal(struct imap_reader *r);
/* stream: the literal's data is handed out as IMAP_READ_LITERAL_DATA chunks
 * instead of being buffered (APPEND). The command text so far is discarded:
 * parse it first. After the last chunk the reader goes on with the rest of the
 * command, whose text starts afresh, so MULTIAPPEND yields LITERAL, DATA...,
 * LITERAL, DATA..., and a final COMMAND holding what followed the last literal
 * (normally nothing). Streamed literals do not count against the limits; the
 * caller applies its own. */
enum imap_read_result imap_reader_stream_literal(struct imap_reader *r);

/* ---- Parser --------------------------------------------------------------- */

struct imap_parse_limits {
    size_t max_tag;    /* bytes in a tag */
    size_t max_args;   /* argument nodes in the whole tree, lists included */
    size_t max_depth;  /* parenthesised list nesting */
};

enum imap_arg_type {
    IMAP_ARG_ATOM,
    IMAP_ARG_NIL,      /* atom NIL, any case; data still holds the text */
    IMAP_ARG_QUOTED,   /* escapes decoded */
    IMAP_ARG_LITERAL,
    IMAP_ARG_LIST,
};

struct imap_arg {
    enum imap_arg_type type;
    bool literal8;     /* LITERAL announced as ~{n} */
    bool pending;      /* LITERAL at the end of a prefix: len known, data NULL */
    const char *data;  /* ATOM, NIL, QUOTED, LITERAL; not NUL-terminated */
    size_t len;
    struct imap_arg *list;  /* LIST children */
    size_t count;
};

/* Memory for list arrays and decoded quoted strings. */
struct imap_arena {
    struct imap_arena_block *head;
};

struct imap_command {
    const char *tag;       /* NULL when the tag itself was invalid */
    size_t tag_len;
    const char *name;      /* the command; after UID, the subcommand */
    size_t name_len;
    bool uid;              /* "UID FETCH ..." gives uid and name "FETCH" */
    struct imap_arg *args; /* top-level arguments */
    size_t arg_count;
    bool literal_pending;  /* IMAP_PARSE_PREFIX stopped at a pending literal */
    struct imap_arena arena;
};

enum {
    /* The input may end with a literal announcement without data: the text
     * imap_reader_text() gives at IMAP_READ_LITERAL. Lists still open there
     * are returned with the children seen so far. */
    IMAP_PARSE_PREFIX = 1 << 0,
    /* Atoms may contain one or more "[...]" holding spaces and parentheses,
     * as FETCH's BODY[HEADER.FIELDS (From)]<0.100>. imap_parse_command sets
     * it itself for FETCH; imap_parse_args callers choose. */
    IMAP_PARSE_BRACKETS = 1 << 1,
};

/* Parses a command buffer. On success returns 0. On error returns -1 with a
 * short reason in *error_r; cmd->tag is still set if the tag was valid, so the
 * caller can answer "tag BAD reason". Either way the arguments are views into
 * buf or live in cmd->arena: buf must outlive cmd, and the caller releases cmd
 * with imap_command_free(). */
int imap_parse_command(const char *buf, size_t len, unsigned flags,
                       const struct imap_parse_limits *limits,
                       struct imap_command *cmd, const char **error_r);
/* Arguments only, no tag or name: the text after a streamed literal. The
 * result goes into cmd->args; tag and name stay NULL. */
int imap_parse_args(const char *buf, size_t len, unsigned flags,
                    const struct imap_parse_limits *limits,
                    struct imap_command *cmd, const char **error_r);
void imap_command_free(struct imap_command *cmd);

/* The tag at the start of text, for answering a line the reader rejected.
 * Returns false when there is no valid tag. */
bool imap_find_tag(const char *text, size_t len, size_t max_tag,
                   const char **tag_r, size_t *tag_len_r);

/* Case-insensitive comparison of an ATOM/NIL argument with a word. */
bool imap_arg_atom_is(const struct imap_arg *arg, const char *word);
/* ATOM, NIL (as "NIL"), QUOTED or a complete non-literal8 LITERAL. */
bool imap_arg_astring(const struct imap_arg *arg, const char **data_r, size_t *len_r);

#endif
