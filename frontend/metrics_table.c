/* The frontend's metrics: one row per family (see common/metrics.h). */
#include "frontend_metrics.h"

#include "petrel.pb-c.h"

#include <string.h>

static const char *const protos[] = { "imap", "pop3", "lmtp", "other" };
static const char *const states[] = { "notauth", "auth", "selected", "logout" };
static const char *const results[] = { "OK", "NO", "BAD" };
static const char *const auth_results[] = { "success", "failure", "tempfail" };
/* IMAP, POP3 and LMTP commands, served or not yet: a new command is counted
 * under its name without touching this table (else as "other"). */
static const char *const commands[] = {
    "APPEND", "AUTHENTICATE", "CAPABILITY", "CHECK", "CLOSE", "COPY", "CREATE", "DELETE",
    "ENABLE", "EXAMINE", "EXPUNGE", "FETCH", "ID", "IDLE", "LIST", "LOGIN", "LOGOUT", "LSUB",
    "MOVE", "NAMESPACE", "NOOP", "RENAME", "SEARCH", "SELECT", "STARTTLS", "STATUS", "STORE",
    "SUBSCRIBE", "UNSELECT", "UNSUBSCRIBE",
    "APOP", "AUTH", "CAPA", "DELE", "PASS", "QUIT", "RETR", "RSET", "STAT", "STLS",
    "TOP", "UIDL", "USER",
    "LHLO", "MAIL", "RCPT", "DATA", "VRFY",
    "other",
};
/* Request ops, named as in proto/petrel.proto. */
static const char *const ops[] = {
    "login", "list", "select", "meta", "body", "append", "store", "expunge", "create",
    "status", "copy", "rcpt", "deliver", "search", "changes", "mailbox_delete",
    "mailbox_rename", "subscribe", "list_ext", "other",
};
/* Petrel.Status in enum order, then failures of the link itself. */
static const char *const statuses[] = {
    "ok", "no", "tempfail", "bad", "toobig", "nonexistent", "alreadyexists", "other",
};

static const double command_buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25, 0.5, 1, 2.5, 5, 10, 30 };
static const double rpc_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25, 0.5, 1, 2.5, 5, 10 };

const struct metric_def frontend_metrics[FM_COUNT] = {
    [FM_CONNECTIONS] = { "petrel_frontend_connections", METRIC_GAUGE,
        "Client connections open, by protocol and session state.",
        { METRIC_LABEL("proto", protos), METRIC_LABEL("state", states) } },
    [FM_CONNECTIONS_ACCEPTED] = { "petrel_frontend_connections_accepted_total", METRIC_COUNTER,
        "Client connections accepted.", { METRIC_LABEL("proto", protos) } },
    [FM_CONNECTIONS_REFUSED] = { "petrel_frontend_connections_refused_total", METRIC_COUNTER,
        "Client connections refused because max_connections was reached.",
        { METRIC_LABEL("proto", protos) } },
    [FM_COMMANDS] = { "petrel_frontend_commands_total", METRIC_COUNTER,
        "Client commands completed, by protocol, command and result (OK, NO, BAD).",
        { METRIC_LABEL("proto", protos), METRIC_LABEL("command", commands),
          METRIC_LABEL("result", results) }, .flags = METRIC_SPARSE },
    [FM_COMMAND_DURATION] = { "petrel_frontend_command_duration_seconds", METRIC_HISTOGRAM,
        "Time from a client command's arrival to its final response.",
        { METRIC_LABEL("proto", protos), METRIC_LABEL("command", commands) },
        METRIC_BUCKETS(command_buckets), METRIC_SPARSE },
    [FM_AUTH] = { "petrel_frontend_auth_total", METRIC_COUNTER,
        "Authentication attempts checked by a backend, by result.",
        { METRIC_LABEL("proto", protos), METRIC_LABEL("result", auth_results) } },
    [FM_BYTES_RECEIVED] = { "petrel_frontend_received_bytes_total", METRIC_COUNTER,
        "Bytes received from clients.", { METRIC_LABEL("proto", protos) } },
    [FM_BYTES_SENT] = { "petrel_frontend_sent_bytes_total", METRIC_COUNTER,
        "Bytes sent to clients.", { METRIC_LABEL("proto", protos) } },
    [FM_RPC_INFLIGHT] = { "petrel_frontend_rpc_inflight", METRIC_GAUGE,
        "RPC calls sent to backends and not finished." },
    [FM_RPC_REQUESTS] = { "petrel_frontend_rpc_requests_total", METRIC_COUNTER,
        "RPC calls finished, by operation and status (tempfail includes lost links).",
        { METRIC_LABEL("op", ops), METRIC_LABEL("status", statuses) }, .flags = METRIC_SPARSE },
    [FM_RPC_DURATION] = { "petrel_frontend_rpc_duration_seconds", METRIC_HISTOGRAM,
        "Time from an RPC call to its final response.", { METRIC_LABEL("op", ops) },
        METRIC_BUCKETS(rpc_buckets), METRIC_SPARSE },
    [FM_BACKEND_LINKS_UP] = { "petrel_frontend_backend_links_up", METRIC_GAUGE,
        "Backend links connected, summed over workers (each worker links every backend)." },
    [FM_DRAINING] = { "petrel_frontend_draining", METRIC_GAUGE,
        "Workers draining after SIGTERM." },
};

static int find(const char *const *set, int n, const char *name)
{
    for (int i = 0; i < n - 1; i++)
        if (strcmp(set[i], name) == 0)
            return i;
    return n - 1;   /* "other" */
}

#define FIND(set, name) find((set), (int)(sizeof(set) / sizeof((set)[0])), (name))

int fm_proto(const char *name) { return FIND(protos, name ? name : ""); }
int fm_command(const char *name) { return FIND(commands, name ? name : ""); }
int fm_status(int status)
{
    int n = (int)(sizeof statuses / sizeof statuses[0]);
    return status >= 0 && status < n - 1 ? status : n - 1;
}
int fm_op(int op_case)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&petrel__request__descriptor, (unsigned)op_case);
    return FIND(ops, f ? f->name : "");
}
