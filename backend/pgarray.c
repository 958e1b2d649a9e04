#include "pgarray.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>

char *pg_text_array(char *const *items, size_t n)
{
    struct buf b = {0};
    buf_puts(&b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_puts(&b, ",");
        buf_puts(&b, "\"");
        for (const char *p = items[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_append(&b, "\\", 1);
            buf_append(&b, p, 1);
        }
        buf_puts(&b, "\"");
    }
    buf_append(&b, "}", 2);   /* with the terminating NUL */
    return b.data;
}

void pg_free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Reads one element at *pp into out; returns 1 if it was an unquoted NULL. */
static int read_element(const char **pp, struct buf *out)
{
    const char *p = *pp;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            buf_append(out, p, 1);
        }
        if (*p == '"')
            p++;
        *pp = p;
        return 0;
    }
    const char *start = p;
    while (*p && *p != ',' && *p != '}')
        p++;
    *pp = p;
    if (p - start == 4 && strncmp(start, "NULL", 4) == 0)
        return 1;
    buf_append(out, start, (size_t)(p - start));
    return 0;
}

char **pg_parse_text_array(const char *s, size_t *n_r)
{
    *n_r = 0;
    if (!s || *s != '{' || s[1] == '}')
        return NULL;
    size_t cap = 4, n = 0;
    char **v = malloc(cap * sizeof *v);
    const char *p = s + 1;
    while (*p && *p != '}') {
        struct buf e = {0};
        int is_null = read_element(&p, &e);
        buf_append(&e, "", 1);
        if (is_null) {
            buf_free(&e);
        } else {
            if (n == cap)
                v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = e.data;
        }
        if (*p == ',')
            p++;
    }
    *n_r = n;
    return v;
}
