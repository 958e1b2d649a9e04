#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define HIST_MAX_BUCKETS 64

struct layout {
    size_t offset;     /* first slot of the family in a worker's array */
    size_t nseries;    /* product of the label dimensions' sizes */
    size_t width;      /* slots per series: 1, or nbuckets + 2 for a histogram */
};

static const struct metric_def *table;
static int nfamilies;
static struct layout *layout;
static size_t nslots;          /* per worker */
static int nworkers;
static uint64_t *shm;          /* nworkers * nslots */
static uint64_t *mine;         /* this worker's array, NULL outside a worker */

/* A slot has one writer (its worker); readers in other processes load it
 * whole. Relaxed atomics say exactly that and compile to plain moves. */
static inline uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

static int ndims(const struct metric_def *d)
{
    int n = 0;
    while (n < METRICS_MAX_LABELS && d->labels[n].name)
        n++;
    return n;
}

int metrics_init(const struct metric_def *t, int n, int workers)
{
    if (shm || n <= 0 || workers <= 0) {
        errno = EINVAL;
        return -1;
    }
    struct layout *lay = calloc((size_t)n, sizeof *lay);
    if (!lay)
        return -1;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].type == METRIC_HISTOGRAM && (t[i].nbuckets < 0 || t[i].nbuckets > HIST_MAX_BUCKETS)) {
            free(lay);
            errno = EINVAL;
            return -1;
        }
        size_t series = 1;
        for (int k = 0; k < ndims(&t[i]); k++)
            series *= (size_t)(t[i].labels[k].count > 0 ? t[i].labels[k].count : 1);
        lay[i].offset = off;
        lay[i].nseries = series;
        lay[i].width = t[i].type == METRIC_HISTOGRAM ? (size_t)t[i].nbuckets + 2 : 1;
        off += series * lay[i].width;
    }
    size_t bytes = off * (size_t)workers * sizeof(uint64_t);
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        free(lay);
        return -1;
    }
    table = t;
    nfamilies = n;
    layout = lay;
    nslots = off;
    nworkers = workers;
    shm = p;   /* anonymous memory starts zeroed */
    return 0;
}

void metrics_worker_start(int worker)
{
    if (!shm || worker < 0 || worker >= nworkers)
        return;
    mine = shm + (size_t)worker * nslots;
    for (int f = 0; f < nfamilies; f++)
        if (table[f].type == METRIC_GAUGE)
            for (size_t s = 0; s < layout[f].nseries; s++)
                store(&mine[layout[f].offset + s], 0);
}

/* The first slot of a series in this worker's array, or NULL. */
static uint64_t *series_slot(int family, const int *labels)
{
    if (!mine || family < 0 || family >= nfamilies)
        return NULL;
    const struct metric_def *d = &table[family];
    size_t idx = 0;
    for (int k = 0; k < ndims(d); k++) {
        int l = labels ? labels[k] : 0;
        if (l < 0 || l >= d->labels[k].count)
            return NULL;
        idx = idx * (size_t)d->labels[k].count + (size_t)l;
    }
    return &mine[layout[family].offset + idx * layout[family].width];
}

void metrics_add(int family, const int *labels, int64_t delta)
{
    uint64_t *p = series_slot(family, labels);
    if (p)
        store(p, load(p) + (uint64_t)delta);
}

void metrics_set(int family, const int *labels, int64_t value)
{
    uint64_t *p = series_slot(family, labels);
    if (p)
        store(p, (uint64_t)value);
}

void metrics_observe(int family, const int *labels, double value)
{
    uint64_t *p = series_slot(family, labels);
    if (!p || table[family].type != METRIC_HISTOGRAM)
        return;
    const struct metric_def *d = &table[family];
    int b = 0;
    while (b < d->nbuckets && value > d->buckets[b])
        b++;
    if (b < d->nbuckets)
        store(&p[b], load(&p[b]) + 1);
    store(&p[d->nbuckets], load(&p[d->nbuckets]) + 1);
    uint64_t bits = load(&p[d->nbuckets + 1]);
    double sum;
    memcpy(&sum, &bits, sizeof sum);
    sum += value;
    memcpy(&bits, &sum, sizeof bits);
    store(&p[d->nbuckets + 1], bits);
}

int metrics_label_index(int family, int dim, const char *value)
{
    if (!table || family < 0 || family >= nfamilies || dim < 0 || dim >= METRICS_MAX_LABELS)
        return -1;
    const struct metric_label *l = &table[family].labels[dim];
    if (!l->name || !value)
        return -1;
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->values[i], value) == 0)
            return i;
    return l->count > 0 && strcmp(l->values[l->count - 1], "other") == 0 ? l->count - 1 : -1;
}

double metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- rendering ---- */

static uint64_t sum_u(size_t slot)
{
    uint64_t s = 0;
    for (int w = 0; w < nworkers; w++)
        s += load(&shm[(size_t)w * nslots + slot]);
    return s;
}

static double sum_d(size_t slot)
{
    double s = 0;
    for (int w = 0; w < nworkers; w++) {
        uint64_t bits = load(&shm[(size_t)w * nslots + slot]);
        double v;
        memcpy(&v, &bits, sizeof v);
        s += v;
    }
    return s;
}

/* Writes `{a="x",b="y"` for series idx (no closing brace), or nothing when
 * the family has no labels and extra is NULL. */
static void put_labels(struct buf *out, const struct metric_def *d, size_t idx, const char *extra)
{
    int n = ndims(d);
    int which[METRICS_MAX_LABELS];
    for (int k = n - 1; k >= 0; k--) {
        which[k] = (int)(idx % (size_t)d->labels[k].count);
        idx /= (size_t)d->labels[k].count;
    }
    if (n == 0 && !extra)
        return;
    buf_puts(out, "{");
    for (int k = 0; k < n; k++)
        buf_printf(out, "%s%s=\"%s\"", k ? "," : "", d->labels[k].name,
                   d->labels[k].values[which[k]]);
    if (extra)
        buf_printf(out, "%s%s", n ? "," : "", extra);
    buf_puts(out, "}");
}

static void put_double(struct buf *out, double v)
{
    char s[64];
    snprintf(s, sizeof s, "%.15g", v);
    buf_puts(out, s);
}

void metrics_render(struct buf *out)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    for (int f = 0; f < nfamilies; f++) {
        const struct metric_def *d = &table[f];
        const struct layout *l = &layout[f];
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
                   type_names[d->type]);
        for (size_t s = 0; s < l->nseries; s++) {
            size_t base = l->offset + s * l->width;
            if (d->type != METRIC_HISTOGRAM) {
                uint64_t v = sum_u(base);
                if (v == 0 && (d->flags & METRIC_SPARSE))
                    continue;
                buf_puts(out, d->name);
                put_labels(out, d, s, NULL);
                if (d->type == METRIC_GAUGE)
                    buf_printf(out, " %lld\n", (long long)(int64_t)v);
                else
                    buf_printf(out, " %llu\n", (unsigned long long)v);
                continue;
            }
            /* Buckets before the count: a worker adds to its bucket first,
             * so an observation racing this read can only make count larger,
             * never a bucket larger than +Inf. */
            uint64_t cums[HIST_MAX_BUCKETS], cum = 0;
            int nb = d->nbuckets < HIST_MAX_BUCKETS ? d->nbuckets : HIST_MAX_BUCKETS;
            for (int b = 0; b < nb; b++)
                cums[b] = cum += sum_u(base + (size_t)b);
            uint64_t count = sum_u(base + (size_t)d->nbuckets);
            if (count < cum)
                count = cum;
            if (count == 0 && (d->flags & METRIC_SPARSE))
                continue;
            for (int b = 0; b <= nb; b++) {
                char le[48];
                if (b < nb)
                    snprintf(le, sizeof le, "le=\"%g\"", d->buckets[b]);
                else
                    snprintf(le, sizeof le, "le=\"+Inf\"");
                buf_printf(out, "%s_bucket", d->name);
                put_labels(out, d, s, le);
                buf_printf(out, " %llu\n", (unsigned long long)(b < nb ? cums[b] : count));
            }
            buf_printf(out, "%s_sum", d->name);
            put_labels(out, d, s, NULL);
            buf_puts(out, " ");
            put_double(out, sum_d(base + (size_t)d->nbuckets + 1));
            buf_puts(out, "\n");
            buf_printf(out, "%s_count", d->name);
            put_labels(out, d, s, NULL);
            buf_printf(out, " %llu\n", (unsigned long long)count);
        }
    }
}
