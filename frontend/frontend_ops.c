/* The HTTP endpoint and the SIGTERM drain of a frontend worker.
 *
 * Draining: the listeners close at once (the kernel hands new connections
 * to the other frontends' sockets; ours are gone) and /readyz turns 503, so a
 * load balancer stops sending clients. Every session then gets its goodbye
 * (IMAP "* BYE", POP3 "-ERR [SYS/TEMP]") at a random moment within
 * drain_window: thousands of clients do not come back in the same second. A
 * session in the middle of a command finishes it first. The worker exits
 * when its last session has gone, or when shutdown_grace runs out; the
 * supervisor waits a little longer than that before it kills. */
#include "frontend_ops.h"

#include "frontend.h"
#include "frontend_metrics.h"
#include "http.h"
#include "log.h"

void listeners_stop(void);

static ev_timer grace_timer;

static bool ready(const char **why_r)
{
    if (frontend->draining) {
        *why_r = "draining";
        return false;
    }
    if (!rpc_client_ready()) {
        *why_r = "no backend link up";
        return false;
    }
    return true;
}

int frontend_ops_start(void)
{
    return http_start(frontend->loop, frontend->cfg->http_listen, ready);
}

static void grace_over(struct ev_loop *loop, ev_timer *t, int revents)
{
    log_warn("\"shutdown grace over, closing sessions\" sessions=%ld", frontend->connections);
    sessions_close_all("server shutting down");
    ev_break(loop, EVBREAK_ALL);
}

void frontend_drain_start(void)
{
    struct ev_loop *loop = frontend->loop;
    if (frontend->draining) {
        log_warn("\"stop signal while draining: exiting now\" sessions=%ld",
                 frontend->connections);
        sessions_close_all("server shutting down");
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    listeners_stop();
    metrics_set(FM_DRAINING, NULL, 1);
    sessions_drain((double)frontend->cfg->drain_window);   /* sets draining */
    if (frontend->connections == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    ev_timer_init(&grace_timer, grace_over, (double)frontend->cfg->shutdown_grace, 0);
    ev_timer_start(loop, &grace_timer);
}
