/* POP3 command lines (RFC 1939, RFC 2449, RFC 5034).
 *
 * A line from common/line_reader is split into a keyword and arguments. The
 * keyword is 3 or 4 letters, case-insensitive, returned upper-cased.
 * Arguments are separated by spaces; runs of spaces and trailing spaces are
 * tolerated. PASS takes the rest of the line verbatim, since passwords may
 * contain spaces: use cmd->rest for it. */
#ifndef PETREL_POP3_PARSER_H
#define PETREL_POP3_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_limits {
    size_t max_args;     /* arguments after the keyword */
    size_t max_arg_len;  /* bytes in one argument (RFC 1939 says 40; SASL
                            initial responses need more) */
};

struct pop3_arg {
    const char *data;  /* view into the line, not NUL-terminated */
    size_t len;
};

struct pop3_command {
    char keyword[5];        /* upper-cased, NUL-terminated */
    struct pop3_arg *args;  /* caller's array of limits->max_args entries */
    size_t argc;
    const char *rest;       /* everything after the keyword's space, verbatim */
    size_t rest_len;
};

/* Parses line (len bytes, no line ending) into cmd, whose args array the
 * caller provides with room for limits->max_args entries. Returns 0, or -1
 * with a short reason for "-ERR reason" in *error_r. */
int pop3_parse_command(const char *line, size_t len, const struct pop3_limits *limits,
                       struct pop3_command *cmd, const char **error_r);

/* A decimal number: digits only, no sign, no overflow. */
bool pop3_parse_number(const char *s, size_t len, uint32_t *n_r);
/* A message number: a number of at least 1. Whether it names an existing
 * message is the session's check. */
bool pop3_parse_msgnum(const char *s, size_t len, uint32_t *n_r);

#endif
