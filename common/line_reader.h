/* Incremental reader of CRLF- or LF-terminated lines (POP3, LMTP).
 *
 * The caller feeds bytes as they arrive and gets one line at a time, without
 * its line ending. A line longer than max_line is not kept: the reader skips to
 * its LF and then reports it once as LINE_READ_TOO_LONG, so the session can
 * answer an error in order and go on with the next line. Lines may contain
 * NUL; they are (pointer, length). */
#ifndef PETREL_LINE_READER_H
#define PETREL_LINE_READER_H

#include <stdbool.h>
#include <stddef.h>

enum line_read_result {
    LINE_READ_MORE,      /* all input consumed, no complete line yet */
    LINE_READ_LINE,      /* a line is ready */
    LINE_READ_TOO_LONG,  /* a line over max_line was skipped */
};

struct line_reader {
    size_t max_line;  /* bytes of one line, line ending excluded */
    char *buf;        /* owned; max_line + 2 bytes once allocated */
    size_t len;
    bool skipping;    /* inside a line already known to be too long */
};

void line_reader_init(struct line_reader *r, size_t max_line);
void line_reader_free(struct line_reader *r);
/* Changes the limit; call between lines. */
void line_reader_set_max(struct line_reader *r, size_t max_line);

/* Consumes input up to and including the end of one line and reports it.
 * *used_r is how much of in was consumed; feed the rest after handling the
 * event. The line (NUL-terminated for convenience, but may contain NUL) is a
 * view into the reader, valid until the next feed. */
enum line_read_result line_reader_feed(struct line_reader *r, const void *in, size_t len,
                                       size_t *used_r, const char **line_r, size_t *line_len_r);

#endif
