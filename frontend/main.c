/* petrel-frontend: supervisor and workers that speak IMAP, POP3 and LMTP to
 * clients and forward every operation to a backend. */
#include "frontend.h"

#include "config.h"
#include "log.h"
#include "supervisor.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

void listeners_stop(void);

static struct frontend_settings cfg;
struct frontend *frontend;

static struct setting settings[] = {
    { "workers", SETTING_INT, "0", "worker processes (0: one per CPU)", &cfg.workers, 0, 256 },
    { "imap_listen", SETTING_STR, "127.0.0.1:1143", "IMAP listener (host:port; empty: off)", &cfg.imap_listen, 0, 0 },
    { "pop3_listen", SETTING_STR, "127.0.0.1:1110", "POP3 listener (host:port; empty: off)", &cfg.pop3_listen, 0, 0 },
    { "backends", SETTING_STR, "127.0.0.1:7100", "backends to connect to (host:port, comma-separated)", &cfg.backends, 0, 0 },
    { "redis_url", SETTING_STR, "", "Redis URL for cluster state (redis://host:port)", &cfg.redis_url, 0, 0 },
    { "node", SETTING_STR, "frontend", "this node's name in logs, session ids and metrics", &cfg.node, 0, 0 },
    { "log_level", SETTING_STR, "info", "debug, info, warn or error", &cfg.log_level, 0, 0 },
    { "imap_max_line_preauth", SETTING_INT, "8192", "IMAP command line bytes before login", &cfg.imap_max_line_preauth, 512, 1048576 },
    { "imap_max_line", SETTING_INT, "65536", "IMAP command line bytes after login", &cfg.imap_max_line, 1024, 16777216 },
    { "imap_max_literal", SETTING_INT, "65536", "bytes of one literal held in memory (APPEND streams instead)", &cfg.imap_max_literal, 1024, 16777216 },
    { "imap_max_literals", SETTING_INT, "32", "literals per IMAP command", &cfg.imap_max_literals, 1, 10000 },
    { "imap_max_nonsync_preauth", SETTING_INT, "4096", "largest non-synchronizing literal before login (LITERAL-)", &cfg.imap_max_nonsync_preauth, 0, 1048576 },
    { "imap_max_depth", SETTING_INT, "16", "parenthesis nesting in an IMAP command", &cfg.imap_max_depth, 1, 256 },
    { "imap_max_args", SETTING_INT, "10000", "argument nodes per IMAP command", &cfg.imap_max_args, 16, 1000000 },
    { "append_limit", SETTING_INT, "52428800", "largest message APPEND accepts, bytes (APPENDLIMIT)", &cfg.append_limit, 1024, 2147483647 },
    { "imap_autologout_preauth", SETTING_INT, "60", "seconds idle before login until disconnect", &cfg.imap_autologout_preauth, 1, 86400 },
    { "imap_autologout", SETTING_INT, "1800", "seconds idle after login until disconnect (RFC 9051: at least 30 min)", &cfg.imap_autologout, 60, 86400 },
    { "pop3_max_line", SETTING_INT, "512", "POP3 command line bytes (RFC 2449: 255 + slack)", &cfg.pop3_max_line, 64, 65536 },
    { "pop3_idle_timeout", SETTING_INT, "600", "POP3 idle seconds (RFC 1939: at least 600)", &cfg.pop3_idle_timeout, 1, 86400 },
    { "rpc_max_frame", SETTING_INT, "4194304", "largest RPC frame accepted from a backend (bytes)", &cfg.rpc_max_frame, 65536, 1073741824 },
    { "rpc_chunk", SETTING_INT, "262144", "bytes per streamed APPEND chunk", &cfg.rpc_chunk, 4096, 1048576 },
    { "max_connections", SETTING_INT, "100000", "client connections per worker", &cfg.max_connections, 1, 10000000 },
    { "shutdown_grace", SETTING_INT, "10", "seconds sessions get to finish on SIGTERM", &cfg.shutdown_grace, 0, 3600 },
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    log_info("\"worker stopping\"");
    listeners_stop();
    ev_break(loop, EVBREAK_ALL);
}

static int worker_main(int index, void *arg)
{
    struct frontend f = { .loop = ev_default_loop(EVFLAG_AUTO), .cfg = &cfg, .worker = index };
    frontend = &f;
    if (rpc_client_start(cfg.backends) < 0)
        return 1;
    if (listener_start(cfg.imap_listen, &imap_protocol) < 0 ||
        listener_start(cfg.pop3_listen, &pop3_protocol) < 0)
        return 1;
    ev_signal term, intr;
    ev_signal_init(&term, on_stop, SIGTERM);
    ev_signal_init(&intr, on_stop, SIGINT);
    ev_signal_start(f.loop, &term);
    ev_signal_start(f.loop, &intr);
    log_info("\"worker ready\"");
    ev_run(f.loop, 0);
    return 0;
}

int main(int argc, char **argv)
{
    int help;
    const char *path = config_path_from_args(argc, argv, &help);
    if (help) {
        if (help > 0) {
            printf("usage: petrel-frontend [--config FILE]\nsettings (file key or PETREL_<KEY>):\n");
            config_print_help(settings, NSETTINGS);
        }
        return help > 0 ? 0 : 2;
    }
    char err[512];
    if (config_load(settings, NSETTINGS, path, err, sizeof err) < 0) {
        fprintf(stderr, "petrel-frontend: %s\n", err);
        return 2;
    }
    enum log_level lvl;
    if (log_parse_level(cfg.log_level, &lvl) < 0) {
        fprintf(stderr, "petrel-frontend: log_level must be debug, info, warn or error\n");
        return 2;
    }
    log_set_level(lvl);
    log_init("frontend", -1);
    struct supervisor sv = {
        .role = "frontend",
        .workers = cfg.workers ? (int)cfg.workers : supervisor_default_workers(),
        .grace_seconds = (int)cfg.shutdown_grace,
        .worker_main = worker_main,
    };
    return supervisor_run(&sv);
}
