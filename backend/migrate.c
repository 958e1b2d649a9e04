/* Applies the embedded schema migrations with synchronous libpq: it runs
 * once at start-up, before any event loop exists. */
#include "migrate.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_lock key shared by every Petrel process ("petrmigr"). */
#define MIGRATE_LOCK_KEY "8098541385563547506"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* libpq messages end in newlines and may span lines: keep one line. */
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    size_t n = strlen(err);
    while (n > 0 && err[n - 1] == ' ')
        err[--n] = '\0';
}

/* Runs sql, expecting no rows. On failure fills err with what/why. */
static int exec_ok(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        set_err(err, errlen, "%s: %s", what,
                res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

int migrate_latest_version(void)
{
    int v = 0;
    for (int i = 0; i < migrations_count; i++)
        if (migrations[i].version > v)
            v = migrations[i].version;
    return v;
}

int migrate_current_version(PGconn *conn)
{
    /* An empty database has no table yet: that is version 0, not an error.
     * Two statements, since a query naming a missing table fails to parse. */
    PGresult *res = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        v = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? -2 : 0;
    PQclear(res);
    if (v != -2)
        return v;
    res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        v = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* The embedded table comes from sorted file names; a duplicate or
 * out-of-order version means two files claim the same number. */
static int check_order(char *err, size_t errlen)
{
    for (int i = 1; i < migrations_count; i++)
        if (migrations[i].version <= migrations[i - 1].version) {
            set_err(err, errlen, "migrations %s and %s have clashing versions",
                    migrations[i - 1].name, migrations[i].name);
            return -1;
        }
    return 0;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
    char what[256];
    snprintf(what, sizeof what, "migration %s", m->name);
    /* NOTICEs ("... does not exist, skipping") would reach the caller's
     * stderr through libpq's default notice processor as if they were
     * problems. */
    if (exec_ok(conn, "BEGIN; SET LOCAL client_min_messages = warning", what, err, errlen) < 0) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    char ver[16];
    snprintf(ver, sizeof ver, "%d", m->version);
    const char *params[2] = { ver, m->name };
    if (exec_ok(conn, m->sql, what, err, errlen) < 0)
        goto rollback;
    PGresult *res = PQexecParams(conn,
        "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_err(err, errlen, "%s: recording it: %s", what, PQresultErrorMessage(res));
        PQclear(res);
        goto rollback;
    }
    PQclear(res);
    if (exec_ok(conn, "COMMIT", what, err, errlen) < 0)
        goto rollback;
    return 0;
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
    return -1;
}

static int apply_missing(PGconn *conn, char *err, size_t errlen)
{
    /* Only while nothing is applied, so that starting against an up-to-date
     * database draws no "already exists, skipping" NOTICE. */
    int current = migrate_current_version(conn);
    if (current == 0 && exec_ok(conn,
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())",
            "creating schema_migrations", err, errlen) < 0)
        return -1;
    if (current < 0) {
        set_err(err, errlen, "reading schema_migrations: %s", PQerrorMessage(conn));
        return -1;
    }
    int applied = 0;
    for (int i = 0; i < migrations_count; i++) {
        if (migrations[i].version <= current)
            continue;
        if (apply_one(conn, &migrations[i], err, errlen) < 0)
            return -1;
        applied++;
    }
    return applied;
}

/* What a migration RAISEs as a WARNING (NOTICEs are off: apply_one) is for
 * the operator, e.g. a mailbox name 017 could not normalise: it goes to
 * the log, one line each, whoever runs the migration. */
static void migration_warning(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
        n--;
    log_warn("\"schema migration\" message=\"%.*s\"", (int)n, message);
}

/* migrate_apply under the advisory lock. */
static int apply_locked(PGconn *conn, char *err, size_t errlen)
{
    /* Session-level lock: held across the per-migration transactions, so a
     * second process waits and then finds nothing left to do. */
    if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                "taking the migration lock", err, errlen) < 0)
        return -1;
    int applied = apply_missing(conn, err, errlen);
    char unlock_err[256];
    if (exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")",
                "releasing the migration lock", unlock_err, sizeof unlock_err) < 0
        && applied >= 0) {
        set_err(err, errlen, "%s", unlock_err);
        return -1;
    }
    return applied;
}

int migrate_apply(PGconn *conn, char *err, size_t errlen)
{
    if (check_order(err, errlen) < 0)
        return -1;
    PQnoticeProcessor previous = PQsetNoticeProcessor(conn, migration_warning, NULL);
    int applied = apply_locked(conn, err, errlen);
    PQsetNoticeProcessor(conn, previous, NULL);
    return applied;
}
