/* PostgreSQL array literals in text format, for int8[] and text[] parameters
 * and results. */
#ifndef PETREL_PGARRAY_H
#define PETREL_PGARRAY_H

#include <stddef.h>

/* Returns a malloc'd "{"a","b\"c"}" literal; the caller frees it. */
char *pg_text_array(char *const *items, size_t n);
/* Parses a text[] value ("{a,"b c",NULL}") into a malloc'd array of malloc'd
 * strings (NULL elements skipped); *n_r receives the count. Free with
 * pg_free_strings. Returns NULL with *n_r = 0 for an empty or invalid array. */
char **pg_parse_text_array(const char *s, size_t *n_r);
void pg_free_strings(char **v, size_t n);

#endif
