/* petrel-admin internals: each command is a function taking the parsed
 * options and returning the process exit status. Failures print exactly one
 * line on stderr (via die_msg) so scripts can show or log it whole. */
#ifndef PETREL_ADMIN_H
#define PETREL_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* RFC 5321 limit on a forward path's mailbox (address) length. */
#define ADDRESS_MAX 254

struct admin_opts {
    const char *db_url;
    const char *redis_url;
    const char *password;       /* --password */
    bool password_stdin;        /* --password-stdin */
    const char *args[4];        /* positional words after the command */
    int nargs;
};

/* Prints "petrel-admin: <message>" as one line on stderr and returns code. */
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Lower-cases and checks local@domain into out (ADDRESS_MAX + 1 bytes).
 * Returns 0, or -1 with the reason in why. */
int address_normalise(const char *in, char *out, const char **why);

/* Connects and checks the schema is current (unless for_migrate). Returns
 * NULL after printing the reason. */
PGconn *db_open(const struct admin_opts *o, bool for_migrate);

int cmd_migrate(const struct admin_opts *o);
int cmd_user_add(const struct admin_opts *o);
int cmd_user_del(const struct admin_opts *o);
int cmd_user_passwd(const struct admin_opts *o);
int cmd_user_list(const struct admin_opts *o);
int cmd_sessions_list(const struct admin_opts *o);
int cmd_sessions_kick(const struct admin_opts *o);

#endif
