/* Schema migrations: the SQL files in backend/migrations, embedded into the
 * binaries (build/gen/migrations.c), applied in version order. */
#ifndef PETREL_MIGRATE_H
#define PETREL_MIGRATE_H

#include <stddef.h>
#include <libpq-fe.h>

struct migration {
    int version;        /* NNN of backend/migrations/NNN_name.sql */
    const char *name;   /* "NNN_name" */
    const char *sql;    /* the file, run as one simple-query string */
};

extern const struct migration migrations[];
extern const int migrations_count;

/* Applies every embedded migration newer than the database's, each in its
 * own transaction, holding a session advisory lock so that many processes
 * starting at once apply each migration exactly once. The connection must
 * not be inside a transaction. Returns the number applied (0 when up to
 * date) or -1 with a one-line reason in err. */
int migrate_apply(PGconn *conn, char *err, size_t errlen);

/* Highest applied version: 0 for an empty database, -1 if it cannot be
 * read (connection down, no permission). */
int migrate_current_version(PGconn *conn);

/* Version the embedded migrations bring the database to. */
int migrate_latest_version(void);

#endif
