/* Schema and account commands: everything that talks to PostgreSQL. */
#include "admin.h"
#include "migrate.h"
#include "password.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest password accepted; longer input is refused, never cut. */
#define PASSWORD_MAX 1024

/* NOTICEs (e.g. "relation already exists, skipping") would add stderr
 * lines that are not errors. */
static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *db_open(const struct admin_opts *o, bool for_migrate)
{
    if (!o->db_url || !*o->db_url) {
        fail(EXIT_FAIL, "no database given: set PETREL_PG_URL or pass --db URL");
        return NULL;
    }
    PGconn *conn = PQconnectdb(o->db_url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fail(EXIT_FAIL, "cannot connect to the database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notices, NULL);
    if (for_migrate)
        return conn;
    int have = migrate_current_version(conn), want = migrate_latest_version();
    if (have < want) {
        if (have < 0)
            fail(EXIT_FAIL, "cannot read the schema version: %s", PQerrorMessage(conn));
        else
            fail(EXIT_FAIL, "the database schema is at version %d, this tool needs %d: "
                 "run petrel-admin migrate", have, want);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

int cmd_migrate(const struct admin_opts *o)
{
    PGconn *conn = db_open(o, true);
    if (!conn)
        return EXIT_FAIL;
    char err[1024];
    int n = migrate_apply(conn, err, sizeof err);
    int version = migrate_current_version(conn);
    PQfinish(conn);
    if (n < 0)
        return fail(EXIT_FAIL, "%s", err);
    printf("schema at version %d (%d migration%s applied)\n", version, n, n == 1 ? "" : "s");
    return EXIT_OK;
}

/* One line from stdin without its line ending: what `echo pw |` sends. */
static int read_password_stdin(char *out, size_t outlen)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return fail(EXIT_USAGE, "--password-stdin: no password on standard input");
    }
    if (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    if (n > 0 && line[n - 1] == '\r')
        line[--n] = '\0';
    int rc = EXIT_OK;
    if (strlen(line) != (size_t)n)
        rc = fail(EXIT_USAGE, "--password-stdin: the password contains a NUL byte");
    else if ((size_t)n >= outlen)
        rc = fail(EXIT_USAGE, "the password is longer than %d bytes", PASSWORD_MAX);
    else
        memcpy(out, line, (size_t)n + 1);
    explicit_bzero(line, cap);
    free(line);
    return rc;
}

static int get_password_hash(const struct admin_opts *o, char *hash, size_t hashlen)
{
    char pw[PASSWORD_MAX + 1];
    if (o->password && o->password_stdin)
        return fail(EXIT_USAGE, "give either --password or --password-stdin, not both");
    if (!o->password && !o->password_stdin)
        return fail(EXIT_USAGE, "a password is needed: --password PASS or --password-stdin");
    if (o->password_stdin) {
        int rc = read_password_stdin(pw, sizeof pw);
        if (rc != EXIT_OK)
            return rc;
    } else if (strlen(o->password) > PASSWORD_MAX) {
        return fail(EXIT_USAGE, "the password is longer than %d bytes", PASSWORD_MAX);
    } else {
        strcpy(pw, o->password);
    }
    int rc = EXIT_OK;
    if (pw[0] == '\0')
        rc = fail(EXIT_USAGE, "the password is empty");
    else if (hash_password(pw, hash, hashlen) < 0)
        rc = fail(EXIT_FAIL, "cannot hash the password: %m");
    explicit_bzero(pw, sizeof pw);
    return rc;
}

static int get_address(const struct admin_opts *o, char *address)
{
    const char *why;
    if (address_normalise(o->args[0], address, &why) < 0)
        return fail(EXIT_USAGE, "invalid address \"%s\": %s", o->args[0], why);
    return EXIT_OK;
}

/* Runs a one-value function call. Returns the result (caller clears) or
 * NULL after reporting; SQLSTATE 23505 is reported as dup_message. */
static PGresult *call(PGconn *conn, const char *sql, int n, const char *const *params,
                      const char *dup_message)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (dup_message && state && strcmp(state, "23505") == 0)
        fail(EXIT_FAIL, "%s", dup_message);
    else
        fail(EXIT_FAIL, "database error: %s", primary ? primary : PQerrorMessage(conn));
    PQclear(res);
    return NULL;
}

/* Shared by add and passwd: validate, hash, run sql($1 address, $2 hash). */
static int set_password(const struct admin_opts *o, const char *sql, bool adding)
{
    char address[ADDRESS_MAX + 1], hash[PASSWORD_HASH_MAX], msg[ADDRESS_MAX + 64];
    int rc = get_address(o, address);
    if (rc == EXIT_OK)
        rc = get_password_hash(o, hash, sizeof hash);
    if (rc != EXIT_OK)
        return rc;
    PGconn *conn = db_open(o, false);
    if (!conn)
        return EXIT_FAIL;
    snprintf(msg, sizeof msg, "account %s already exists", address);
    const char *params[2] = { address, hash };
    PGresult *res = call(conn, sql, 2, params, msg);
    if (!res)
        rc = EXIT_FAIL;
    else if (!adding && PQgetisnull(res, 0, 0))
        rc = fail(EXIT_FAIL, "no such account: %s", address);
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int cmd_user_add(const struct admin_opts *o)
{
    return set_password(o, "SELECT petrel_account_create($1, $2)", true);
}

int cmd_user_passwd(const struct admin_opts *o)
{
    return set_password(o, "SELECT petrel_account_passwd($1, $2)", false);
}

int cmd_user_del(const struct admin_opts *o)
{
    char address[ADDRESS_MAX + 1];
    int rc = get_address(o, address);
    if (rc != EXIT_OK)
        return rc;
    PGconn *conn = db_open(o, false);
    if (!conn)
        return EXIT_FAIL;
    const char *params[1] = { address };
    PGresult *res = call(conn, "SELECT petrel_account_delete($1)", 1, params, NULL);
    if (!res)
        rc = EXIT_FAIL;
    else if (PQgetisnull(res, 0, 0))
        rc = fail(EXIT_FAIL, "no such account: %s", address);
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int cmd_user_list(const struct admin_opts *o)
{
    PGconn *conn = db_open(o, false);
    if (!conn)
        return EXIT_FAIL;
    PGresult *res = call(conn, "SELECT address FROM petrel_account_list()", 0, NULL, NULL);
    if (!res) {
        PQfinish(conn);
        return EXIT_FAIL;
    }
    for (int i = 0; i < PQntuples(res); i++)
        puts(PQgetvalue(res, i, 0));
    PQclear(res);
    PQfinish(conn);
    return fflush(stdout) == 0 ? EXIT_OK : fail(EXIT_FAIL, "writing the list: %m");
}
