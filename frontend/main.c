/* petrel-frontend: supervisor and workers that speak IMAP, POP3 and LMTP to
 * clients and forward every operation to a backend. */
#include "frontend.h"

#include "auth_policy.h"
#include "cluster_state.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "frontend_ops.h"
#include "frontend_metrics.h"
#include "supervisor.h"
#include "tls.h"
#include "tls_watch.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

void listeners_stop(void);

static struct frontend_settings cfg;
struct frontend *frontend;
static struct tls_ctx *tls_at_start;   /* loaded before forking; NULL: TLS off */

static struct setting settings[] = {
    { "workers", SETTING_INT, "0", "worker processes (0: one per CPU)", &cfg.workers, 0, 256 },
    { "imap_listen", SETTING_STR, "127.0.0.1:1143", "IMAP listener (host:port; empty: off)", &cfg.imap_listen, 0, 0 },
    { "pop3_listen", SETTING_STR, "127.0.0.1:1110", "POP3 listener (host:port; empty: off)", &cfg.pop3_listen, 0, 0 },
    { "backends", SETTING_STR, "127.0.0.1:7100", "backends to connect to (host:port, comma-separated); a name gets links to every address it resolves to", &cfg.backends, 0, 0 },
    { "backend_links", SETTING_INT, "4", "RPC links to each backend address, per worker (the backend's workers share them out by SO_REUSEPORT)", &cfg.backend_links, 1, 64 },
    { "backend_wait", SETTING_INT, "2", "seconds a command waits for a backend link when none is up before it fails (0: fails at once)", &cfg.backend_wait, 0, 60 },
    { "backends_refresh", SETTING_INT, "10", "seconds between lookups of backend names (links follow the answer)", &cfg.backends_refresh, 1, 3600 },
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
    /* Over these a command gets NO [LIMIT] (RFC 5530) and the session goes on. */
    { "imap_max_fetch_items", SETTING_INT, "64", "items in one FETCH (FAST, ALL, FULL count as what they stand for; ~2 KB each while it runs)", &cfg.imap_max_fetch_items, 1, 10000 },
    /* The backend's MAX_SEARCH_NODES, MAX_SEARCH_STRING and MAX_SEARCH_DEPTH
     * (backend/op_search.c) are at least these settings' maxima: the
     * frontend's answer is the one a client sees. */
    { "imap_max_search_keys", SETTING_INT, "1000", "search keys in one SEARCH, AND/OR/NOT and parentheses included", &cfg.imap_max_search_keys, 1, 10000 },
    { "imap_max_search_string", SETTING_INT, "16384", "bytes of one string in a SEARCH (BODY, TEXT, HEADER, FROM ...)", &cfg.imap_max_search_string, 1, 1048576 },
    { "imap_max_search_depth", SETTING_INT, "256", "nesting of NOT, OR and parentheses in one SEARCH", &cfg.imap_max_search_depth, 1, 256 },
    /* At most 100000: one set's ranges (<= 1 MB packed) must fit the RPC
     * frame (rpc_max_frame default), and the backend's MAX_SEARCH_RANGES. */
    { "imap_max_set_ranges", SETTING_INT, "100000", "ranges in the sequence or UID sets of one IMAP command", &cfg.imap_max_set_ranges, 1, 100000 },
    { "imap_max_bad_commands", SETTING_INT, "20", "IMAP commands answered BAD in a row before the session ends with BYE", &cfg.imap_max_bad_commands, 1, 100000 },
    { "append_limit", SETTING_INT, "52428800", "largest message APPEND accepts, bytes (APPENDLIMIT)", &cfg.append_limit, 1024, 2147483647 },
    { "imap_fetch_inline", SETTING_INT, "65536", "FETCH BODY[]/HEADER/TEXT: messages up to this size come in the metadata reply, one backend round trip instead of two (0: off)", &cfg.imap_fetch_inline, 0, 262144 },
    { "imap_autologout_preauth", SETTING_INT, "60", "seconds idle before login until disconnect", &cfg.imap_autologout_preauth, 1, 86400 },
    { "imap_autologout", SETTING_INT, "1800", "seconds idle after login until disconnect (RFC 9051: at least 30 min)", &cfg.imap_autologout, 60, 86400 },
    { "pop3_max_line", SETTING_INT, "512", "POP3 command line bytes (RFC 2449: 255 + slack)", &cfg.pop3_max_line, 64, 65536 },
    { "pop3_idle_timeout", SETTING_INT, "600", "POP3 idle seconds (RFC 1939: at least 600)", &cfg.pop3_idle_timeout, 1, 86400 },
    { "pop3_max_bad_commands", SETTING_INT, "10", "client errors (bad POP3 commands) in one session before it ends", &cfg.pop3_max_bad_commands, 1, 100000 },
    { "pop3_max_auth_failures", SETTING_INT, "3", "failed POP3 logins in one session before it ends", &cfg.pop3_max_auth_failures, 1, 1000 },
    { "rpc_max_frame", SETTING_INT, "4194304", "largest RPC frame accepted from a backend (bytes)", &cfg.rpc_max_frame, 65536, 1073741824 },
    { "rpc_chunk", SETTING_INT, "262144", "bytes per streamed APPEND chunk", &cfg.rpc_chunk, 4096, 1048576 },
    { "max_connections", SETTING_INT, "100000", "client connections per worker", &cfg.max_connections, 1, 10000000 },
    { "shutdown_grace", SETTING_INT, "10", "seconds sessions get to finish on SIGTERM", &cfg.shutdown_grace, 0, 3600 },
    { "drain_window", SETTING_INT, "5", "seconds over which sessions get BYE on SIGTERM, at random moments (shorter than shutdown_grace)", &cfg.drain_window, 0, 3600 },
    { "http_listen", SETTING_STR, "", "HTTP listener for /metrics, /healthz, /readyz (host:port; empty: off)", &cfg.http_listen, 0, 0 },
    { "log_format", SETTING_STR, "logfmt", "logfmt or json (one line per event)", &cfg.log_format, 0, 0 },
    { "session_ttl", SETTING_INT, "60", "seconds a session stays in the Redis registry unless refreshed (every third of it)", &cfg.session_ttl, 3, 86400 },
    { "pop3_lock_ttl", SETTING_INT, "30", "seconds the cluster-wide POP3 maildrop lock outlives a dead node", &cfg.pop3_lock_ttl, 1, 3600 },
    { "imap_idle_keepalive", SETTING_INT, "120", "seconds between \"* OK Still here\" during IDLE", &cfg.imap_idle_keepalive, 1, 3600 },
    { "imap_idle_poll", SETTING_INT, "30", "seconds between IDLE checks for changes when Redis push is unavailable", &cfg.imap_idle_poll, 1, 3600 },
    { "imaps_listen", SETTING_STR, "", "IMAP over implicit TLS listener (host:port; empty: off)", &cfg.imaps_listen, 0, 0 },
    { "pop3s_listen", SETTING_STR, "", "POP3 over implicit TLS listener (host:port; empty: off)", &cfg.pop3s_listen, 0, 0 },
    { "tls_cert", SETTING_STR, "", "TLS certificate chain, PEM (empty: no TLS and no STARTTLS); re-read on SIGHUP", &cfg.tls_cert, 0, 0 },
    { "tls_key", SETTING_STR, "", "TLS private key, PEM; re-read on SIGHUP", &cfg.tls_key, 0, 0 },
    { "tls_certs", SETTING_STR, "", "extra certificates chosen by SNI: CERT:KEY,CERT:KEY", &cfg.tls_certs, 0, 0 },
    { "tls_ciphers", SETTING_STR, TLS_DEFAULT_CIPHERS, "TLS 1.2 cipher list (OpenSSL syntax)", &cfg.tls_ciphers, 0, 0 },
    { "tls_ciphersuites", SETTING_STR, TLS_DEFAULT_CIPHERSUITES, "TLS 1.3 cipher suites", &cfg.tls_ciphersuites, 0, 0 },
    { "lmtp_listen", SETTING_STR, "127.0.0.1:1024", "LMTP listener (host:port; empty: off)", &cfg.lmtp_listen, 0, 0 },
    { "lmtp_max_message_size", SETTING_INT, "52428800", "largest message LMTP accepts, bytes (SIZE)", &cfg.lmtp_max_message_size, 1024, 2147483647 },
    { "lmtp_max_recipients", SETTING_INT, "100", "recipients per LMTP transaction", &cfg.lmtp_max_recipients, 1, 10000 },   /* <= the backend's MAX_RECIPIENTS (op_deliver.c) */
    { "lmtp_max_line", SETTING_INT, "4096", "bytes per LMTP command or message line (RFC 5321: 998 + slack)", &cfg.lmtp_max_line, 1000, 1048576 },
    { "lmtp_max_bad_commands", SETTING_INT, "20", "client errors (bad LMTP commands) in one session before it ends (421)", &cfg.lmtp_max_bad_commands, 1, 100000 },
    { "lmtp_idle_timeout", SETTING_INT, "300", "LMTP idle seconds (RFC 5321 4.5.3.2: at least 300 in DATA)", &cfg.lmtp_idle_timeout, 1, 86400 },
    { "lmtp_save_to_detail_mailbox", SETTING_INT, "1", "1: user+folder@domain delivers into folder when it exists", &cfg.lmtp_save_to_detail_mailbox, 0, 1 },
    /* Hostile clients: frontend/auth_policy.h, conn_limits.h, proxy_gate.h. */
    { "plaintext_auth", SETTING_STR, "loopback", "passwords without TLS: loopback (only from secure_networks), always or never; per listener after a comma, e.g. loopback,pop3=always", &cfg.plaintext_auth, 0, 0 },
    { "secure_networks", SETTING_STR, "127.0.0.0/8 ::1", "client networks (CIDR list) where cleartext passwords count as secure", &cfg.secure_networks, 0, 0 },
    { "throttle_exempt", SETTING_STR, "127.0.0.0/8 ::1", "client networks without per-address auth throttling and connection limits (a local proxy or webmail); per-account throttling still applies", &cfg.throttle_exempt, 0, 0 },
    { "auth_failure_delay_ms", SETTING_INT, "2000", "delay before checking a password from an address with one failure; doubles with each further failure (0: no delay)", &cfg.auth_failure_delay_ms, 0, 600000 },
    { "auth_failure_delay_max_ms", SETTING_INT, "15000", "longest delay for failed logins", &cfg.auth_failure_delay_max_ms, 0, 600000 },
    { "auth_failure_window", SETTING_INT, "900", "seconds a failure counter lives after its last failure", &cfg.auth_failure_window, 1, 86400 },
    { "auth_lockout_account", SETTING_INT, "10", "failures within the window that lock an account: NO [UNAVAILABLE] (0: never)", &cfg.auth_lockout_account, 0, 1000000 },
    { "auth_lockout_ip", SETTING_INT, "100", "failures within the window that lock a client address (0: never)", &cfg.auth_lockout_ip, 0, 1000000 },
    { "max_connections_per_ip", SETTING_INT, "100", "IMAP and POP3 connections from one client address, cluster-wide (0: no limit)", &cfg.max_connections_per_ip, 0, 10000000 },
    { "max_connections_per_account", SETTING_INT, "10", "IMAP sessions of one account from one client address, cluster-wide (0: no limit)", &cfg.max_connections_per_account, 0, 10000000 },
    { "proxy_protocol", SETTING_STR, "", "listeners that expect a HAProxy PROXY v1/v2 header first: imap,imaps,pop3,pop3s,lmtp", &cfg.proxy_protocol, 0, 0 },
    { "proxy_trusted", SETTING_STR, "", "proxy addresses (CIDR list) allowed to connect to proxy_protocol listeners", &cfg.proxy_trusted, 0, 0 },
    { "proxy_timeout", SETTING_INT, "3", "seconds a proxy_protocol connection has to send its header", &cfg.proxy_timeout, 1, 300 },
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    log_info("\"worker stopping\"");
    frontend_drain_start();
}

static struct tls_ctx *load_tls(char *err, size_t errlen)
{
    struct tls_settings ts = { .cert = cfg.tls_cert, .key = cfg.tls_key, .certs = cfg.tls_certs,
                               .ciphers = cfg.tls_ciphers, .ciphersuites = cfg.tls_ciphersuites };
    return tls_ctx_new_server(&ts, err, errlen);
}

/* SIGHUP, or a change in the certificates' directories (tls_watch.c):
 * certificates and keys are read again. New connections get the new
 * context; sessions already in TLS keep theirs (each holds a reference). A
 * file that does not load leaves the old context in place. */
static void tls_reload(void)
{
    if (!frontend->tls)
        return;
    char err[512], serial[80];
    struct tls_ctx *t = load_tls(err, sizeof err);
    if (!t) {
        log_error("\"TLS reload failed, keeping the old certificate\" error=\"%s\"", err);
        return;
    }
    tls_ctx_unref(&frontend->tls);
    frontend->tls = t;
    tls_ctx_serial(t, serial, sizeof serial);
    log_info("\"TLS reloaded\" serial=%s", serial);
}

static void on_reload(struct ev_loop *loop, ev_signal *w, int revents) { tls_reload(); }

static int worker_main(int index, void *arg)
{
    struct frontend f = { .loop = ev_default_loop(EVFLAG_AUTO), .cfg = &cfg, .worker = index,
                          .tls = tls_at_start };
    frontend = &f;
    metrics_worker_start(index);   /* before anything can count */
    ev_signal hup;
    ev_signal_init(&hup, on_reload, SIGHUP);
    ev_signal_start(f.loop, &hup);
    /* A renewed certificate (a Kubernetes Secret's update) needs no SIGHUP. */
    if (f.tls) {
        const char *tls_files[] = { cfg.tls_cert, cfg.tls_key, cfg.tls_certs };
        tls_watch_start(f.loop, tls_files, 3, 1.0, tls_reload);
    }
    if (rpc_client_start(cfg.backends) < 0)
        return 1;
    if (cluster_state_start() < 0)
        return 1;
    if (listener_start(cfg.imap_listen, &imap_protocol) < 0 ||
        listener_start(cfg.pop3_listen, &pop3_protocol) < 0 ||
        listener_start_tls(cfg.imaps_listen, &imap_protocol) < 0 ||
        listener_start_tls(cfg.pop3s_listen, &pop3_protocol) < 0 ||
        listener_start(cfg.lmtp_listen, &lmtp_protocol) < 0)
        return 1;
    if (frontend_ops_start() < 0)
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
    int rc = config_start("petrel-frontend", settings, NSETTINGS, argc, argv, &cfg.node,
                          &cfg.log_level, &cfg.log_format);
    if (rc >= 0)
        return rc;
    char err[512];
    if (cfg.drain_window > 0 && cfg.drain_window >= cfg.shutdown_grace) {
        fprintf(stderr, "petrel-frontend: drain_window (%ld) must be shorter than shutdown_grace (%ld)\n",
                cfg.drain_window, cfg.shutdown_grace);
        return 2;
    }
    if (auth_policy_configure(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "petrel-frontend: %s\n", err);
        return 2;
    }
    log_init("frontend", -1);
    if (*cfg.tls_cert || *cfg.tls_key || *cfg.imaps_listen || *cfg.pop3s_listen) {
        tls_at_start = load_tls(err, sizeof err);
        if (!tls_at_start) {
            fprintf(stderr, "petrel-frontend: %s\n", err);
            return 2;
        }
    }
    struct supervisor sv = {
        .role = "frontend",
        .workers = cfg.workers ? (int)cfg.workers : supervisor_default_workers(),
        /* Workers end themselves after shutdown_grace; the supervisor's
         * SIGKILL comes only after that (its clock has 1 s granularity). */
        .grace_seconds = (int)cfg.shutdown_grace + 2,
        .worker_main = worker_main,
    };
    if (metrics_init(frontend_metrics, FM_COUNT, sv.workers) < 0) {
        fprintf(stderr, "petrel-frontend: cannot map the metrics segment\n");
        return 1;
    }
    return supervisor_run(&sv);
}
