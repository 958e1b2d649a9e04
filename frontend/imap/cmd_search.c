/* SEARCH and UID SEARCH (RFC 9051 6.4.4, RFC 3501 6.4.4), with ESEARCH's
 * RETURN (MIN MAX COUNT ALL) (RFC 4731) and SEARCHRES's SAVE and "$"
 * (RFC 5182: the result is kept as UIDs in the selection, imap_session.h).
 * An IMAP4rev2 session always gets ESEARCH; an IMAP4rev1 one "* SEARCH"
 * unless it asked with RETURN.
 *
 * The program is parsed here into a SearchKey tree and run by the backend
 * as one SQL query (backend/op_search.c). This session owns the sequence
 * map, so sequence sets become UID ranges here: a range of sequence numbers
 * lo:hi is the UID range uids[lo]:uids[hi], which holds no message the
 * session does not know except ones that are expunged already. Answers hold
 * only messages in the map, by sequence number (SEARCH) or UID (UID SEARCH).
 *
 * Semantics the RFCs leave open:
 *  - a sequence number beyond the mailbox matches nothing (no error);
 *  - \Recent is not kept: RECENT and NEW match nothing, OLD everything;
 *    RFC 9051 drops the three keys; they stay accepted in IMAP4rev2 too,
 *    as their answers are right and a BAD would only break a client;
 *  - CHARSET may be UTF-8 or US-ASCII; strings must be valid UTF-8 (7-bit
 *    with US-ASCII); without CHARSET UTF-8 is taken;
 *  - string matching is case-insensitive on decoded text (see op_search.c);
 *  - MODSEQ (RFC 7162) compares the message's modseq; per-flag entries are
 *    accepted and ignored, as per-flag modseqs are not kept;
 *  - EMAILID / THREADID (RFC 8474) take an objectid, 1-255 of
 *    [A-Za-z0-9_-] (else BAD); SAVEDBEFORE / SAVEDON / SAVEDSINCE /
 *    SAVEDATESUPPORTED (RFC 8514) as the backend describes (op_search.c). */
#include "imap/imap_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The limits are settings: imap_max_search_keys counts every key, AND/OR/
 * NOT and parentheses included; imap_max_search_depth the nesting of
 * parentheses, NOT and OR. imap_max_depth does not bound the latter: NOT
 * NOT ... and OR OR ... nest without a parenthesis (an OR chain of n keys
 * nests n - 1 deep while parsed; it is sent flat). imap_max_set_ranges
 * counts the ranges of all the command's sets together, as the backend
 * does (op_search.c), so a client meets the frontend's NO [LIMIT];
 * imap_max_search_string bounds each string (header name or value). */

enum { RET_MIN = 1, RET_MAX = 2, RET_COUNT = 4, RET_ALL = 8, RET_SAVE = 16 };

struct search_state {
    unsigned ret;        /* RETURN options; 0: a plain SEARCH answer */
    bool esearch;        /* RETURN was given */
    bool modseq;         /* a MODSEQ key: answers carry the highest modseq */
    uint64_t highestmodseq;
    uint32_t *uids;      /* gathered from the responses */
    size_t n, cap;
};

struct sparse {
    struct imap_session *is;
    bool ascii;          /* CHARSET US-ASCII */
    bool modseq;         /* a MODSEQ key was seen */
    size_t keys;
    size_t ranges;       /* in all sets so far */
    const char *err;
    bool limit;          /* err is a server limit: NO [LIMIT], not BAD */
    char errbuf[120];
};

static void state_free(void *p)
{
    struct search_state *st = p;
    free(st->uids);
    free(st);
}

/* ---- the tree ---- */

static Petrel__SearchKey *new_key(Petrel__SearchKey__Kind kind)
{
    Petrel__SearchKey *k = malloc(sizeof *k);
    if (!k)
        abort();
    petrel__search_key__init(k);
    k->kind = kind;
    return k;
}

static void free_key(Petrel__SearchKey *k)
{
    if (k)
        petrel__search_key__free_unpacked(k, NULL);
}

static void add_child(Petrel__SearchKey *parent, Petrel__SearchKey *child)
{
    /* AND in AND and OR in OR flatten: no depth for long OR chains. */
    if (child->kind == parent->kind &&
        (child->kind == PETREL__SEARCH_KEY__KIND__SK_AND || child->kind == PETREL__SEARCH_KEY__KIND__SK_OR) &&
        child->n_keys > 0) {
        for (size_t i = 0; i < child->n_keys; i++)
            add_child(parent, child->keys[i]);
        free(child->keys);
        child->keys = NULL;
        child->n_keys = 0;
        free_key(child);
        return;
    }
    Petrel__SearchKey **v = realloc(parent->keys, (parent->n_keys + 1) * sizeof *v);
    if (!v)
        abort();
    v[parent->n_keys++] = child;
    parent->keys = v;
}

static char *dup_str(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (!c)
        abort();
    memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

/* ---- parsing ---- */

static Petrel__SearchKey *fail(struct sparse *ps, const char *fmt, const char *arg)
{
    if (!ps->err) {
        snprintf(ps->errbuf, sizeof ps->errbuf, fmt, arg ? arg : "");
        ps->err = ps->errbuf;
    }
    return NULL;
}

/* A valid request over a server limit (RFC 5530 LIMIT). */
static Petrel__SearchKey *over_limit(struct sparse *ps, const char *what, long max)
{
    if (!ps->err) {
        snprintf(ps->errbuf, sizeof ps->errbuf, "%s (at most %ld)", what, max);
        ps->err = ps->errbuf;
        ps->limit = true;
    }
    return NULL;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len;
        unsigned v, min;
        if (c < 0x80) {
            if (c == 0)
                return false;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, v = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, v = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, v = c & 0x07, min = 0x10000;
        else
            return false;
        if (i + len > n)
            return false;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            v = v << 6 | (s[i + j] & 0x3F);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* The next argument as a search string (astring), malloc'd. */
static char *take_string(struct sparse *ps, const struct imap_arg *args, size_t n, size_t *i,
                         const char *what)
{
    const char *d;
    size_t len;
    if (*i >= n || !imap_arg_astring(&args[*i], &d, &len)) {
        fail(ps, "%s expects a string", what);
        return NULL;
    }
    (*i)++;
    if (len > (size_t)frontend->cfg->imap_max_search_string) {
        over_limit(ps, "Search string too long", frontend->cfg->imap_max_search_string);
        return NULL;
    }
    if (ps->ascii) {
        for (size_t j = 0; j < len; j++)
            if ((unsigned char)d[j] >= 0x80 || d[j] == 0) {
                fail(ps, "8-bit or NUL in a string of %s with CHARSET US-ASCII", what);
                return NULL;
            }
    } else if (!valid_utf8((const unsigned char *)d, len)) {
        fail(ps, "String of %s is not valid UTF-8", what);
        return NULL;
    }
    return dup_str(d, len);
}

static bool take_atom(const struct imap_arg *args, size_t n, size_t *i, const char **d, size_t *len)
{
    if (*i >= n || args[*i].type != IMAP_ARG_ATOM)
        return false;
    *d = args[*i].data;
    *len = args[*i].len;
    (*i)++;
    return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int32_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* date = date-text / DQUOTE date-text DQUOTE; date-text = d[d]-Mon-yyyy. */
static int take_date(struct sparse *ps, const struct imap_arg *args, size_t n, size_t *i,
                     const char *what, int32_t *day)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *d;
    size_t len;
    if (*i >= n || (args[*i].type != IMAP_ARG_ATOM && args[*i].type != IMAP_ARG_QUOTED)) {
        fail(ps, "%s expects a date", what);
        return -1;
    }
    d = args[*i].data;
    len = args[*i].len;
    (*i)++;
    size_t p = 0;
    int dd = 0, mm = 0;
    while (p < len && p < 2 && d[p] >= '0' && d[p] <= '9')
        dd = dd * 10 + (d[p++] - '0');
    if (p == 0 || p >= len || d[p] != '-' || p + 4 > len)
        goto bad;
    p++;
    for (int k = 0; k < 12; k++)
        if (strncasecmp(d + p, months + 3 * k, 3) == 0)
            mm = k + 1;
    if (!mm)
        goto bad;
    p += 3;
    if (p + 5 != len || d[p] != '-')
        goto bad;
    p++;
    int yy = 0;
    for (int k = 0; k < 4; k++) {
        if (d[p + k] < '0' || d[p + k] > '9')
            goto bad;
        yy = yy * 10 + (d[p + k] - '0');
    }
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0;
    if (yy < 1 || dd < 1 || dd > mdays[mm - 1] || (mm == 2 && dd == 29 && !leap))
        goto bad;
    *day = days_from_civil(yy, mm, dd);
    return 0;
bad:
    fail(ps, "Invalid date for %s (expected e.g. 1-Feb-1994)", what);
    return -1;
}

static int take_number(struct sparse *ps, const struct imap_arg *args, size_t n, size_t *i,
                       const char *what, uint64_t *v)
{
    const char *d;
    size_t len;
    if (!take_atom(args, n, i, &d, &len) || len == 0 || len > 19)
        goto bad;
    *v = 0;
    for (size_t k = 0; k < len; k++) {
        if (d[k] < '0' || d[k] > '9')
            goto bad;
        *v = *v * 10 + (uint64_t)(d[k] - '0');
    }
    return 0;
bad:
    fail(ps, "%s expects a number", what);
    return -1;
}

/* A sequence set or UID set as a UID key. */
static Petrel__SearchKey *set_key(struct sparse *ps, const char *d, size_t len, bool uid)
{
    const struct imap_selected *sel = &ps->is->sel;
    struct imap_seqset set;
    const char *err;
    /* Both parse as UID sets: numbers beyond the end are kept, then clipped
     * (a sequence number beyond the mailbox matches nothing). */
    uint32_t max = uid ? (sel->count ? sel->uids[sel->count - 1] : 0) : sel->count;
    long max_ranges = frontend->cfg->imap_max_set_ranges;
    if (imap_seqset_parse(d, len, IMAP_SEQSET_UID, max, (size_t)max_ranges - ps->ranges, &set,
                          &err) < 0)
        return err == imap_seqset_too_many ? over_limit(ps, imap_seqset_too_many, max_ranges)
                                           : fail(ps, "Invalid sequence set: %s", err);
    ps->ranges += set.count;
    Petrel__SearchKey *k = new_key(PETREL__SEARCH_KEY__KIND__SK_UID);
    if (set.searchres) {   /* "$", as sequence set or UID set alike */
        imap_seqset_free(&set);
        k->uids = malloc(sizeof *k->uids);
        if (!k->uids)
            abort();
        imap_resolve_set(ps->is, "$", 1, true, k->uids, &err);
        return k;
    }
    Petrel__UidRanges *r = malloc(sizeof *r);
    if (!r)
        abort();
    petrel__uid_ranges__init(r);
    r->bounds = malloc((2 * set.count + 1) * sizeof *r->bounds);
    if (!r->bounds)
        abort();
    for (size_t j = 0; j < set.count; j++) {
        uint32_t lo = set.ranges[j].lo, hi = set.ranges[j].hi;
        if (!uid) {
            if (lo > sel->count)
                continue;
            if (hi > sel->count)
                hi = sel->count;
            lo = sel->uids[lo - 1];
            hi = sel->uids[hi - 1];
        }
        r->bounds[r->n_bounds++] = lo;
        r->bounds[r->n_bounds++] = hi;
    }
    k->uids = r;
    imap_seqset_free(&set);
    return k;
}

static Petrel__SearchKey *flag_key(uint32_t bit, bool set)
{
    Petrel__SearchKey *k =
        new_key(set ? PETREL__SEARCH_KEY__KIND__SK_FLAGS_SET : PETREL__SEARCH_KEY__KIND__SK_FLAGS_CLEAR);
    k->flags = bit;
    return k;
}

/* Matches nothing: an OR of no keys. */
static Petrel__SearchKey *none_key(void) { return new_key(PETREL__SEARCH_KEY__KIND__SK_OR); }

static Petrel__SearchKey *keyword_key(struct sparse *ps, const struct imap_arg *args, size_t n,
                                      size_t *i, bool set)
{
    static const struct { const char *name; uint32_t bit; } sys[] = {
        { "\\Seen", PETREL__FLAG__SEEN }, { "\\Answered", PETREL__FLAG__ANSWERED },
        { "\\Flagged", PETREL__FLAG__FLAGGED }, { "\\Deleted", PETREL__FLAG__DELETED },
        { "\\Draft", PETREL__FLAG__DRAFT },
    };
    const char *d;
    size_t len;
    if (!take_atom(args, n, i, &d, &len) || len == 0)
        return fail(ps, "%s expects a flag keyword", set ? "KEYWORD" : "UNKEYWORD");
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)d[k] <= ' ' || (unsigned char)d[k] > '~' || strchr("(){%*\"]", d[k]))
            return fail(ps, "Invalid keyword", NULL);
    if (d[0] == '\\') {
        for (size_t k = 0; k < sizeof sys / sizeof sys[0]; k++)
            if (strlen(sys[k].name) == len && strncasecmp(sys[k].name, d, len) == 0)
                return flag_key(sys[k].bit, set);
        /* \Recent and unknown system flags are never set. */
        return set ? none_key() : new_key(PETREL__SEARCH_KEY__KIND__SK_ALL);
    }
    Petrel__SearchKey *key =
        new_key(set ? PETREL__SEARCH_KEY__KIND__SK_KEYWORD : PETREL__SEARCH_KEY__KIND__SK_UNKEYWORD);
    key->name = dup_str(d, len);
    return key;
}

static Petrel__SearchKey *parse_key(struct sparse *ps, const struct imap_arg *args, size_t n,
                                    size_t *i, int depth);

/* EMAILID / THREADID objectid (RFC 8474 7: 1*255(ALPHA / DIGIT / "_" / "-")). */
static Petrel__SearchKey *objectid_key(struct sparse *ps, const struct imap_arg *args, size_t n,
                                       size_t *i, const char *what)
{
    const char *d;
    size_t len;
    if (*i >= n || !imap_arg_astring(&args[*i], &d, &len))
        return fail(ps, "%s expects an object id", what);
    (*i)++;
    bool ok = len >= 1 && len <= 255;
    for (size_t k = 0; ok && k < len; k++)
        ok = (d[k] >= 'A' && d[k] <= 'Z') || (d[k] >= 'a' && d[k] <= 'z') ||
             (d[k] >= '0' && d[k] <= '9') || d[k] == '_' || d[k] == '-';
    if (!ok)
        return fail(ps, "Invalid object id for %s", what);
    Petrel__SearchKey *key = new_key(what[0] == 'E' ? PETREL__SEARCH_KEY__KIND__SK_EMAILID
                                                    : PETREL__SEARCH_KEY__KIND__SK_THREADID);
    key->value = dup_str(d, len);
    return key;
}

/* Keys until the end of args, ANDed. */
static Petrel__SearchKey *parse_all(struct sparse *ps, const struct imap_arg *args, size_t n,
                                    size_t *i, int depth)
{
    Petrel__SearchKey *and = new_key(PETREL__SEARCH_KEY__KIND__SK_AND);
    while (*i < n) {
        Petrel__SearchKey *k = parse_key(ps, args, n, i, depth);
        if (!k) {
            free_key(and);
            return NULL;
        }
        add_child(and, k);
    }
    if (and->n_keys == 1) {   /* no AND of one */
        Petrel__SearchKey *only = and->keys[0];
        free(and->keys);
        and->keys = NULL;
        and->n_keys = 0;
        free_key(and);
        return only;
    }
    return and;
}

static Petrel__SearchKey *parse_key(struct sparse *ps, const struct imap_arg *args, size_t n,
                                    size_t *i, int depth)
{
    static const struct { const char *name; uint32_t bit; bool set; } flags[] = {
        { "ANSWERED", PETREL__FLAG__ANSWERED, true }, { "UNANSWERED", PETREL__FLAG__ANSWERED, false },
        { "DELETED", PETREL__FLAG__DELETED, true }, { "UNDELETED", PETREL__FLAG__DELETED, false },
        { "DRAFT", PETREL__FLAG__DRAFT, true }, { "UNDRAFT", PETREL__FLAG__DRAFT, false },
        { "FLAGGED", PETREL__FLAG__FLAGGED, true }, { "UNFLAGGED", PETREL__FLAG__FLAGGED, false },
        { "SEEN", PETREL__FLAG__SEEN, true }, { "UNSEEN", PETREL__FLAG__SEEN, false },
    };
    static const struct { const char *name; Petrel__SearchKey__Kind kind; } dates[] = {
        { "BEFORE", PETREL__SEARCH_KEY__KIND__SK_BEFORE }, { "ON", PETREL__SEARCH_KEY__KIND__SK_ON },
        { "SINCE", PETREL__SEARCH_KEY__KIND__SK_SINCE },
        { "SENTBEFORE", PETREL__SEARCH_KEY__KIND__SK_SENTBEFORE },
        { "SENTON", PETREL__SEARCH_KEY__KIND__SK_SENTON },
        { "SENTSINCE", PETREL__SEARCH_KEY__KIND__SK_SENTSINCE },
        { "SAVEDBEFORE", PETREL__SEARCH_KEY__KIND__SK_SAVEDBEFORE },
        { "SAVEDON", PETREL__SEARCH_KEY__KIND__SK_SAVEDON },
        { "SAVEDSINCE", PETREL__SEARCH_KEY__KIND__SK_SAVEDSINCE },
    };
    static const char *const fields[] = { "FROM", "TO", "CC", "BCC", "SUBJECT" };

    const struct frontend_settings *cfg = frontend->cfg;
    if (++ps->keys > (size_t)cfg->imap_max_search_keys)
        return over_limit(ps, "Too many search keys", cfg->imap_max_search_keys);
    if (depth > cfg->imap_max_search_depth)
        return over_limit(ps, "Search keys nested too deeply", cfg->imap_max_search_depth);
    const struct imap_arg *a = &args[*i];
    if (a->type == IMAP_ARG_LIST) {
        (*i)++;
        if (a->count == 0)
            return fail(ps, "Empty parenthesised search key", NULL);
        size_t j = 0;
        Petrel__SearchKey *k = parse_all(ps, a->list, a->count, &j, depth + 1);
        return k;
    }
    if (a->type != IMAP_ARG_ATOM)
        return fail(ps, "Expected a search key", NULL);
    const char *w = a->data;
    size_t wl = a->len;
    (*i)++;
    char name[24];
    if (wl && ((w[0] >= '0' && w[0] <= '9') || w[0] == '*' || w[0] == '$'))
        return set_key(ps, w, wl, false);
    if (wl >= sizeof name)
        return fail(ps, "Unknown search key", NULL);
    for (size_t k = 0; k < wl; k++)
        name[k] = (char)(w[k] >= 'a' && w[k] <= 'z' ? w[k] - 32 : w[k]);
    name[wl] = '\0';

    if (strcmp(name, "ALL") == 0 || strcmp(name, "OLD") == 0)
        return new_key(PETREL__SEARCH_KEY__KIND__SK_ALL);
    if (strcmp(name, "RECENT") == 0 || strcmp(name, "NEW") == 0)
        return none_key();
    if (strcmp(name, "SAVEDATESUPPORTED") == 0)
        return new_key(PETREL__SEARCH_KEY__KIND__SK_SAVEDATESUPPORTED);
    if (strcmp(name, "EMAILID") == 0 || strcmp(name, "THREADID") == 0)
        return objectid_key(ps, args, n, i, name);
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
        if (strcmp(name, flags[k].name) == 0)
            return flag_key(flags[k].bit, flags[k].set);
    if (strcmp(name, "KEYWORD") == 0 || strcmp(name, "UNKEYWORD") == 0)
        return keyword_key(ps, args, n, i, name[0] == 'K');
    for (size_t k = 0; k < sizeof dates / sizeof dates[0]; k++)
        if (strcmp(name, dates[k].name) == 0) {
            int32_t day;
            if (take_date(ps, args, n, i, dates[k].name, &day) < 0)
                return NULL;
            Petrel__SearchKey *key = new_key(dates[k].kind);
            key->day = day;
            return key;
        }
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
        if (strcmp(name, fields[k]) == 0) {
            char *v = take_string(ps, args, n, i, fields[k]);
            if (!v)
                return NULL;
            Petrel__SearchKey *key = new_key(PETREL__SEARCH_KEY__KIND__SK_HEADER);
            key->name = dup_str(fields[k], strlen(fields[k]));
            key->value = v;
            return key;
        }
    if (strcmp(name, "HEADER") == 0) {
        char *f = take_string(ps, args, n, i, "HEADER");
        if (!f)
            return NULL;
        bool ok = *f != '\0';
        for (const char *c = f; *c; c++)
            if ((unsigned char)*c <= ' ' || (unsigned char)*c > '~' || *c == ':')
                ok = false;
        if (!ok) {
            free(f);
            return fail(ps, "Invalid header field name", NULL);
        }
        char *v = take_string(ps, args, n, i, "HEADER");
        if (!v) {
            free(f);
            return NULL;
        }
        Petrel__SearchKey *key = new_key(PETREL__SEARCH_KEY__KIND__SK_HEADER);
        key->name = f;
        key->value = v;
        return key;
    }
    if (strcmp(name, "BODY") == 0 || strcmp(name, "TEXT") == 0) {
        char *v = take_string(ps, args, n, i, name);
        if (!v)
            return NULL;
        Petrel__SearchKey *key = new_key(name[0] == 'B' ? PETREL__SEARCH_KEY__KIND__SK_BODY
                                                        : PETREL__SEARCH_KEY__KIND__SK_TEXT);
        key->value = v;
        return key;
    }
    if (strcmp(name, "LARGER") == 0 || strcmp(name, "SMALLER") == 0) {
        uint64_t v;
        if (take_number(ps, args, n, i, name, &v) < 0)
            return NULL;
        Petrel__SearchKey *key = new_key(name[0] == 'L' ? PETREL__SEARCH_KEY__KIND__SK_LARGER
                                                        : PETREL__SEARCH_KEY__KIND__SK_SMALLER);
        key->number = v;
        return key;
    }
    if (strcmp(name, "UID") == 0) {
        const char *d;
        size_t len;
        if (!take_atom(args, n, i, &d, &len))
            return fail(ps, "UID expects a UID set", NULL);
        return set_key(ps, d, len, true);
    }
    if (strcmp(name, "MODSEQ") == 0) {
        /* MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162
         * 3.1.5); per-flag modseqs are not kept, so the entry is ignored. */
        if (*i < n && args[*i].type == IMAP_ARG_QUOTED) {
            if (*i + 1 >= n || !(imap_arg_atom_is(&args[*i + 1], "priv") ||
                                 imap_arg_atom_is(&args[*i + 1], "shared") ||
                                 imap_arg_atom_is(&args[*i + 1], "all")))
                return fail(ps, "MODSEQ expects an entry type", NULL);
            *i += 2;
        }
        uint64_t v;
        if (take_number(ps, args, n, i, "MODSEQ", &v) < 0)
            return NULL;
        ps->modseq = true;
        Petrel__SearchKey *key = new_key(PETREL__SEARCH_KEY__KIND__SK_MODSEQ);
        key->number = v;
        return key;
    }
    if (strcmp(name, "NOT") == 0) {
        if (*i >= n)
            return fail(ps, "NOT expects a search key", NULL);
        Petrel__SearchKey *sub = parse_key(ps, args, n, i, depth + 1);
        if (!sub)
            return NULL;
        Petrel__SearchKey *key = new_key(PETREL__SEARCH_KEY__KIND__SK_NOT);
        add_child(key, sub);
        return key;
    }
    if (strcmp(name, "OR") == 0) {
        Petrel__SearchKey *key = new_key(PETREL__SEARCH_KEY__KIND__SK_OR);
        for (int k = 0; k < 2; k++) {
            if (*i >= n) {
                free_key(key);
                return fail(ps, "OR expects two search keys", NULL);
            }
            Petrel__SearchKey *sub = parse_key(ps, args, n, i, depth + 1);
            if (!sub) {
                free_key(key);
                return NULL;
            }
            add_child(key, sub);
        }
        return key;
    }
    return fail(ps, "Unknown search key %s", name);
}

/* RETURN (...) of ESEARCH. */
static int parse_return(struct sparse *ps, const struct imap_arg *a, unsigned *ret)
{
    static const struct { const char *name; unsigned bit; } opts[] = {
        { "MIN", RET_MIN }, { "MAX", RET_MAX }, { "COUNT", RET_COUNT }, { "ALL", RET_ALL },
        { "SAVE", RET_SAVE },
    };
    if (a->type != IMAP_ARG_LIST) {
        fail(ps, "RETURN expects a list of options", NULL);
        return -1;
    }
    *ret = 0;
    for (size_t i = 0; i < a->count; i++) {
        const struct imap_arg *o = &a->list[i];
        size_t k = 0;
        for (; k < sizeof opts / sizeof opts[0]; k++)
            if (imap_arg_atom_is(o, opts[k].name))
                break;
        if (k == sizeof opts / sizeof opts[0]) {
            fail(ps, "Unsupported RETURN option", NULL);
            return -1;
        }
        *ret |= opts[k].bit;
    }
    if (*ret == 0)
        *ret = RET_ALL;   /* RETURN () is RETURN (ALL) */
    return 0;
}

/* ---- answering ---- */

/* RFC 5182 2.1: a SEARCH that asked to SAVE and fails leaves "$" empty. */
static void forget_saved(struct imap_session *is, unsigned ret)
{
    if (ret & RET_SAVE)
        imap_sel_save_result(&is->sel, NULL, 0);
}

/* RFC 5182 2.4: with MIN and/or MAX but neither ALL nor COUNT, only those are
 * saved; otherwise the whole result. uids: the matching UIDs, ascending. */
static void save_result(struct imap_session *is, unsigned ret, const uint32_t *uids, size_t n)
{
    if (!(ret & (RET_MIN | RET_MAX)) || (ret & (RET_ALL | RET_COUNT)) || n == 0) {
        imap_sel_save_result(&is->sel, uids, n);
        return;
    }
    uint32_t ends[2];
    size_t k = 0;
    if (ret & RET_MIN)
        ends[k++] = uids[0];
    if ((ret & RET_MAX) && !(k && uids[n - 1] == ends[0]))
        ends[k++] = uids[n - 1];
    imap_sel_save_result(&is->sel, ends, k);
}

static void write_set(struct buf *out, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        buf_printf(out, "%s%u", i ? "," : "", v[i]);
        if (j > i)
            buf_printf(out, ":%u", v[j]);
        i = j + 1;
    }
}

static void answer(struct imap_session *is, struct search_state *st)
{
    /* UIDs (ascending) to the numbers to report: the map's, in order. */
    size_t k = 0;
    for (size_t i = 0; i < st->n; i++)
        if (imap_seq_of_uid(&is->sel, st->uids[i]))
            st->uids[k++] = st->uids[i];
    st->n = k;
    if (st->ret & RET_SAVE)
        save_result(is, st->ret, st->uids, st->n);
    if (!is->uid_cmd)
        for (size_t i = 0; i < st->n; i++)
            st->uids[i] = imap_seq_of_uid(&is->sel, st->uids[i]);
    struct buf *out = imap_out(is);
    if (st->ret == RET_SAVE) {
        /* RFC 5182 2.1: SAVE alone asks for no ESEARCH response. */
    } else if (!st->esearch) {
        buf_puts(out, "* SEARCH");
        for (size_t i = 0; i < st->n; i++)
            buf_printf(out, " %u", st->uids[i]);
        if (st->modseq && st->n)
            buf_printf(out, " (MODSEQ %llu)", (unsigned long long)st->highestmodseq);
        buf_puts(out, "\r\n");
    } else {
        buf_printf(out, "* ESEARCH (TAG \"%s\")", is->tag);
        if (is->uid_cmd)
            buf_puts(out, " UID");
        if (st->n && (st->ret & RET_MIN))
            buf_printf(out, " MIN %u", st->uids[0]);
        if (st->n && (st->ret & RET_MAX))
            buf_printf(out, " MAX %u", st->uids[st->n - 1]);
        if (st->ret & RET_COUNT)
            buf_printf(out, " COUNT %zu", st->n);
        if (st->n && (st->ret & RET_ALL)) {
            buf_puts(out, " ALL ");
            write_set(out, st->uids, st->n);
        }
        if (st->modseq && st->n)
            buf_printf(out, " MODSEQ %llu", (unsigned long long)st->highestmodseq);
        buf_puts(out, "\r\n");
    }
    imap_flush(is);
    imap_done(is, "OK", "Search completed.");
}

static void search_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct search_state *st = is->cmd_state;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_SEARCH) {
        forget_saved(is, st->ret);
        imap_done_rpc(is, resp);
        return;
    }
    const Petrel__SearchResp *sr = resp->search;
    if (st->n + sr->n_uids > st->cap) {
        st->cap = (st->n + sr->n_uids) * 2;
        st->uids = realloc(st->uids, st->cap * sizeof *st->uids);
        if (!st->uids)
            abort();
    }
    if (sr->n_uids)
        memcpy(st->uids + st->n, sr->uids, sr->n_uids * sizeof *sr->uids);
    st->n += sr->n_uids;
    if (sr->highestmodseq > st->highestmodseq)
        st->highestmodseq = sr->highestmodseq;
    if (!resp->more)
        answer(is, st);
}

void cmd_search(struct imap_session *is, const struct imap_command *cmd)
{
    struct sparse ps = { .is = is };
    const struct imap_arg *args = cmd->args;
    size_t n = cmd->arg_count, i = 0;
    unsigned ret = 0;
    bool esearch = false;
    if (i < n && imap_arg_atom_is(&args[i], "RETURN")) {
        if (i + 1 >= n || parse_return(&ps, &args[i + 1], &ret) < 0) {
            forget_saved(is, ret);
            imap_done(is, "BAD", "Error in IMAP command SEARCH: %s.", ps.err ? ps.err : "RETURN expects options");
            return;
        }
        esearch = true;
        i += 2;
    }
    if (i < n && imap_arg_atom_is(&args[i], "CHARSET") && is->utf8_accept) {
        /* RFC 6855 3: after ENABLE UTF8=ACCEPT strings are UTF-8, the
         * client MUST NOT name a charset, and the server SHOULD answer BAD
         * (conflicting charset labels). */
        imap_done(is, "BAD", "Error in IMAP command SEARCH: CHARSET is not allowed after UTF8=ACCEPT.");
        return;
    }
    if (i < n && imap_arg_atom_is(&args[i], "CHARSET")) {
        const char *cs;
        size_t cl;
        if (i + 1 >= n || !imap_arg_astring(&args[i + 1], &cs, &cl)) {
            forget_saved(is, ret);
            imap_done(is, "BAD", "Error in IMAP command SEARCH: CHARSET expects a name.");
            return;
        }
        if (cl == 8 && strncasecmp(cs, "US-ASCII", 8) == 0)
            ps.ascii = true;
        else if (!(cl == 5 && strncasecmp(cs, "UTF-8", 5) == 0)) {
            forget_saved(is, ret);
            imap_done(is, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.");
            return;
        }
        i += 2;
    }
    if (i >= n) {
        forget_saved(is, ret);
        imap_done(is, "BAD", "Error in IMAP command SEARCH: Missing search criteria.");
        return;
    }
    Petrel__SearchKey *program = parse_all(&ps, args, n, &i, 0);
    if (!program) {
        forget_saved(is, ret);
        if (ps.limit)
            imap_done(is, "NO", "[LIMIT] %s.", ps.err);
        else
            imap_done(is, "BAD", "Error in IMAP command SEARCH: %s.", ps.err ? ps.err : "Invalid search");
        return;
    }
    struct search_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    /* IMAP4rev2 answers every SEARCH with ESEARCH, ALL when no RETURN
     * came (RFC 9051 6.4.4); the SEARCH response is IMAP4rev1's. */
    if (is->imap4rev2 && !esearch) {
        esearch = true;
        ret = RET_ALL;
    }
    st->ret = ret;
    st->esearch = esearch;
    st->modseq = ps.modseq;
    is->cmd_state = st;
    is->cmd_free = state_free;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__SearchReq sr = PETREL__SEARCH_REQ__INIT;
    sr.mailbox_id = is->sel.mailbox_id;
    sr.program = program;
    req.op_case = PETREL__REQUEST__OP_SEARCH;
    req.search = &sr;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, search_done, is, &is->s.calls);
    free_key(program);
}
