/* The backend's metrics (table in metrics_table.c; see common/metrics.h). */
#ifndef PETREL_BACKEND_METRICS_H
#define PETREL_BACKEND_METRICS_H

#include "metrics.h"

enum backend_metric {
    BM_REQUESTS,              /* counter {op, status} */
    BM_REQUEST_DURATION,      /* histogram {op} */
    BM_REQUESTS_INFLIGHT,     /* gauge */
    BM_LINKS,                 /* gauge: frontend links open */
    BM_DB_QUERY_DURATION,     /* histogram */
    BM_DB_QUERY_ERRORS,       /* counter {kind} */
    BM_DB_CONNECTIONS,        /* gauge {state} */
    BM_DRAINING,              /* gauge: workers draining */
    /* Redis and notification metrics go here. */
    BM_COUNT
};

enum { DBE_ERROR, DBE_TEMPFAIL };     /* query error kind */
enum { DBC_UP, DBC_BUSY };            /* pool connection state */

extern const struct metric_def backend_metrics[BM_COUNT];

/* Label index of an op name (rpc_ops[]) and of a final status: a
 * Petrel__Status, or BM_STATUS_CANCELLED for a request ended without reply. */
#define BM_STATUS_CANCELLED (-1)
int bm_op(const char *name);
int bm_status(int status);

#endif
