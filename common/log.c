#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_role = "petrel";
static int log_worker = -1;
static enum log_level log_min = LOG_INFO;
static enum log_format log_fmt = LOG_FORMAT_LOGFMT;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *role, int worker)
{
    log_role = role;
    log_worker = worker;
}

void log_set_level(enum log_level level) { log_min = level; }

int log_parse_level(const char *s, enum log_level *level_r)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0) {
            *level_r = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_set_format(enum log_format format) { log_fmt = format; }

int log_parse_format(const char *s, enum log_format *format_r)
{
    if (strcasecmp(s, "logfmt") == 0)
        *format_r = LOG_FORMAT_LOGFMT;
    else if (strcasecmp(s, "json") == 0)
        *format_r = LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

/* ---- JSON: the logfmt tail turned into fields ---- */

#define JSON_RESERVE 24  /* room always kept for ,"truncated":true}\n */

struct jw {
    char *p;
    size_t n, cap;
    bool full;           /* a value was cut: no further fields */
};

static void jw_raw(struct jw *w, const char *s, size_t len)
{
    if (w->full || w->n + len + JSON_RESERVE > w->cap) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->n, s, len);
    w->n += len;
}

/* A JSON string; cut with "..." when the line is full. */
static void jw_str(struct jw *w, const char *s, size_t len)
{
    if (w->full)
        return;
    w->p[w->n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t el = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            el = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            el = 2;
        } else if (c < 0x20 || c == 0x7f) {
            el = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[0] = (char)c;
            el = 1;
        }
        if (w->n + el + JSON_RESERVE + 4 > w->cap) {
            memcpy(w->p + w->n, "...", 3);
            w->n += 3;
            w->full = true;
            break;
        }
        memcpy(w->p + w->n, esc, el);
        w->n += el;
    }
    w->p[w->n++] = '"';
}

static bool is_integer(const char *s, size_t len)
{
    size_t i = len > 0 && s[0] == '-';
    if (i == len || len > 18 || (s[i] == '0' && len > i + 1))
        return false;
    for (; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Reads one logfmt value at *pp: "quoted" (backslash escapes; ends at a
 * quote followed by a space or the end) or bare (up to a space). The decoded
 * text goes to dec. Returns its length; *quoted_r tells which form. */
static size_t logfmt_value(const char **pp, char *dec, size_t cap, bool *quoted_r)
{
    const char *p = *pp;
    size_t n = 0;
    *quoted_r = *p == '"';
    if (*quoted_r) {
        p++;
        while (*p) {
            if (*p == '\\' && p[1]) {
                if (n < cap)
                    dec[n++] = p[1];
                p += 2;
                continue;
            }
            if (*p == '"' && (p[1] == ' ' || p[1] == '\0')) {
                p++;
                break;
            }
            if (n < cap)
                dec[n++] = *p;
            p++;
        }
    } else {
        while (*p && *p != ' ') {
            if (n < cap)
                dec[n++] = *p;
            p++;
        }
    }
    *pp = p;
    return n;
}

static size_t json_line(char *out, size_t cap, const char *ts, enum log_level level, const char *tail,
                        bool cut)
{
    struct jw w = { out, 0, cap, false };
    char dec[4096];
    bool quoted;
    jw_raw(&w, "{\"ts\":", 6);
    jw_str(&w, ts, strlen(ts));
    jw_raw(&w, ",\"level\":", 9);
    jw_str(&w, level_names[level], strlen(level_names[level]));
    jw_raw(&w, ",\"proc\":", 8);
    jw_str(&w, log_role, strlen(log_role));
    char num[48];
    if (log_worker >= 0) {
        int k = snprintf(num, sizeof num, ",\"worker\":%d", log_worker);
        jw_raw(&w, num, (size_t)k);
    }
    int k = snprintf(num, sizeof num, ",\"pid\":%d", (int)getpid());
    jw_raw(&w, num, (size_t)k);
    const char *p = tail;
    while (*p == ' ')
        p++;
    /* The message; bare words that follow it without '=' belong to it. */
    size_t mlen = logfmt_value(&p, dec, sizeof dec, &quoted);
    for (;;) {
        const char *q = p;
        while (*q == ' ')
            q++;
        const char *t = q;
        while (*t && *t != ' ' && *t != '=')
            t++;
        if (q == t || *t == '=')
            break;
        if (mlen < sizeof dec)
            dec[mlen++] = ' ';
        size_t wl = (size_t)(t - q);
        if (wl > sizeof dec - mlen)
            wl = sizeof dec - mlen;
        memcpy(dec + mlen, q, wl);
        mlen += wl;
        p = t;
    }
    jw_raw(&w, ",\"msg\":", 7);
    jw_str(&w, dec, mlen);
    while (*p && !w.full) {
        while (*p == ' ')
            p++;
        const char *key = p;
        while (*p && *p != ' ' && *p != '=')
            p++;
        size_t klen = (size_t)(p - key);
        if (klen == 0)
            break;
        size_t vlen = 0;
        quoted = true;
        if (*p == '=') {
            p++;
            vlen = logfmt_value(&p, dec, sizeof dec, &quoted);
        }
        jw_raw(&w, ",", 1);
        jw_str(&w, key, klen);
        jw_raw(&w, ":", 1);
        if (!quoted && is_integer(dec, vlen))
            jw_raw(&w, dec, vlen);
        else
            jw_str(&w, dec, vlen);
    }
    if (cut || w.full) {
        memcpy(out + w.n, ",\"truncated\":true", 17);
        w.n += 17;
    }
    memcpy(out + w.n, "}\n", 2);
    return w.n + 2;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    if (log_fmt == LOG_FORMAT_JSON) {
        char tail[4096], ts_text[96], json[8192];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(ts_text, sizeof ts_text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000);
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(tail, sizeof tail, fmt, ap);
        va_end(ap);
        size_t len = json_line(json, sizeof json, ts_text, level, tail, m >= (int)sizeof tail);
        ssize_t w = write(STDERR_FILENO, json, len);
        (void)w;
        return;
    }
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], log_role);
    if (log_worker >= 0)
        n += snprintf(line + n, sizeof line - (size_t)n, " worker=%d", log_worker);
    n += snprintf(line + n, sizeof line - (size_t)n, " pid=%d msg=", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    /* A line longer than the buffer is cut, and says so, rather than split. */
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) {
        len = sizeof line - 2;
        memcpy(line + len - 3, "...", 3);
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
