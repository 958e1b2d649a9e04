/* petrel-admin: account and schema administration, session inspection.
 *
 *   petrel-admin [--db URL] [--redis URL] migrate
 *   petrel-admin user add ADDRESS (--password PASS | --password-stdin)
 *   petrel-admin user del ADDRESS
 *   petrel-admin user passwd ADDRESS (--password PASS | --password-stdin)
 *   petrel-admin user list
 *   petrel-admin sessions list [ADDRESS]
 *   petrel-admin sessions kick ADDRESS
 *
 * URLs default to PETREL_PG_URL and PETREL_REDIS_URL. Exit status: 0 done,
 * 1 the operation failed (unknown account, duplicate, server unreachable),
 * 2 the command line or an argument is malformed. */
#include "admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: petrel-admin [--db URL] [--redis URL] migrate | user add|passwd ADDRESS "
    "(--password PASS | --password-stdin) | user del ADDRESS | user list | "
    "sessions list [ADDRESS] | sessions kick ADDRESS";

int fail(int code, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Server messages span lines and indent them; the contract is one line. */
    char *w = line;
    for (const char *r = line; *r; r++) {
        bool space = *r == '\n' || *r == '\r' || *r == '\t' || *r == ' ';
        if (!space)
            *w++ = *r;
        else if (w > line && w[-1] != ' ')
            *w++ = ' ';
    }
    while (w > line && w[-1] == ' ')
        w--;
    *w = '\0';
    fprintf(stderr, "petrel-admin: %s\n", line);
    return code;
}

struct command {
    const char *group;
    const char *name;   /* NULL: the group is the whole command */
    int min_args, max_args;
    bool takes_password;
    int (*run)(const struct admin_opts *);
};

static const struct command commands[] = {
    { "migrate", NULL, 0, 0, false, cmd_migrate },
    { "user", "add", 1, 1, true, cmd_user_add },
    { "user", "del", 1, 1, false, cmd_user_del },
    { "user", "passwd", 1, 1, true, cmd_user_passwd },
    { "user", "list", 0, 0, false, cmd_user_list },
    { "sessions", "list", 0, 1, false, cmd_sessions_list },
    { "sessions", "kick", 1, 1, false, cmd_sessions_kick },
};

/* Accepts "--opt VALUE" and "--opt=VALUE". Returns the value or NULL when
 * arg is not this option; *i advances past a separate value. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt, bool *missing)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Options may appear anywhere; everything else is a word of the command. */
static int parse(int argc, char **argv, struct admin_opts *o, const char **words, int *nwords)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--db", &missing)))
            o->db_url = v;
        else if ((v = opt_value(argc, argv, &i, "--redis", &missing)))
            o->redis_url = v;
        else if ((v = opt_value(argc, argv, &i, "--password", &missing)))
            o->password = v;
        else if (missing)
            return fail(EXIT_USAGE, "%s needs a value", argv[i]);
        else if (strcmp(argv[i], "--password-stdin") == 0)
            o->password_stdin = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            puts(usage);
            exit(EXIT_OK);
        } else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return fail(EXIT_USAGE, "unknown option %s; %s", argv[i], usage);
        else if (*nwords < 6)
            words[(*nwords)++] = argv[i];
        else
            return fail(EXIT_USAGE, "too many arguments; %s", usage);
    }
    return EXIT_OK;
}

static const struct command *find_command(const char **words, int nwords, int *skip)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *c = &commands[i];
        if (nwords < 1 || strcmp(words[0], c->group) != 0)
            continue;
        if (!c->name) {
            *skip = 1;
            return c;
        }
        if (nwords >= 2 && strcmp(words[1], c->name) == 0) {
            *skip = 2;
            return c;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct admin_opts o = { .db_url = getenv("PETREL_PG_URL"),
                            .redis_url = getenv("PETREL_REDIS_URL") };
    const char *words[6];
    int nwords = 0, skip = 0;
    int rc = parse(argc, argv, &o, words, &nwords);
    if (rc != EXIT_OK)
        return rc;
    const struct command *c = find_command(words, nwords, &skip);
    if (!c)
        return fail(EXIT_USAGE, "%s%s; %s", nwords ? "unknown command " : "no command given",
                    nwords ? words[0] : "", usage);
    o.nargs = nwords - skip;
    if (o.nargs < c->min_args || o.nargs > c->max_args)
        return fail(EXIT_USAGE, "wrong number of arguments for %s%s%s; %s", c->group,
                    c->name ? " " : "", c->name ? c->name : "", usage);
    if ((o.password || o.password_stdin) && !c->takes_password)
        return fail(EXIT_USAGE, "--password and --password-stdin apply only to user add and user passwd");
    for (int i = 0; i < o.nargs; i++)
        o.args[i] = words[skip + i];
    return c->run(&o);
}
