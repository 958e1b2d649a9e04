/* Metrics: counters, gauges and histograms shared by every worker of a
 * process, rendered in the Prometheus text format (0.0.4).
 *
 * Each binary defines its metrics in one table (frontend/metrics_table.c,
 * backend/metrics_table.c): a family has a name, a type, a help line, up to
 * METRICS_MAX_LABELS label dimensions, each a small fixed set of values, and
 * for a histogram its bucket bounds. A series is addressed by the family's
 * index in the table and one index per label dimension, so updating one is
 * an add on a precomputed slot: no allocation, no lookup, no lock.
 *
 * Storage is one shared memory segment (MAP_SHARED | MAP_ANONYMOUS) mapped by
 * metrics_init() in the supervisor before it forks, holding a fixed array of
 * 64-bit slots per worker. A worker writes only its own array
 * (metrics_worker_start picks it), so a slot has a single writer; /metrics,
 * answered by whichever worker the kernel hands the connection, sums every
 * worker's array. A restarted worker keeps its slot: counters stay monotonic
 * for the supervisor's lifetime; gauges are zeroed when the worker starts.
 *
 * Before metrics_init() (unit tests, petrel-admin) every update is a no-op.
 *
 * Adding a metric: a row in the binary's table and an enum entry in its
 * header; call metrics_add/set/observe where the event happens. */
#ifndef PETREL_METRICS_H
#define PETREL_METRICS_H

#include "buf.h"

#include <stdint.h>

#define METRICS_MAX_LABELS 3

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

enum {
    /* Leave out series that are zero (counters, gauges) or empty
     * (histograms): for families whose label product is mostly unused,
     * e.g. protocol x command, where a POP3 command never is IMAP's. */
    METRIC_SPARSE = 1 << 0,
};

struct metric_label {
    const char *name;
    const char *const *values;
    int count;
};

struct metric_def {
    const char *name;
    enum metric_type type;
    const char *help;
    struct metric_label labels[METRICS_MAX_LABELS];   /* unused: name NULL */
    const double *buckets;     /* histogram upper bounds, ascending; +Inf is implicit */
    int nbuckets;
    unsigned flags;
};

/* A label dimension from a static array of strings. */
#define METRIC_LABEL(n, arr) { (n), (arr), (int)(sizeof(arr) / sizeof((arr)[0])) }
#define METRIC_BUCKETS(arr) (arr), (int)(sizeof(arr) / sizeof((arr)[0]))

/* Maps the shared segment for `workers` workers; call once, before forking.
 * The table must outlive the process. 0, or -1 with errno. */
int metrics_init(const struct metric_def *table, int nfamilies, int workers);
/* In a worker: use slot `worker` and zero its gauges. */
void metrics_worker_start(int worker);

/* labels: one index per label dimension of the family (NULL without labels).
 * An index out of range drops the update. */
void metrics_add(int family, const int *labels, int64_t delta);
void metrics_set(int family, const int *labels, int64_t value);
void metrics_observe(int family, const int *labels, double value);
static inline void metrics_inc(int family, const int *labels) { metrics_add(family, labels, 1); }

/* The index of `value` in a label dimension; -1 when it is not in the set
 * (or, if the set ends with "other", that one). Meant for start-up or for
 * short sets; hot paths keep the index. */
int metrics_label_index(int family, int dim, const char *value);

/* Seconds on a monotonic clock, for durations. */
double metrics_now(void);

/* Appends every family, summed over all workers, in the text format. */
void metrics_render(struct buf *out);

#endif
