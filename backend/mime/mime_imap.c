/* IMAP strings: quoting, ENVELOPE and BODY/BODYSTRUCTURE, written as
 * Dovecot's imap-quote.c, imap-envelope.c and imap-bodystructure.c write
 * them (field order and NIL rules from RFC 3501 7.4.2 / RFC 9051 7.5.2). */
#include "mime/mime_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* More quoted-specials than this and a literal is shorter (Dovecot's rule). */
#define QUOTED_MAX_ESCAPES 4

static void append_literal(struct buf *b, const char *s, size_t n)
{
    buf_printf(b, "{%zu}\r\n", n);
    buf_append(b, s, n);
}

static void append_quoted(struct buf *b, const char *s)
{
    buf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n' || c >= 0x80)
            continue;
        if (c == '"' || c == '\\')
            buf_append(b, "\\", 1);
        buf_append(b, s, 1);
    }
    buf_append(b, "\"", 1);
}

void imap_append_nstring(struct buf *b, const char *s)
{
    if (!s) {
        buf_puts(b, "NIL");
        return;
    }
    unsigned escapes = 0;
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '"' || u == '\\') {
            if (escapes++ < QUOTED_MAX_ESCAPES)
                continue;
            append_literal(b, s, strlen(s));
            return;
        }
        if (u == '\r' || u == '\n' || u >= 0x80) {
            append_literal(b, s, strlen(s));
            return;
        }
    }
    append_quoted(b, s);
}

/* CR and LF are dropped where whitespace or the end follows (a folded line
 * keeps its indent as the space between words) and become a space where
 * anything else does: a lone CR inside a value, which arrival keeps
 * (crlf_norm.h), so "a\rb" reads "a b", as in Dovecot 2.3.19. */
void imap_append_nstring_nolf(struct buf *b, const char *s)
{
    if (!s || !strpbrk(s, "\r\n")) {
        imap_append_nstring(b, s);
        return;
    }
    size_t n = strlen(s);
    char *t = mime_xmalloc(n + 1), *o = t;
    for (; *s; s++) {
        if (*s != '\r' && *s != '\n')
            *o++ = *s;
        else if (!strchr(" \t\r\n", s[1]))   /* s[1] == '\0' is found too */
            *o++ = ' ';
    }
    *o = '\0';
    imap_append_nstring(b, t);
    free(t);
}

void imap_append_string_for_humans(struct buf *b, const char *s, size_t n)
{
    const unsigned char *src = (const unsigned char *)s;
    size_t remove = 0;
    bool ws_prefix = true, last_lwsp = true, modify = false;
    size_t i;

    for (i = 0; i < n; i++) {
        switch (src[i]) {
        case 0:
            last_lwsp = false;
            modify = true;
            break;
        case '\r':   /* whitespace like TAB: a lone CR (crlf_norm.h) reads as a space */
        case '\n':
        case '\t':
            modify = true;
            /* fall through */
        case ' ':
            if (last_lwsp) {
                modify = true;
                remove++;
            }
            last_lwsp = true;
            break;
        case '"':
        case '\\':
            modify = true;
            last_lwsp = false;
            break;
        default:
            if (src[i] & 0x80)
                modify = true;
            last_lwsp = false;
            break;
        }
        if (!last_lwsp)
            ws_prefix = false;
    }
    if (last_lwsp && i > 0 && !ws_prefix) {
        modify = true;
        remove++;
    }
    if (!modify) {
        buf_append(b, "\"", 1);
        buf_append(b, s, n);
        buf_append(b, "\"", 1);
        return;
    }
    if (n == remove) {
        buf_puts(b, "\"\"");
        return;
    }
    buf_printf(b, "{%zu}\r\n", n - remove);
    last_lwsp = true;
    ws_prefix = true;
    for (i = 0; i < n; i++) {
        switch (src[i]) {
        case 0:
            buf_append(b, "\x80", 1);
            last_lwsp = false;
            break;
        case '\r':
        case '\n':
        case '\t':
        case ' ':
            if (!last_lwsp)
                buf_append(b, " ", 1);
            last_lwsp = true;
            break;
        default:
            last_lwsp = false;
            buf_append(b, &src[i], 1);
            break;
        }
        if (!last_lwsp)
            ws_prefix = false;
    }
    if (last_lwsp && i > 0 && !ws_prefix)
        b->end--;
}

/* ---- ENVELOPE ---- */

enum env_field { E_DATE, E_SUBJECT, E_FROM, E_SENDER, E_REPLY_TO, E_TO, E_CC, E_BCC,
                 E_IN_REPLY_TO, E_MESSAGE_ID, E_COUNT };
static const char *const env_names[E_COUNT] = {
    "Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-ID",
};

static bool env_is_addr(int f) { return f >= E_FROM && f <= E_BCC; }

static void write_addrs(struct buf *out, const struct mime_addr *a, unsigned n)
{
    if (n == 0) {
        buf_puts(out, "NIL");
        return;
    }
    buf_append(out, "(", 1);
    for (unsigned i = 0; i < n; i++) {
        buf_append(out, "(", 1);
        if (!a[i].name)
            buf_puts(out, "NIL");
        else
            imap_append_string_for_humans(out, a[i].name, strlen(a[i].name));
        buf_append(out, " ", 1);
        imap_append_nstring_nolf(out, a[i].route);
        buf_append(out, " ", 1);
        imap_append_nstring_nolf(out, a[i].mailbox);
        buf_append(out, " ", 1);
        imap_append_nstring_nolf(out, a[i].domain);
        buf_append(out, ")", 1);
    }
    buf_append(out, ")", 1);
}

void mime_envelope_from_header(struct buf *out, const char *hdr, size_t len)
{
    /* Dovecot keeps the last occurrence of each string field. */
    char *str[E_COUNT] = {0};
    size_t slen[E_COUNT] = {0};
    struct mime_addr *addrs[E_COUNT] = {0};
    unsigned naddrs[E_COUNT] = {0};
    struct buf scratch = {0};
    struct mime_field f;
    size_t pos = 0;

    while (mime_field_next(hdr, len, &pos, &scratch, &f)) {
        for (int i = 0; i < E_COUNT; i++) {
            if (!mime_field_is(&f, env_names[i]))
                continue;
            if (env_is_addr(i)) {
                /* repeated address fields add up (Dovecot 2.3) */
                struct mime_addr *more;
                unsigned nm = mime_addrs_parse(f.value, f.value_len, &more);
                if (nm > 0) {
                    addrs[i] = mime_xrealloc(addrs[i], (naddrs[i] + nm) * sizeof *more);
                    memcpy(addrs[i] + naddrs[i], more, nm * sizeof *more);
                    naddrs[i] += nm;
                }
                free(more);
            } else {
                free(str[i]);
                str[i] = mime_xstrndup(f.value, f.value_len);
                slen[i] = f.value_len;
            }
            break;
        }
    }
    buf_free(&scratch);

    imap_append_nstring_nolf(out, str[E_DATE]);
    buf_append(out, " ", 1);
    if (!str[E_SUBJECT])
        buf_puts(out, "NIL");
    else
        imap_append_string_for_humans(out, str[E_SUBJECT], slen[E_SUBJECT]);
    static const int order[] = { E_FROM, E_SENDER, E_REPLY_TO, E_TO, E_CC, E_BCC };
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        int i = order[k];
        int src = i;
        if ((i == E_SENDER || i == E_REPLY_TO) && naddrs[i] == 0)
            src = E_FROM;
        buf_append(out, " ", 1);
        write_addrs(out, addrs[src], naddrs[src]);
    }
    buf_append(out, " ", 1);
    imap_append_nstring_nolf(out, str[E_IN_REPLY_TO]);
    buf_append(out, " ", 1);
    imap_append_nstring_nolf(out, str[E_MESSAGE_ID]);

    for (int i = 0; i < E_COUNT; i++) {
        free(str[i]);
        mime_addrs_free(addrs[i], naddrs[i]);
    }
}

/* ---- BODY / BODYSTRUCTURE ---- */

static void write_params(struct buf *out, const struct mime_param *p, unsigned n, bool default_charset)
{
    if (!default_charset && n == 0) {
        buf_puts(out, "NIL");
        return;
    }
    buf_append(out, "(", 1);
    bool seen_charset = false;
    unsigned i;
    for (i = 0; i < n; i++) {
        if (i > 0)
            buf_append(out, " ", 1);
        if (default_charset && strcasecmp(p[i].name, "charset") == 0)
            seen_charset = true;
        imap_append_nstring(out, p[i].name);
        buf_append(out, " ", 1);
        imap_append_nstring(out, p[i].value);
    }
    if (default_charset && !seen_charset) {
        if (i > 0)
            buf_append(out, " ", 1);
        buf_puts(out, "\"charset\" \"us-ascii\"");
    }
    buf_append(out, ")", 1);
}

static void write_common_ext(struct buf *out, const struct mime_part *p)
{
    buf_append(out, " ", 1);
    if (!p->disposition) {
        buf_puts(out, "NIL");
    } else {
        buf_append(out, "(", 1);
        imap_append_nstring(out, p->disposition);
        buf_append(out, " ", 1);
        write_params(out, p->disp_params, p->ndisp_params, false);
        buf_append(out, ")", 1);
    }
    buf_append(out, " ", 1);
    if (p->nlanguage == 0) {
        buf_puts(out, "NIL");
    } else {
        buf_append(out, "(", 1);
        for (unsigned i = 0; i < p->nlanguage; i++) {
            if (i > 0)
                buf_append(out, " ", 1);
            imap_append_nstring(out, p->language[i]);
        }
        buf_append(out, ")", 1);
    }
    buf_append(out, " ", 1);
    imap_append_nstring_nolf(out, p->location);
}

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
#define EMPTY_BODYSTRUCTURE "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"

/* The tree can be 10,000 parts deep in a hostile message that a large
 * max_depth let through, so the writer walks it with an explicit stack:
 * each frame is a part whose opening has been written and whose closing
 * (after its children) is pending. */
struct wframe {
    unsigned idx;
    int child;        /* next child to write, -1 when done */
};

static void write_open(struct buf *out, const struct mime_tree *t, unsigned idx, int extended, int crlf,
                       bool *has_children_r);
static void write_close(struct buf *out, const struct mime_tree *t, unsigned idx, int extended, int crlf);

static uint64_t body_size(const struct mime_part *p, int crlf)
{
    return crlf ? p->body_vsize : p->end_off - p->body_off;
}

/* Writes everything of part idx up to where its children go. */
static void write_open(struct buf *out, const struct mime_tree *t, unsigned idx, int extended, int crlf,
                       bool *has_children_r)
{
    const struct mime_part *p = &t->parts[idx];
    *has_children_r = false;
    if (p->flags & MIME_PART_MULTIPART) {
        if (p->first_child < 0)
            buf_puts(out, extended ? EMPTY_BODYSTRUCTURE : EMPTY_BODY);
        else
            *has_children_r = true;
        return;
    }
    bool text;
    if (p->flags & MIME_PART_MESSAGE) {
        buf_puts(out, "\"message\" \"rfc822\"");
        text = false;
    } else if (!p->type) {
        text = true;
        buf_puts(out, "\"text\" \"plain\"");
    } else {
        text = strcasecmp(p->type, "text") == 0;
        imap_append_nstring(out, p->type);
        buf_append(out, " ", 1);
        imap_append_nstring(out, p->subtype ? p->subtype : "");
    }
    buf_append(out, " ", 1);
    write_params(out, p->params, p->nparams, text);
    buf_append(out, " ", 1);
    imap_append_nstring_nolf(out, p->id);
    buf_append(out, " ", 1);
    imap_append_nstring_nolf(out, p->description);
    buf_append(out, " ", 1);
    if (p->encoding)
        imap_append_nstring(out, p->encoding);
    else
        buf_puts(out, "\"7bit\"");
    buf_printf(out, " %llu", (unsigned long long)body_size(p, crlf));
    if (text) {
        buf_printf(out, " %u", p->body_lines);
    } else if (p->flags & MIME_PART_MESSAGE) {
        const struct mime_part *c = p->first_child >= 0 ? &t->parts[p->first_child] : NULL;
        buf_puts(out, " (");
        if (c && c->envelope)
            buf_puts(out, c->envelope);
        else
            buf_puts(out, "NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL");
        buf_puts(out, ") ");
        if (c)
            *has_children_r = true;
        else
            buf_puts(out, extended ? EMPTY_BODYSTRUCTURE : EMPTY_BODY);
    }
}

static void write_close(struct buf *out, const struct mime_tree *t, unsigned idx, int extended, int crlf)
{
    const struct mime_part *p = &t->parts[idx];
    if (p->flags & MIME_PART_MULTIPART) {
        buf_append(out, " ", 1);
        imap_append_nstring(out, p->subtype ? p->subtype : "");
        if (!extended)
            return;
        buf_append(out, " ", 1);
        write_params(out, p->params, p->nparams, false);
        write_common_ext(out, p);
        return;
    }
    if (p->flags & MIME_PART_MESSAGE)
        buf_printf(out, " %u", p->body_lines);
    if (!extended)
        return;
    buf_append(out, " ", 1);
    imap_append_nstring_nolf(out, p->md5);
    write_common_ext(out, p);
}

static void mime_write_body_inner(struct buf *out, const struct mime_tree *t, unsigned idx,
                                  int extended, int crlf_sizes);

/* Dovecot does not store the structure of a single text/plain us-ascii 7bit
 * part without other fields; it writes this canonical (lower-case) form. */
static bool plain_7bit(const struct mime_part *p)
{
    if (p->first_child >= 0 || (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)))
        return false;
    if (p->type && strcasecmp(p->type, "text") != 0)
        return false;
    if (p->subtype && strcasecmp(p->subtype, "plain") != 0)
        return false;
    if (p->nparams > 1 || (p->nparams == 1 && (strcasecmp(p->params[0].name, "charset") != 0 ||
                                                strcasecmp(p->params[0].value, "us-ascii") != 0)))
        return false;
    if (p->id || p->description || (p->encoding && strcasecmp(p->encoding, "7bit") != 0))
        return false;
    return !p->md5 && !p->disposition && p->nlanguage == 0 && !p->location;
}

void mime_write_bodystructure(struct buf *out, const struct mime_tree *t, unsigned idx,
                              int extended, int crlf_sizes)
{
    if (idx >= t->count)
        return;
    const struct mime_part *p = &t->parts[idx];
    if (p->parent < 0 && plain_7bit(p)) {
        buf_printf(out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" %llu %u%s)",
                   (unsigned long long)body_size(p, crlf_sizes), p->body_lines,
                   extended ? " NIL NIL NIL NIL" : "");
        return;
    }
    buf_append(out, "(", 1);
    mime_write_body_inner(out, t, idx, extended, crlf_sizes);
    buf_append(out, ")", 1);
}

static void mime_write_body_inner(struct buf *out, const struct mime_tree *t, unsigned idx,
                                  int extended, int crlf_sizes)
{
    struct wframe *st = NULL;
    size_t n = 0, cap = 0;
    bool kids;

    write_open(out, t, idx, extended, crlf_sizes, &kids);
    if (!kids) {
        write_close(out, t, idx, extended, crlf_sizes);
        return;
    }
    cap = 16;
    st = mime_xmalloc(cap * sizeof *st);
    st[n++] = (struct wframe){ idx, t->parts[idx].first_child };
    while (n > 0) {
        struct wframe *f = &st[n - 1];
        const struct mime_part *p = &t->parts[f->idx];
        if (f->child < 0) {
            write_close(out, t, f->idx, extended, crlf_sizes);
            n--;
            if (n > 0)
                buf_append(out, ")", 1);   /* every child is parenthesised */
            continue;
        }
        unsigned c = (unsigned)f->child;
        /* a message/rfc822 has one child; a multipart writes all of them */
        if (p->flags & MIME_PART_MULTIPART)
            f->child = t->parts[c].next;
        else
            f->child = -1;
        buf_append(out, "(", 1);
        write_open(out, t, c, extended, crlf_sizes, &kids);
        if (kids) {
            if (n == cap) {
                cap *= 2;
                st = mime_xrealloc(st, cap * sizeof *st);
            }
            st[n++] = (struct wframe){ c, t->parts[c].first_child };
        } else {
            write_close(out, t, c, extended, crlf_sizes);
            buf_append(out, ")", 1);
        }
    }
    free(st);
}
