/* Statistics of petrel-bench: every latency sample of every operation kept
 * (a run is bounded in time and count, so this stays small), sorted once at
 * the end for exact percentiles; and memory readings from /proc. */
#include "bench.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS 32
/* Samples kept per operation; beyond this, counts stay exact and the
 * percentiles come from the first MAX_SAMPLES. */
#define MAX_SAMPLES (8u << 20)

struct opstat {
    char name[32];
    float *ms;           /* latency samples, milliseconds */
    size_t n, cap;
    long ok, errors, timeouts;
    long in_window;      /* successes completed inside the window */
    uint64_t bytes, bytes_in_window;
    double max_ms;
};

static struct opstat ops[MAX_OPS];
static int nops;
static double win_start, win_end;
static double win_secs = 1;   /* set by stat_print */

int stat_op(const char *name)
{
    for (int i = 0; i < nops; i++)
        if (strcmp(ops[i].name, name) == 0)
            return i;
    if (nops == MAX_OPS) {
        fprintf(stderr, "petrel-bench: too many operation kinds\n");
        exit(1);
    }
    snprintf(ops[nops].name, sizeof ops[nops].name, "%s", name);
    return nops++;
}

void stat_window(double start, double end)
{
    win_start = start;
    win_end = end;
}

void stat_ok(int op, double seconds, uint64_t bytes)
{
    if (op < 0)
        return;
    struct opstat *o = &ops[op];
    double ms = seconds * 1000.0;
    o->ok++;
    o->bytes += bytes;
    if (now_s() <= win_end) {
        o->in_window++;
        o->bytes_in_window += bytes;
    }
    if (ms > o->max_ms)
        o->max_ms = ms;
    if (o->n == MAX_SAMPLES)
        return;
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 1024;
        o->ms = realloc(o->ms, o->cap * sizeof *o->ms);
        if (!o->ms) {
            fprintf(stderr, "petrel-bench: out of memory\n");
            exit(1);
        }
    }
    o->ms[o->n++] = (float)ms;
}

void stat_err(int op)
{
    if (op >= 0)
        ops[op].errors++;
}

void stat_timeout(int op)
{
    if (op >= 0)
        ops[op].timeouts++;
}

long stat_count(int op)
{
    return op >= 0 ? ops[op].ok : 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples. */
static double pct(const struct opstat *o, double p)
{
    if (o->n == 0)
        return 0;
    size_t k = (size_t)(p / 100.0 * (double)o->n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > o->n)
        k = o->n;
    return o->ms[k - 1];
}

/* Prints one human table and one RESULT line per operation. The window
 * ends at the deadline or when the last client finished, whichever came
 * first; throughput counts only what completed inside it. */
void stat_print(const char *workload)
{
    double end = now_s();
    if (end > win_end)
        end = win_end;
    double secs = end - win_start;
    if (secs < 1e-3)
        secs = 1e-3;
    win_secs = secs;
    if (!cfg.quiet) {
        printf("%-16s %8s %6s %6s %9s %9s %9s %9s %9s %9s\n", "operation", "ok", "errors",
               "tmo", "ops/s", "MB/s", "p50_ms", "p90_ms", "p99_ms", "max_ms");
    }
    for (int i = 0; i < nops; i++) {
        struct opstat *o = &ops[i];
        qsort(o->ms, o->n, sizeof *o->ms, cmp_float);
        if (o->ok + o->errors + o->timeouts == 0)
            continue;
        double rate = (double)o->in_window / secs;
        double mbps = (double)o->bytes_in_window / secs / 1e6;
        if (!cfg.quiet)
            printf("%-16s %8ld %6ld %6ld %9.1f %9.2f %9.2f %9.2f %9.2f %9.2f\n", o->name, o->ok,
                   o->errors, o->timeouts, rate, mbps, pct(o, 50), pct(o, 90), pct(o, 99),
                   o->max_ms);
    }
    for (int i = 0; i < nops; i++) {
        struct opstat *o = &ops[i];
        if (o->ok + o->errors + o->timeouts == 0)
            continue;
        printf("RESULT server=%s workload=%s op=%s ops=%ld errors=%ld timeouts=%ld "
               "seconds=%.2f ops_per_s=%.2f mb_per_s=%.3f p50_ms=%.3f p90_ms=%.3f "
               "p99_ms=%.3f max_ms=%.3f\n",
               cfg.label, workload, o->name, o->ok, o->errors, o->timeouts, secs,
               (double)o->in_window / secs, (double)o->bytes_in_window / secs / 1e6,
               pct(o, 50), pct(o, 90), pct(o, 99), o->max_ms);
    }
    fflush(stdout);
}

/* Figures of one operation, valid after stat_print. */
double stat_rate_of(int op)
{
    return op >= 0 ? (double)ops[op].in_window / win_secs : 0;
}

double stat_pct_of(int op, double p)
{
    return op >= 0 ? pct(&ops[op], p) : 0;
}

double stat_max_of(int op)
{
    return op >= 0 ? ops[op].max_ms : 0;
}

double stat_mbps_of(int op)
{
    return op >= 0 ? (double)ops[op].bytes_in_window / win_secs / 1e6 : 0;
}

/* ------------------------------------------------------------- memory */

struct proc { int pid, ppid; };

static long field_kib(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    size_t kl = strlen(key);
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) {
            v = strtol(line + kl, 0, 10);
            break;
        }
    fclose(f);
    return v;
}

int mem_read(const char *pids, struct mem *m)
{
    struct proc *all = 0;
    size_t n = 0, cap = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", atoi(e->d_name));
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = 0;
        char *rp = strrchr(buf, ')');
        int ppid;
        char st;
        if (!rp || sscanf(rp + 1, " %c %d", &st, &ppid) != 2)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 512;
            all = realloc(all, cap * sizeof *all);
        }
        all[n++] = (struct proc){ atoi(e->d_name), ppid };
    }
    closedir(d);

    /* Breadth-first from the given PIDs over the parent links. */
    int *queue = malloc((n + 64) * sizeof *queue);
    size_t qn = 0;
    char *copy = strdup(pids), *save = 0;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(0, ",", &save)) {
        int pid = atoi(t);
        bool found = false;
        for (size_t i = 0; i < n; i++)
            found |= all[i].pid == pid;
        if (!found || qn >= n + 64) {
            rc = -1;
            continue;
        }
        queue[qn++] = pid;
    }
    free(copy);
    for (size_t qi = 0; qi < qn; qi++)
        for (size_t i = 0; i < n; i++)
            if (all[i].ppid == queue[qi] && qn < n + 64) {
                bool seen = false;
                for (size_t k = 0; k < qn; k++)
                    seen |= queue[k] == all[i].pid;
                if (!seen)
                    queue[qn++] = all[i].pid;
            }
    long rss = 0, pss = 0, uss = 0;
    int count = 0;
    for (size_t qi = 0; qi < qn; qi++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/status", queue[qi]);
        long r = field_kib(path, "VmRSS:");
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", queue[qi]);
        long p = field_kib(path, "Pss:");
        long pc = field_kib(path, "Private_Clean:"), pd = field_kib(path, "Private_Dirty:");
        if (r < 0)
            continue;   /* a kernel thread or a process that just exited */
        rss += r;
        pss += p > 0 ? p : 0;
        uss += (pc > 0 ? pc : 0) + (pd > 0 ? pd : 0);
        count++;
    }
    free(queue);
    free(all);
    *m = (struct mem){ rss, pss, uss, count };
    return rc;
}
