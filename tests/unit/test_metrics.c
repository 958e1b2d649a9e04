/* common/metrics.c: series addressing, summing over workers, the Prometheus
 * text format; common/log.c: the JSON log format. */
#include "check.h"
#include "log.h"
#include "metrics.h"

#include <stdlib.h>
#include <unistd.h>

enum { T_REQS, T_GAUGE, T_LAT, T_SPARSE, T_COUNT };

static const char *const ops[] = { "get", "put", "other" };
static const char *const results[] = { "ok", "fail" };
static const double buckets[] = { 0.1, 1 };

static const struct metric_def table[T_COUNT] = {
    [T_REQS] = { "t_requests_total", METRIC_COUNTER, "Requests.",
                 { METRIC_LABEL("op", ops), METRIC_LABEL("result", results) } },
    [T_GAUGE] = { "t_open", METRIC_GAUGE, "Open things." },
    [T_LAT] = { "t_latency_seconds", METRIC_HISTOGRAM, "Latency.", { METRIC_LABEL("op", ops) },
                METRIC_BUCKETS(buckets) },
    [T_SPARSE] = { "t_sparse_total", METRIC_COUNTER, "Sparse.", { METRIC_LABEL("op", ops) },
                   .flags = METRIC_SPARSE },
};

static char *render(void)
{
    struct buf b = { 0 };
    metrics_render(&b);
    buf_append(&b, "", 1);
    return b.data;
}

static void test_before_init_is_noop(void)
{
    metrics_inc(T_REQS, (int[]){ 0, 0 });   /* no segment yet: nothing happens */
    metrics_observe(T_LAT, (int[]){ 0 }, 1.0);
    CHECK(metrics_label_index(T_REQS, 0, "get") == -1);
}

static void test_sum_over_workers(void)
{
    CHECK(metrics_init(table, T_COUNT, 2) == 0);
    CHECK(metrics_label_index(T_REQS, 0, "put") == 1);
    CHECK(metrics_label_index(T_REQS, 0, "nope") == 2);   /* "other" */
    CHECK(metrics_label_index(T_REQS, 1, "nope") == -1);

    metrics_worker_start(0);
    metrics_inc(T_REQS, (int[]){ 1, 0 });
    metrics_add(T_REQS, (int[]){ 1, 0 }, 2);
    metrics_inc(T_REQS, (int[]){ 7, 0 });        /* out of range: dropped */
    metrics_add(T_GAUGE, NULL, 5);
    metrics_observe(T_LAT, (int[]){ 0 }, 0.05);
    metrics_observe(T_LAT, (int[]){ 0 }, 0.5);
    metrics_inc(T_SPARSE, (int[]){ 2 });

    metrics_worker_start(1);
    metrics_inc(T_REQS, (int[]){ 1, 0 });
    metrics_add(T_GAUGE, NULL, -2);
    metrics_observe(T_LAT, (int[]){ 0 }, 5);

    char *text = render();
    CHECK_MSG(strstr(text, "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n"), "%s", text);
    CHECK_MSG(strstr(text, "t_requests_total{op=\"put\",result=\"ok\"} 4\n"), "%s", text);
    CHECK_MSG(strstr(text, "t_requests_total{op=\"get\",result=\"fail\"} 0\n"), "%s", text);
    CHECK_MSG(strstr(text, "t_open 3\n"), "%s", text);
    CHECK_MSG(strstr(text, "t_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n"
                           "t_latency_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                           "t_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n"
                           "t_latency_seconds_sum{op=\"get\"} 5.55\n"
                           "t_latency_seconds_count{op=\"get\"} 3\n"), "%s", text);
    CHECK_MSG(strstr(text, "t_sparse_total{op=\"other\"} 1\n"), "%s", text);
    CHECK_MSG(!strstr(text, "t_sparse_total{op=\"get\"}"), "%s", text);
    free(text);

    /* A restarted worker keeps its counters and loses its gauges. */
    metrics_worker_start(1);
    text = render();
    CHECK_MSG(strstr(text, "t_open 5\n"), "%s", text);
    CHECK_MSG(strstr(text, "t_requests_total{op=\"put\",result=\"ok\"} 4\n"), "%s", text);
    free(text);
}

/* Runs one log_msg with the JSON format and returns the line written. */
static char *json_log(const char *msg)
{
    char path[] = "/tmp/petrel-test-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    log_msg(LOG_INFO, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    static char line[8192];
    ssize_t n = pread(fd, line, sizeof line - 1, 0);
    line[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return line;
}

static void test_json_log(void)
{
    log_init("unit", 3);
    log_set_format(LOG_FORMAT_JSON);
    char *l = json_log("\"session closed\" session=fe-0-1 n=42 neg=-7 reason=\"a \\\"quoted\\\" word\" "
                       "path=/x=y");
    CHECK_MSG(strncmp(l, "{\"ts\":\"", 7) == 0, "%s", l);
    CHECK_MSG(strstr(l, "\"level\":\"info\",\"proc\":\"unit\",\"worker\":3,\"pid\":"), "%s", l);
    CHECK_MSG(strstr(l, ",\"msg\":\"session closed\",\"session\":\"fe-0-1\",\"n\":42,\"neg\":-7,"
                        "\"reason\":\"a \\\"quoted\\\" word\",\"path\":\"/x=y\"}\n"), "%s", l);
    l = json_log("\"tab\tand\\\\back\" x=007");
    CHECK_MSG(strstr(l, "\"msg\":\"tab\\u0009and\\\\back\",\"x\":\"007\"}\n"), "%s", l);
    l = json_log("plain words here k=v");
    CHECK_MSG(strstr(l, "\"msg\":\"plain words here\",\"k\":\"v\"}\n"), "%s", l);
    /* A line too long is cut but stays one valid object, and says so. */
    static char big[6000];
    memset(big, 'a', sizeof big - 1);
    l = json_log(big);
    size_t n = strlen(l);
    CHECK_MSG(n < 8192 && strcmp(l + n - 20, "\",\"truncated\":true}\n") == 0, "%zu %s", n,
              l + (n > 40 ? n - 40 : 0));
    memset(big, '\x01', 4000);   /* escapes make it longer than the line */
    l = json_log(big);
    n = strlen(l);
    CHECK_MSG(n < 8192 && strcmp(l + n - 23, "...\",\"truncated\":true}\n") == 0, "%zu %s", n,
              l + (n > 40 ? n - 40 : 0));
    enum log_format f;
    CHECK(log_parse_format("JSON", &f) == 0 && f == LOG_FORMAT_JSON);
    CHECK(log_parse_format("logfmt", &f) == 0 && f == LOG_FORMAT_LOGFMT);
    CHECK(log_parse_format("xml", &f) < 0);
    log_set_format(LOG_FORMAT_LOGFMT);
}

int main(void)
{
    test_before_init_is_noop();
    test_sum_over_workers();
    test_json_log();
    return check_report();
}
