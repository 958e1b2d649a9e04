/* The backend's metrics: one row per family (see common/metrics.h). */
#include "backend_metrics.h"

#include <string.h>

/* Ops as named in rpc_ops[] (ops.c). */
static const char *const ops[] = {
    "login", "list", "create", "select", "status", "meta", "body", "append", "store",
    "expunge", "copy", "rcpt", "deliver", "changes", "search", "mailbox_delete",
    "mailbox_rename", "subscribe", "list_ext", "other",
};
/* Petrel.Status in enum order, then requests that ended without a reply. */
static const char *const statuses[] = {
    "ok", "no", "tempfail", "bad", "toobig", "nonexistent", "alreadyexists", "cancelled", "other",
};
static const char *const error_kinds[] = { "error", "tempfail" };
static const char *const conn_states[] = { "up", "busy" };

static const double request_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25, 0.5, 1, 2.5, 5, 10 };
static const double query_buckets[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };

const struct metric_def backend_metrics[BM_COUNT] = {
    [BM_REQUESTS] = { "petrel_backend_requests_total", METRIC_COUNTER,
        "RPC requests finished, by operation and status.",
        { METRIC_LABEL("op", ops), METRIC_LABEL("status", statuses) }, .flags = METRIC_SPARSE },
    [BM_REQUEST_DURATION] = { "petrel_backend_request_duration_seconds", METRIC_HISTOGRAM,
        "Time from a request's arrival to its final reply.", { METRIC_LABEL("op", ops) },
        METRIC_BUCKETS(request_buckets), METRIC_SPARSE },
    [BM_REQUESTS_INFLIGHT] = { "petrel_backend_requests_inflight", METRIC_GAUGE,
        "RPC requests being worked on." },
    [BM_LINKS] = { "petrel_backend_frontend_links", METRIC_GAUGE,
        "Links from frontends open." },
    [BM_DB_QUERY_DURATION] = { "petrel_backend_db_query_duration_seconds", METRIC_HISTOGRAM,
        "PostgreSQL query time, from sending to the last result.", { { 0 } },
        METRIC_BUCKETS(query_buckets) },
    [BM_DB_QUERY_ERRORS] = { "petrel_backend_db_query_errors_total", METRIC_COUNTER,
        "PostgreSQL queries failed: error (the server refused) or tempfail (unreachable).",
        { METRIC_LABEL("kind", error_kinds) } },
    [BM_DB_CONNECTIONS] = { "petrel_backend_db_connections", METRIC_GAUGE,
        "PostgreSQL pool connections: up (connected, prepared), busy (running a query).",
        { METRIC_LABEL("state", conn_states) } },
    [BM_DRAINING] = { "petrel_backend_draining", METRIC_GAUGE,
        "Workers draining after SIGTERM." },
};

int bm_op(const char *name)
{
    int n = (int)(sizeof ops / sizeof ops[0]);
    for (int i = 0; name && i < n - 1; i++)
        if (strcmp(ops[i], name) == 0)
            return i;
    return n - 1;
}

int bm_status(int status)
{
    int n = (int)(sizeof statuses / sizeof statuses[0]);
    if (status == BM_STATUS_CANCELLED)
        return n - 2;
    return status >= 0 && status < n - 2 ? status : n - 1;
}
