#include "config.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct setting *find(struct setting *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

static int set_value(struct setting *s, const char *v, char *err, size_t errlen)
{
    if (s->type == SETTING_STR) {
        char **p = s->value;
        free(*p);
        *p = strdup(v);
        return 0;
    }
    errno = 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < s->min || x > s->max) {
        snprintf(err, errlen, "setting %s: \"%s\" is not a number from %ld to %ld", s->name, v,
                 s->min, s->max);
        return -1;
    }
    *(long *)s->value = x;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int load_file(struct setting *t, size_t n, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open config %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        struct setting *st = find(t, n, key);
        if (!st) {
            snprintf(err, errlen, "%s:%d: unknown setting \"%s\"", path, lineno, key);
            rc = -1;
            break;
        }
        rc = set_value(st, val, err, errlen);
    }
    fclose(f);
    return rc;
}

int config_load(struct setting *t, size_t n, const char *path, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (set_value(&t[i], t[i].default_value, err, errlen) < 0)
            return -1;
    if (path && load_file(t, n, path, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char env[128] = "PETREL_";
        size_t k = strlen(env);
        for (const char *p = t[i].name; *p && k < sizeof env - 1; p++)
            env[k++] = (char)toupper((unsigned char)*p);
        env[k] = '\0';
        const char *v = getenv(env);
        if (v && set_value(&t[i], v, err, errlen) < 0)
            return -1;
    }
    return 0;
}

void config_print_help(const struct setting *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%-28s default \"%s\"\n    %s\n", t[i].name, t[i].default_value, t[i].help);
}

const char *config_path_from_args(int argc, char **argv, int *want_help_r)
{
    const char *path = NULL;
    *want_help_r = 0;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            *want_help_r = 1;
        else {
            fprintf(stderr, "unknown argument %s (usage: %s [--config FILE] [--help])\n", argv[i],
                    argv[0]);
            *want_help_r = -1;
        }
    }
    return path;
}

int config_check_node(const char *name, const char *value, char *err, size_t errlen)
{
    size_t n = strlen(value);
    if (n == 0 || n > CONFIG_NODE_MAX || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                      "abcdefghijklmnopqrstuvwxyz"
                                                      "0123456789._-") != n) {
        snprintf(err, errlen, "%s must be 1 to %d characters of A-Z a-z 0-9 . _ -", name,
                 CONFIG_NODE_MAX);
        return -1;
    }
    return 0;
}

int config_start(const char *prog, struct setting *table, size_t n, int argc, char **argv,
                 char *const *node, char *const *log_level, char *const *log_format)
{
    int help;
    const char *path = config_path_from_args(argc, argv, &help);
    if (help) {
        if (help > 0) {
            printf("usage: %s [--config FILE]\nsettings (file key or PETREL_<KEY>):\n", prog);
            config_print_help(table, n);
        }
        return help > 0 ? 0 : 2;
    }
    char err[512];
    if (config_load(table, n, path, err, sizeof err) < 0 ||
        config_check_node("node", *node, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    enum log_level lvl;
    if (log_parse_level(*log_level, &lvl) < 0) {
        fprintf(stderr, "%s: log_level must be debug, info, warn or error\n", prog);
        return 2;
    }
    log_set_level(lvl);
    enum log_format lfmt;
    if (log_parse_format(*log_format, &lfmt) < 0) {
        fprintf(stderr, "%s: log_format must be logfmt or json\n", prog);
        return 2;
    }
    log_set_format(lfmt);
    return -1;
}
