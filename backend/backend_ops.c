/* The HTTP endpoint and the SIGTERM drain of a backend worker.
 *
 * Draining: the RPC listener closes, /readyz turns 503, and every frontend
 * link gets a "go away" frame (a Response with id 0). The frontend sends no
 * new request on such a link and closes it once its last call there has
 * finished, so nothing is cut off mid-way and no request can be in transit
 * when the link goes. The worker exits when its last link is gone, or when
 * shutdown_grace runs out. */
#include "backend_ops.h"

#include "backend.h"
#include "backend_metrics.h"
#include "http.h"
#include "log.h"

static ev_timer grace_timer;

static bool ready(const char **why_r)
{
    if (rpc_server_draining()) {
        *why_r = "draining";
        return false;
    }
    if (!backend->db || !db_pool_ready(backend->db)) {
        *why_r = "PostgreSQL unreachable";
        return false;
    }
    return true;
}

int backend_ops_start(int worker, const char *http_listen)
{
    return http_start(backend->loop, http_listen, ready);
}

static void grace_over(struct ev_loop *loop, ev_timer *t, int revents)
{
    log_warn("\"shutdown grace over, abandoning requests in flight\"");
    ev_break(loop, EVBREAK_ALL);
}

void backend_drain_start(void)
{
    struct ev_loop *loop = backend->loop;
    if (rpc_server_draining()) {
        log_warn("\"stop signal while draining: exiting now\"");
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    metrics_set(BM_DRAINING, NULL, 1);
    ev_timer_init(&grace_timer, grace_over, (double)backend->cfg->shutdown_grace, 0);
    ev_timer_start(loop, &grace_timer);
    rpc_server_drain();   /* breaks the loop at once when no link is open */
}
