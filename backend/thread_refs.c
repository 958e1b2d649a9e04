/* Threading fields of an arriving message's header (thread_refs.h). */
#include "thread_refs.h"

#include "pgarray.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { S_LINE_START, S_BLANK_CR, S_NAME, S_VALUE, S_DONE };

void thread_refs_init(struct thread_refs *t)
{
    memset(t, 0, sizeof *t);
    t->state = S_LINE_START;
    t->field = TF_NONE;
}

void thread_refs_free(struct thread_refs *t)
{
    for (int i = 0; i < TF_COUNT; i++)
        buf_free(&t->value[i]);
}

static enum thread_field field_of(const struct thread_refs *t)
{
    static const char *const names[TF_COUNT] = { "message-id", "in-reply-to", "references" };
    size_t n = t->name_len;
    if (n >= sizeof t->name)
        return TF_NONE;
    while (n && (t->name[n - 1] == ' ' || t->name[n - 1] == '\t'))
        n--;   /* obs-optional: "Name :" (RFC 5322 4.5.3) */
    for (int i = 0; i < TF_COUNT; i++)
        if (strlen(names[i]) == n && strncasecmp(t->name, names[i], n) == 0)
            return (enum thread_field)i;
    return TF_NONE;
}

static void keep(struct thread_refs *t, char c)
{
    struct buf *b = &t->value[t->field];
    if (buf_len(b) < THREAD_FIELD_MAX)
        buf_append(b, &c, 1);
}

/* A field line starts: which one, and whether a repeat of it counts. */
static void field_begins(struct thread_refs *t)
{
    t->field = field_of(t);
    if (t->field == TF_NONE)
        return;
    /* A second Message-ID does not replace the first; a second References
     * or In-Reply-To adds to the first. */
    if (t->field == TF_MESSAGE_ID && buf_len(&t->value[TF_MESSAGE_ID]))
        t->field = TF_NONE;
    else if (buf_len(&t->value[t->field]))
        keep(t, ' ');
}

static void feed_byte(struct thread_refs *t, char c)
{
    switch (t->state) {
    case S_LINE_START:
        if (c == '\n') {
            t->state = S_DONE;
        } else if (c == '\r') {
            t->state = S_BLANK_CR;
        } else if (c == ' ' || c == '\t') {
            t->state = S_VALUE;   /* a folded line continues the field */
            if (t->field != TF_NONE)
                keep(t, ' ');
        } else {
            t->state = S_NAME;
            t->field = TF_NONE;
            t->name_len = 0;
            feed_byte(t, c);
        }
        break;
    case S_BLANK_CR:
        /* CRLF on its own ends the header; a lone CR starts a line that
         * is no field of ours. */
        t->state = c == '\n' ? S_DONE : S_VALUE;
        t->field = TF_NONE;
        break;
    case S_NAME:
        if (c == ':') {
            field_begins(t);
            t->state = S_VALUE;
        } else if (c == '\n') {
            t->state = S_LINE_START;   /* no colon: not a field */
        } else {
            /* name_len stops at sizeof name: "too long to be ours". */
            if (t->name_len < sizeof t->name)
                t->name[t->name_len++] = c;
        }
        break;
    case S_VALUE:
        if (c == '\n')
            t->state = S_LINE_START;
        else if (c != '\r' && t->field != TF_NONE)
            keep(t, c);
        break;
    default:
        break;
    }
}

void thread_refs_feed(struct thread_refs *t, const void *data, size_t len)
{
    const char *p = data;
    for (size_t i = 0; i < len && t->state != S_DONE; i++)
        feed_byte(t, p[i]);
}

/* ---- ids ---- */

struct id { const char *p; size_t n; };

/* The next <id> in [*p, end), advancing *p; false when there is none. */
static bool next_id(const char **p, const char *end, struct id *out)
{
    while (*p < end) {
        const char *lt = memchr(*p, '<', (size_t)(end - *p));
        if (!lt) {
            *p = end;
            return false;
        }
        const char *q = lt + 1;
        while (q < end && *q > ' ' && *q < 0x7f && !strchr("<>\"\\", *q))
            q++;
        *p = q;
        if (q < end && *q == '>' && q > lt + 1 && (size_t)(q - lt - 1) <= THREAD_MSGID_MAX) {
            out->p = lt + 1;
            out->n = (size_t)(q - lt - 1);
            *p = q + 1;
            return true;
        }
    }
    return false;
}

static size_t count_ids(const struct buf *b)
{
    const char *p = buf_head(b);
    struct id x;
    size_t n = 0;
    while (p && next_id(&p, buf_head(b) + buf_len(b), &x))
        n++;
    return n;
}

static bool same(struct id a, struct id b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

/* Adds x to v unless it is there or is the message's own id. */
static void add_id(struct id *v, size_t *n, struct id x, const struct id *own)
{
    if (*n >= THREAD_REFS_MAX || (own && same(*own, x)))
        return;
    for (size_t i = 0; i < *n; i++)
        if (same(v[i], x))
            return;
    v[(*n)++] = x;
}

void thread_refs_params(const struct thread_refs *t, char **msgid_r, char **refs_r)
{
    struct id own, x, ids[THREAD_REFS_MAX];
    size_t n = 0;
    const struct buf *b = &t->value[TF_MESSAGE_ID];
    const char *p = buf_head(b);
    bool has_own = p && next_id(&p, p + buf_len(b), &own);

    /* References: its first id and, of the rest, the last that leave room
     * for In-Reply-To's (one, usually). */
    b = &t->value[TF_REFERENCES];
    size_t total = count_ids(b);
    size_t skip_to = total > THREAD_REFS_MAX - 1 ? total - (THREAD_REFS_MAX - 2) : 1;
    p = buf_head(b);
    for (size_t i = 0; p && next_id(&p, buf_head(b) + buf_len(b), &x); i++)
        if (i == 0 || i >= skip_to)
            add_id(ids, &n, x, has_own ? &own : NULL);
    b = &t->value[TF_IN_REPLY_TO];
    p = buf_head(b);
    while (p && next_id(&p, buf_head(b) + buf_len(b), &x))
        add_id(ids, &n, x, has_own ? &own : NULL);

    char *strs[THREAD_REFS_MAX] = { 0 };
    for (size_t i = 0; i < n; i++)
        strs[i] = strndup(ids[i].p, ids[i].n);
    *refs_r = pg_text_array(strs, n);
    for (size_t i = 0; i < n; i++)
        free(strs[i]);
    *msgid_r = has_own ? strndup(own.p, own.n) : NULL;
}
