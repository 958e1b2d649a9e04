#include "db.h"

#include "backend_metrics.h"
#include "log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern const struct db_statement db_statements[];
extern const int db_statements_count;

/* Parameters of one statement; the most, APPEND (020_append_fields_from_backend.sql), takes 26. */
#define MAX_PARAMS 32
#define RECONNECT_SECONDS 1.0

enum conn_state { C_DOWN, C_CONNECTING, C_PREPARING, C_IDLE, C_BUSY };

struct db_query {
    struct db_query *next;
    int stmt;                 /* index in db_statements, or -1 for sql */
    char *sql;                /* owned, for db_exec and db_query_sql */
    bool with_params;         /* db_query_sql: sql has $n parameters */
    int nparams;
    char *values[MAX_PARAMS]; /* point into blob */
    int lengths[MAX_PARAMS];
    int formats[MAX_PARAMS];
    char *blob;               /* owned copy of every parameter */
    db_cb *cb;
    void *ctx;
    double t0;                /* sent at (metrics); 0 while queued */
};

struct queue { struct db_query *head, *tail; };

struct db_conn {
    struct db_pool *pool;
    PGconn *pg;
    ev_io io;
    enum conn_state state;
    int prep_next;            /* next statement to prepare */
    struct db_query *cur;     /* in flight */
    PGresult *result;         /* first result of cur */
    struct db_pin *pin;       /* pinned by a transaction */
};

struct db_pin {
    struct db_conn *conn;     /* NULL once the connection failed */
    struct queue q;
    db_pin_cb *cb;            /* while waiting for a connection */
    void *ctx;
    struct db_pin *next;      /* in the pool's wait list */
};

struct db_pool {
    struct ev_loop *loop;
    char *url;
    int n;
    struct db_conn *conns;
    struct queue q;
    struct db_pin *pin_wait_head, *pin_wait_tail;
    ev_timer reconnect;
};

static void conn_start(struct db_conn *c);
static void dispatch(struct db_pool *p);

static void q_push(struct queue *q, struct db_query *x)
{
    x->next = NULL;
    if (q->tail)
        q->tail->next = x;
    else
        q->head = x;
    q->tail = x;
}

static struct db_query *q_pop(struct queue *q)
{
    struct db_query *x = q->head;
    if (x) {
        q->head = x->next;
        if (!q->head)
            q->tail = NULL;
    }
    return x;
}

static void query_free(struct db_query *x)
{
    free(x->blob);
    free(x->sql);
    free(x);
}

static void finish(struct db_query *x, enum db_status st, PGresult *res, const char *state,
                   const char *msg)
{
    struct db_result r = { st, res, state ? state : "", msg ? msg : "" };
    if (x->t0 > 0)
        metrics_observe(BM_DB_QUERY_DURATION, NULL, metrics_now() - x->t0);
    if (st != DB_OK)
        metrics_inc(BM_DB_QUERY_ERRORS, (int[]){ st == DB_TEMPFAIL ? DBE_TEMPFAIL : DBE_ERROR });
    x->cb(&r, x->ctx);
    query_free(x);
}

/* Detaches the queue before calling back, since a callback may free the
 * queue's owner (a pin) or add to it. */
static void fail_queue(struct queue *q, const char *why)
{
    struct queue mine = *q;
    *q = (struct queue){0};
    struct db_query *x;
    while ((x = q_pop(&mine)))
        finish(x, DB_TEMPFAIL, NULL, NULL, why);
}

static bool any_alive(const struct db_pool *p)
{
    for (int i = 0; i < p->n; i++)
        if (p->conns[i].state != C_DOWN)
            return true;
    return false;
}

static void fail_pin_waiters(struct db_pool *p, const char *why)
{
    struct db_pin *w;
    while ((w = p->pin_wait_head)) {
        p->pin_wait_head = w->next;
        w->cb(NULL, why, w->ctx);
        free(w);
    }
    p->pin_wait_tail = NULL;
}

static void conn_fail(struct db_conn *c, const char *why)
{
    struct db_pool *p = c->pool;
    char msg[256];
    snprintf(msg, sizeof msg, "database unavailable: %s", why);
    for (char *s = msg; *s; s++)   /* libpq messages end in a newline */
        if (*s == '\n')
            *s = ' ';
    if (c->state != C_DOWN)
        log_warn("\"postgres connection lost\" error=\"%s\"", msg);
    if (c->state == C_IDLE || c->state == C_BUSY)
        metrics_add(BM_DB_CONNECTIONS, (int[]){ DBC_UP }, -1);
    if (c->state == C_BUSY)
        metrics_add(BM_DB_CONNECTIONS, (int[]){ DBC_BUSY }, -1);
    ev_io_stop(p->loop, &c->io);
    if (c->result)
        PQclear(c->result);
    c->result = NULL;
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->state = C_DOWN;
    /* The pin learns first that its connection is gone, so callbacks that
     * queue more on it fail at once instead of waiting forever. */
    struct queue pinned = {0};
    if (c->pin) {
        c->pin->conn = NULL;
        pinned = c->pin->q;
        c->pin->q = (struct queue){0};
        c->pin = NULL;
    }
    if (c->cur) {
        struct db_query *x = c->cur;
        c->cur = NULL;
        finish(x, DB_TEMPFAIL, NULL, NULL, msg);
    }
    fail_queue(&pinned, msg);
    if (!any_alive(p)) {
        fail_queue(&p->q, msg);
        fail_pin_waiters(p, msg);
    }
}

static void watch(struct db_conn *c, int events)
{
    struct ev_loop *loop = c->pool->loop;
    int fd = PQsocket(c->pg);
    if (ev_is_active(&c->io) && c->io.fd == fd && (c->io.events & (EV_READ | EV_WRITE)) == events)
        return;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, fd, events);
    ev_io_start(loop, &c->io);
}

static void prepare_next(struct db_conn *c)
{
    if (c->prep_next == db_statements_count) {
        c->state = C_IDLE;
        metrics_add(BM_DB_CONNECTIONS, (int[]){ DBC_UP }, 1);
        watch(c, EV_READ);
        dispatch(c->pool);
        return;
    }
    const struct db_statement *s = &db_statements[c->prep_next];
    if (!PQsendPrepare(c->pg, s->name, s->sql, s->nparams, NULL))
        conn_fail(c, PQerrorMessage(c->pg));
    else
        watch(c, EV_READ);
}

static void send_query(struct db_conn *c, struct db_query *x)
{
    c->cur = x;
    c->state = C_BUSY;
    x->t0 = metrics_now();
    metrics_add(BM_DB_CONNECTIONS, (int[]){ DBC_BUSY }, 1);
    int ok;
    if (x->stmt < 0 && x->with_params)
        ok = PQsendQueryParams(c->pg, x->sql, x->nparams, NULL, (const char *const *)x->values,
                               x->lengths, x->formats, 0);
    else if (x->stmt < 0)
        ok = PQsendQuery(c->pg, x->sql);
    else
        ok = PQsendQueryPrepared(c->pg, db_statements[x->stmt].name, x->nparams,
                                 (const char *const *)x->values, x->lengths, x->formats,
                                 db_statements[x->stmt].binary_result);
    if (!ok) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    int f = PQflush(c->pg);
    if (f < 0)
        conn_fail(c, PQerrorMessage(c->pg));
    else
        watch(c, f ? EV_READ | EV_WRITE : EV_READ);
}

static void dispatch(struct db_pool *p)
{
    for (int i = 0; i < p->n; i++) {
        struct db_conn *c = &p->conns[i];
        if (c->state != C_IDLE)
            continue;
        if (c->pin) {
            struct db_query *x = q_pop(&c->pin->q);
            if (x)
                send_query(c, x);
            continue;
        }
        if (p->pin_wait_head) {
            struct db_pin *w = p->pin_wait_head;
            p->pin_wait_head = w->next;
            if (!p->pin_wait_head)
                p->pin_wait_tail = NULL;
            w->conn = c;
            c->pin = w;
            w->cb(w, NULL, w->ctx);
            continue;
        }
        struct db_query *x = q_pop(&p->q);
        if (x)
            send_query(c, x);
    }
}

static void query_done(struct db_conn *c)
{
    struct db_query *x = c->cur;
    PGresult *res = c->result;
    c->cur = NULL;
    c->result = NULL;
    c->state = C_IDLE;
    metrics_add(BM_DB_CONNECTIONS, (int[]){ DBC_BUSY }, -1);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        finish(x, DB_OK, res, NULL, NULL);
    else
        finish(x, DB_ERROR, NULL, res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "",
               res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "no result");
    if (res)
        PQclear(res);
    dispatch(c->pool);
}

/* Reads whatever results are complete; returns 1 when the current command
 * (query or prepare) has delivered all of its results. */
static int drain_results(struct db_conn *c)
{
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (!r)
            return 1;
        if (!c->result)
            c->result = r;
        else
            PQclear(r);
    }
    return 0;
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct db_conn *c = w->data;
    if (c->state == C_CONNECTING) {
        conn_start(c);
        return;
    }
    if (revents & EV_WRITE) {
        int f = PQflush(c->pg);
        if (f < 0) {
            conn_fail(c, PQerrorMessage(c->pg));
            return;
        }
        if (f == 0)
            watch(c, EV_READ);
    }
    if (!(revents & EV_READ))
        return;
    if (!PQconsumeInput(c->pg)) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->state == C_IDLE) {   /* a notice or the server closing on us */
        if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_fail(c, "server closed the connection");
        return;
    }
    if (!drain_results(c))
        return;
    if (c->state == C_PREPARING) {
        ExecStatusType st = c->result ? PQresultStatus(c->result) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK) {
            log_error("\"prepare failed\" statement=%s error=\"%s\"",
                      db_statements[c->prep_next].name,
                      c->result ? PQresultErrorMessage(c->result) : "none");
            conn_fail(c, "prepare failed");
            return;
        }
        PQclear(c->result);
        c->result = NULL;
        c->prep_next++;
        prepare_next(c);
    } else if (c->state == C_BUSY) {
        query_done(c);
    }
}

/* Starts or continues a non-blocking connect. */
static void conn_start(struct db_conn *c)
{
    if (!c->pg) {
        c->pg = PQconnectStart(c->pool->url);
        if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
            conn_fail(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
            return;
        }
        c->state = C_CONNECTING;
    }
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        watch(c, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        watch(c, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        PQsetnonblocking(c->pg, 1);
        c->state = C_PREPARING;
        c->prep_next = 0;
        prepare_next(c);
        break;
    default:
        conn_fail(c, PQerrorMessage(c->pg));
    }
}

static void reconnect_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct db_pool *p = t->data;
    for (int i = 0; i < p->n; i++)
        if (p->conns[i].state == C_DOWN)
            conn_start(&p->conns[i]);
}

struct db_pool *db_pool_new(struct ev_loop *loop, const char *url, int connections)
{
    struct db_pool *p = calloc(1, sizeof *p);
    p->loop = loop;
    p->url = strdup(url);
    p->n = connections < 1 ? 1 : connections;
    p->conns = calloc((size_t)p->n, sizeof *p->conns);
    for (int i = 0; i < p->n; i++) {
        p->conns[i].pool = p;
        ev_init(&p->conns[i].io, on_io);
        p->conns[i].io.data = &p->conns[i];
        conn_start(&p->conns[i]);
    }
    ev_timer_init(&p->reconnect, reconnect_cb, RECONNECT_SECONDS, RECONNECT_SECONDS);
    p->reconnect.data = p;
    ev_timer_start(loop, &p->reconnect);
    return p;
}

void db_pool_free(struct db_pool **pp)
{
    struct db_pool *p = *pp;
    if (!p)
        return;
    ev_timer_stop(p->loop, &p->reconnect);
    for (int i = 0; i < p->n; i++) {
        struct db_conn *c = &p->conns[i];
        c->state = C_DOWN;   /* no log line for a deliberate close */
        conn_fail(c, "shutting down");
    }
    fail_queue(&p->q, "shutting down");
    fail_pin_waiters(p, "shutting down");
    free(p->conns);
    free(p->url);
    free(p);
    *pp = NULL;
}

bool db_pool_ready(const struct db_pool *p)
{
    for (int i = 0; i < p->n; i++)
        if (p->conns[i].state == C_IDLE || p->conns[i].state == C_BUSY)
            return true;
    return false;
}

static struct db_query *make_query(int stmt, const struct db_param *params, int nparams,
                                   db_cb *cb, void *ctx)
{
    /* A caller passing more is a programming error: cutting the list would
     * run the statement with other arguments than meant. */
    if (nparams > MAX_PARAMS) {
        log_error("\"too many query parameters\" n=%d max=%d", nparams, MAX_PARAMS);
        abort();
    }
    struct db_query *x = calloc(1, sizeof *x);
    x->stmt = stmt;
    x->cb = cb;
    x->ctx = ctx;
    x->nparams = nparams;
    size_t total = 0;
    for (int i = 0; i < nparams; i++)
        if (params[i].value)
            total += (params[i].binary ? (size_t)params[i].len : strlen(params[i].value)) + 1;
    x->blob = malloc(total ? total : 1);
    char *p = x->blob;
    for (int i = 0; i < nparams; i++) {
        if (!params[i].value) {
            x->values[i] = NULL;
            continue;
        }
        size_t len = params[i].binary ? (size_t)params[i].len : strlen(params[i].value);
        memcpy(p, params[i].value, len);
        p[len] = '\0';
        x->values[i] = p;
        x->lengths[i] = (int)len;
        x->formats[i] = params[i].binary;
        p += len + 1;
    }
    return x;
}

void db_query(struct db_pool *p, int stmt, const struct db_param *params, int nparams, db_cb *cb,
              void *ctx)
{
    struct db_query *x = make_query(stmt, params, nparams, cb, ctx);
    if (!any_alive(p)) {
        finish(x, DB_TEMPFAIL, NULL, NULL, "database unavailable");
        return;
    }
    q_push(&p->q, x);
    dispatch(p);
}

static void ignore_result(const struct db_result *r, void *ctx) {}

void db_exec(struct db_pool *p, struct db_pin *pin, const char *sql, db_cb *cb, void *ctx)
{
    struct db_query *x = make_query(-1, NULL, 0, cb ? cb : ignore_result, ctx);
    x->sql = strdup(sql);
    if (pin) {
        if (!pin->conn) {
            finish(x, DB_TEMPFAIL, NULL, NULL, "database connection lost");
            return;
        }
        q_push(&pin->q, x);
    } else {
        q_push(&p->q, x);
    }
    dispatch(p);
}

void db_query_sql(struct db_pool *p, const char *sql, const struct db_param *params, int nparams,
                  db_cb *cb, void *ctx)
{
    struct db_query *x = make_query(-1, params, nparams, cb, ctx);
    x->sql = strdup(sql);
    x->with_params = true;
    if (!any_alive(p)) {
        finish(x, DB_TEMPFAIL, NULL, NULL, "database unavailable");
        return;
    }
    q_push(&p->q, x);
    dispatch(p);
}

void db_pin_acquire(struct db_pool *p, db_pin_cb *cb, void *ctx)
{
    if (!any_alive(p)) {
        cb(NULL, "database unavailable", ctx);
        return;
    }
    struct db_pin *w = calloc(1, sizeof *w);
    w->cb = cb;
    w->ctx = ctx;
    if (p->pin_wait_tail)
        p->pin_wait_tail->next = w;
    else
        p->pin_wait_head = w;
    p->pin_wait_tail = w;
    dispatch(p);
}

void db_pin_query(struct db_pin *pin, int stmt, const struct db_param *params, int nparams,
                  db_cb *cb, void *ctx)
{
    struct db_query *x = make_query(stmt, params, nparams, cb, ctx);
    if (!pin->conn) {
        finish(x, DB_TEMPFAIL, NULL, NULL, "database connection lost");
        return;
    }
    q_push(&pin->q, x);
    dispatch(pin->conn->pool);
}

void db_pin_release(struct db_pin *pin)
{
    struct db_conn *c = pin->conn;
    fail_queue(&pin->q, "transaction abandoned");
    free(pin);
    if (c) {
        c->pin = NULL;
        dispatch(c->pool);
    }
}

long long db_int(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

long long db_bin_int(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    const unsigned char *v = (const unsigned char *)PQgetvalue(res, row, col);
    int len = PQgetlength(res, row, col);
    unsigned long long x = 0;
    for (int i = 0; i < len; i++)
        x = x << 8 | v[i];
    if (len == 4)
        return (int32_t)(uint32_t)x;
    return (long long)x;
}
