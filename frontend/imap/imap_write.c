#include "imap/imap_write.h"

#include "buf.h"

#include <string.h>
#include <strings.h>

static bool needs_literal(const char *s, size_t len, size_t max_quoted, bool utf8)
{
    if (len > max_quoted)
        return true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || (c >= 0x80 && !utf8))
            return true;
    }
    return false;
}

/* ASTRING-CHAR: ATOM-CHAR or ']'. */
static bool is_astring_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\", c);
}

static void write_quoted(struct buf *out, const char *s, size_t len)
{
    buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '"' && s[i] != '\\')
            continue;
        buf_append(out, s + run, i - run);
        buf_append(out, "\\", 1);
        run = i;
    }
    buf_append(out, s + run, len - run);
    buf_append(out, "\"", 1);
}

void imap_write_atom(struct buf *out, const char *s, size_t len)
{
    buf_append(out, s, len);
}

void imap_write_literal(struct buf *out, const char *s, size_t len, bool binary)
{
    buf_printf(out, "%s{%zu}\r\n", binary ? "~" : "", len);
    buf_append(out, s, len);
}

size_t imap_literal_nul_to_0x80(char *s, size_t len)
{
    size_t n = 0;
    for (char *p = s; (p = memchr(p, '\0', len - (size_t)(p - s))) != NULL; p++, n++)
        *p = (char)0x80;
    return n;
}

bool imap_write_string(struct buf *out, const char *s, size_t len, size_t max_quoted)
{
    if (len > 0 && memchr(s, '\0', len))
        return false;
    if (needs_literal(s, len, max_quoted, false))
        imap_write_literal(out, s, len, false);
    else
        write_quoted(out, s, len);
    return true;
}

bool imap_write_nstring(struct buf *out, const char *s, size_t len, size_t max_quoted)
{
    if (!s) {
        buf_append(out, "NIL", 3);
        return true;
    }
    return imap_write_string(out, s, len, max_quoted);
}

bool imap_write_astring(struct buf *out, const char *s, size_t len, size_t max_quoted)
{
    bool atom = len > 0 && len <= max_quoted &&
                !(len == 3 && strncasecmp(s, "NIL", 3) == 0);
    for (size_t i = 0; atom && i < len; i++)
        atom = is_astring_char((unsigned char)s[i]);
    if (!atom)
        return imap_write_string(out, s, len, max_quoted);
    buf_append(out, s, len);
    return true;
}

bool imap_write_utf8_astring(struct buf *out, const char *s, size_t len, size_t max_quoted)
{
    if (len > 0 && memchr(s, '\0', len))
        return false;
    bool ascii = true;
    for (size_t i = 0; ascii && i < len; i++)
        ascii = (unsigned char)s[i] < 0x80;
    if (ascii)
        return imap_write_astring(out, s, len, max_quoted);
    if (needs_literal(s, len, max_quoted, true))
        imap_write_literal(out, s, len, false);
    else
        write_quoted(out, s, len);
    return true;
}
