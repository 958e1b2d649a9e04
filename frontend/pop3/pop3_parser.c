#include "pop3/pop3_parser.h"

#include <string.h>

/* RFC 1939: "Keywords are three or four characters long." */
#define POP3_KEYWORD_MIN 3
#define POP3_KEYWORD_MAX 4

static bool is_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Printable bytes and 8-bit (UTF-8 user names, RFC 6856); no controls. */
static bool is_arg_byte(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static int parse_keyword(const char *line, size_t len, struct pop3_command *cmd,
                         size_t *end_r, const char **error_r)
{
    size_t n = 0;
    while (n < len && line[n] != ' ') {
        if (!is_letter(line[n]) || n == POP3_KEYWORD_MAX) {
            *error_r = "Invalid command";
            return -1;
        }
        cmd->keyword[n] = upper(line[n]);
        n++;
    }
    if (n < POP3_KEYWORD_MIN) {
        *error_r = n == 0 ? "Empty command" : "Invalid command";
        return -1;
    }
    cmd->keyword[n] = '\0';
    *end_r = n;
    return 0;
}

static int parse_args(const char *p, const char *end, const struct pop3_limits *limits,
                      struct pop3_command *cmd, const char **error_r)
{
    for (;;) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            return 0;
        const char *start = p;
        while (p < end && *p != ' ') {
            if (!is_arg_byte((unsigned char)*p)) {
                *error_r = "Invalid character in argument";
                return -1;
            }
            p++;
        }
        if ((size_t)(p - start) > limits->max_arg_len) {
            *error_r = "Argument too long";
            return -1;
        }
        if (cmd->argc == limits->max_args) {
            *error_r = "Too many arguments";
            return -1;
        }
        cmd->args[cmd->argc++] = (struct pop3_arg){ start, (size_t)(p - start) };
    }
}

int pop3_parse_command(const char *line, size_t len, const struct pop3_limits *limits,
                       struct pop3_command *cmd, const char **error_r)
{
    size_t kw_end;
    cmd->argc = 0;
    cmd->rest = NULL;
    cmd->rest_len = 0;
    cmd->keyword[0] = '\0';
    if (parse_keyword(line, len, cmd, &kw_end, error_r) < 0)
        return -1;
    if (kw_end < len) {
        cmd->rest = line + kw_end + 1;
        cmd->rest_len = len - kw_end - 1;
    }
    /* A password may contain spaces, so PASS is not split: its argument is
     * cmd->rest, bounded only by the line limit. Control bytes are still
     * refused. */
    if (strcmp(cmd->keyword, "PASS") == 0) {
        for (size_t i = 0; i < cmd->rest_len; i++) {
            unsigned char c = (unsigned char)cmd->rest[i];
            if (c != ' ' && !is_arg_byte(c)) {
                *error_r = "Invalid character in argument";
                return -1;
            }
        }
        return 0;
    }
    return parse_args(line + kw_end, line + len, limits, cmd, error_r);
}

bool pop3_parse_number(const char *s, size_t len, uint32_t *n_r)
{
    uint32_t n = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint32_t d = (uint32_t)(s[i] - '0');
        if (n > (UINT32_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *n_r = n;
    return true;
}

bool pop3_parse_msgnum(const char *s, size_t len, uint32_t *n_r)
{
    uint32_t n;
    if (!pop3_parse_number(s, len, &n) || n == 0)
        return false;
    *n_r = n;
    return true;
}
