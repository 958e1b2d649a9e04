/* One line per event on stderr, logfmt: ts=... level=... proc=... msg="..." k=v,
 * or with log_format json one JSON object per line:
 * {"ts":"...","level":"...","proc":"...","worker":0,"pid":1,"msg":"...","k":"v"}
 * (integers stay numbers). Callers always write the logfmt tail; the JSON
 * form is derived from it. The process role and worker number are set once
 * per process (log_init). */
#ifndef PETREL_LOG_H
#define PETREL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

void log_init(const char *role, int worker);
void log_set_level(enum log_level level);
int log_parse_level(const char *s, enum log_level *level_r);
void log_set_format(enum log_format format);
/* "logfmt" or "json"; 0 or -1. */
int log_parse_format(const char *s, enum log_format *format_r);
/* fmt produces the rest of the line after msg=: typically "\"text\" key=value". */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
