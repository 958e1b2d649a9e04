/* A tiny HTTP/1.1 server for operations, on the worker's libev loop:
 *
 *   GET /metrics   every metric, summed over the workers (common/metrics.h),
 *                  Prometheus text format 0.0.4
 *   GET /healthz   200 "ok" while the worker's loop runs
 *   GET /readyz    200 "ready" when the ready callback says so, else 503
 *                  with the reason
 *
 * GET and HEAD only; one request per connection (Connection: close), whose
 * head must fit in HTTP_MAX_REQUEST bytes and arrive within HTTP_TIMEOUT
 * seconds. Every worker listens on the same address (SO_REUSEPORT); since
 * the metrics live in shared memory, any worker's answer covers them all. */
#ifndef PETREL_HTTP_H
#define PETREL_HTTP_H

#include <ev.h>
#include <stdbool.h>

#define HTTP_MAX_REQUEST 8192
#define HTTP_TIMEOUT 10.0
#define HTTP_LINGER 2.0            /* seconds to wait for the client's close after the answer */
#define HTTP_MAX_CONNECTIONS 128   /* per worker */

/* Whether the worker should get traffic; when not, *why_r (static text) says
 * why. */
typedef bool http_ready_fn(const char **why_r);

/* Listens on spec ("host:port"; NULL or empty: off). 0, or -1 after logging. */
int http_start(struct ev_loop *loop, const char *spec, http_ready_fn *ready);
/* Closes the listener and every open connection. */
void http_stop(void);

#endif
