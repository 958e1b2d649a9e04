/* petrel-backend: supervisor and workers that own all mail logic. */
#include "backend.h"

#include "auth_cache.h"
#include "config.h"
#include "hash_pool.h"
#include "log.h"
#include "backend_metrics.h"
#include "migrate.h"
#include "backend_ops.h"
#include "notify.h"
#include "supervisor.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend_settings cfg;
struct backend *backend;

static struct setting settings[] = {
    { "workers", SETTING_INT, "0", "worker processes (0: one per CPU)", &cfg.workers, 0, 256 },
    { "listen", SETTING_STR, "127.0.0.1:7100", "RPC listener for frontends (host:port)", &cfg.listen, 0, 0 },
    { "pg_url", SETTING_STR, "postgresql:///petrel", "PostgreSQL connection URL", &cfg.pg_url, 0, 0 },
    { "redis_url", SETTING_STR, "", "Redis URL for change notifications (redis://host:port)", &cfg.redis_url, 0, 0 },
    { "node", SETTING_STR, "backend", "this node's name in logs and metrics", &cfg.node, 0, 0 },
    { "log_level", SETTING_STR, "info", "debug, info, warn or error", &cfg.log_level, 0, 0 },
    { "db_connections", SETTING_INT, "4", "PostgreSQL connections per worker", &cfg.db_connections, 1, 256 },
    { "rpc_max_frame", SETTING_INT, "4194304", "largest RPC frame accepted (bytes)", &cfg.rpc_max_frame, 65536, 1073741824 },
    { "rpc_max_inflight", SETTING_INT, "4096", "requests in flight per frontend link", &cfg.rpc_max_inflight, 1, 1000000 },
    { "max_message_size", SETTING_INT, "104857600", "largest message stored (bytes)", &cfg.max_message_size, 1024, 2147483647 },
    { "append_max_messages", SETTING_INT, "10000", "messages in one MULTIAPPEND", &cfg.append_max_messages, 1, 1000000 },
    { "stream_chunk", SETTING_INT, "262144", "bytes per streamed body chunk", &cfg.stream_chunk, 4096, 1048576 },
    { "auth_threads", SETTING_INT, "2", "password-checking threads per worker (0: on the event loop)", &cfg.auth_threads, 0, 64 },
    { "auth_cache_size", SETTING_INT, "10000", "successful logins remembered per worker", &cfg.auth_cache_size, 0, 10000000 },
    { "auth_cache_ttl", SETTING_INT, "300", "seconds a successful login is remembered (0: off)", &cfg.auth_cache_ttl, 0, 86400 },
    { "shutdown_grace", SETTING_INT, "10", "seconds to finish in-flight work on SIGTERM", &cfg.shutdown_grace, 0, 3600 },
    { "http_listen", SETTING_STR, "", "HTTP listener for /metrics, /healthz, /readyz (host:port; empty: off)", &cfg.http_listen, 0, 0 },
    { "log_format", SETTING_STR, "logfmt", "logfmt or json (one line per event)", &cfg.log_format, 0, 0 },
    { "expunge_tombstone_days", SETTING_INT, "30", "days expunged UIDs are remembered for QRESYNC (0: for ever)", &cfg.expunge_tombstone_days, 0, 36500 },
    { "search_text_max", SETTING_INT, "1048576", "bytes of decoded text per message kept for SEARCH BODY/TEXT; text beyond is not searchable", &cfg.search_text_max, 1024, 268435456 },
    { "meta_inline_budget", SETTING_INT, "1048576", "FETCH BODY[]: bodies sent with the metadata at most (UIDs asked x size asked); more UIDs get streamed bodies (0: off)", &cfg.meta_inline_budget, 0, 67108864 },
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    log_info("\"worker stopping\"");
    backend_drain_start();
}

static int worker_main(int index, void *arg)
{
    metrics_worker_start(index);   /* before anything can count */
    struct backend b = { .loop = ev_default_loop(EVFLAG_AUTO), .cfg = &cfg };
    backend = &b;
    auth_cache_init((int)cfg.auth_cache_size, (double)cfg.auth_cache_ttl);
    hash_pool_start(b.loop, (int)cfg.auth_threads);
    b.db = db_pool_new(b.loop, cfg.pg_url, (int)cfg.db_connections);
    if (notify_start(b.loop, cfg.redis_url, cfg.node, index) < 0)
        return 1;
    if (rpc_server_start(cfg.listen) < 0)
        return 1;
    if (backend_ops_start(index, cfg.http_listen) < 0)
        return 1;
    ev_signal term, intr;
    ev_signal_init(&term, on_stop, SIGTERM);
    ev_signal_init(&intr, on_stop, SIGINT);
    ev_signal_start(b.loop, &term);
    ev_signal_start(b.loop, &intr);
    log_info("\"worker ready\" listen=%s", cfg.listen);
    ev_run(b.loop, 0);
    db_pool_free(&b.db);
    return 0;
}

/* Applies pending migrations before any worker starts, so workers can rely on
 * the schema; the advisory lock in migrate_apply makes concurrent starts safe. */
static int migrate_at_start(void)
{
    PGconn *pg = PQconnectdb(cfg.pg_url);
    if (PQstatus(pg) != CONNECTION_OK) {
        log_warn("\"cannot reach postgres at start; workers will retry\" error=\"%s\"",
                 PQerrorMessage(pg));
        PQfinish(pg);
        return 0;
    }
    char err[512];
    int rc = migrate_apply(pg, err, sizeof err);
    PQfinish(pg);
    if (rc < 0) {
        log_error("\"schema migration failed\" error=\"%s\"", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = config_start("petrel-backend", settings, NSETTINGS, argc, argv, &cfg.node,
                          &cfg.log_level, &cfg.log_format);
    if (rc >= 0)
        return rc;
    log_init("backend", -1);
    if (migrate_at_start() < 0)
        return 1;
    struct supervisor sv = {
        .role = "backend",
        .workers = cfg.workers ? (int)cfg.workers : supervisor_default_workers(),
        /* Workers end themselves after shutdown_grace; the supervisor's
         * SIGKILL comes only after that (its clock has 1 s granularity). */
        .grace_seconds = (int)cfg.shutdown_grace + 2,
        .worker_main = worker_main,
    };
    if (metrics_init(backend_metrics, BM_COUNT, sv.workers) < 0) {
        fprintf(stderr, "petrel-backend: cannot map the metrics segment\n");
        return 1;
    }
    return supervisor_run(&sv);
}
