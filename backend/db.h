/* Asynchronous PostgreSQL for one backend worker: a small pool of libpq
 * connections driven by the worker's libev loop.
 *
 * Every statement is prepared on each connection when it connects (the table
 * in db_statements.c), and a query names one. Queries wait in one queue and go
 * to the first idle connection, so one slow query holds only its own
 * connection. A transaction that spans several queries pins one connection
 * (db_pin_*). When PostgreSQL is unreachable every waiting and new query fails
 * at once with DB_TEMPFAIL, and the pool reconnects in the background. */
#ifndef PETREL_DB_H
#define PETREL_DB_H

#include <ev.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

enum db_status { DB_OK, DB_ERROR, DB_TEMPFAIL };

struct db_result {
    enum db_status status;
    PGresult *res;           /* valid only during the callback; NULL unless DB_OK */
    const char *sqlstate;    /* for DB_ERROR, else "" */
    const char *message;     /* for DB_ERROR / DB_TEMPFAIL, else "" */
};

typedef void db_cb(const struct db_result *r, void *ctx);

/* Prepared statements are named by their index in db_statements[]. */
struct db_statement {
    const char *name;
    const char *sql;
    int nparams;
    bool binary_result;      /* results in binary format (bytea, packed uids) */
};

struct db_pool;
struct db_pin;

struct db_pool *db_pool_new(struct ev_loop *loop, const char *url, int connections);
void db_pool_free(struct db_pool **pool);
bool db_pool_ready(const struct db_pool *pool);

/* A query parameter: text, or binary when len >= 0 and binary is set. The
 * value is copied; the caller keeps ownership of what it passes. */
struct db_param {
    const char *value;       /* NULL for SQL NULL */
    int len;                 /* for binary params */
    bool binary;
};

/* Runs statement `stmt` (an index in db_statements) with params; cb is called
 * exactly once, from the loop. */
void db_query(struct db_pool *pool, int stmt, const struct db_param *params, int nparams,
              db_cb *cb, void *ctx);
/* A query that is not one of the prepared statements (built at run time, as
 * SEARCH's): its values go as $n params, never into the text. Results are
 * in text format. At most 24 params. */
void db_query_sql(struct db_pool *pool, const char *sql, const struct db_param *params,
                  int nparams, db_cb *cb, void *ctx);
/* A plain SQL command without parameters (BEGIN, COMMIT, ROLLBACK). */
void db_exec(struct db_pool *pool, struct db_pin *pin, const char *sql, db_cb *cb, void *ctx);

/* Reserves one connection for a transaction; cb gets it (or NULL on failure). */
typedef void db_pin_cb(struct db_pin *pin, const char *error, void *ctx);
void db_pin_acquire(struct db_pool *pool, db_pin_cb *cb, void *ctx);
void db_pin_query(struct db_pin *pin, int stmt, const struct db_param *params, int nparams,
                  db_cb *cb, void *ctx);
/* Returns the connection to the pool; a pin whose connection failed is freed. */
void db_pin_release(struct db_pin *pin);

/* Helpers for reading results. */
long long db_int(const PGresult *res, int row, int col);
/* For binary results: a big-endian integer column of 4 or 8 bytes. */
long long db_bin_int(const PGresult *res, int row, int col);

#endif
