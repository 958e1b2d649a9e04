/* The frontend's metrics (table in metrics_table.c; see common/metrics.h).
 * Label dimensions are listed in the order the label index arrays use. */
#ifndef PETREL_FRONTEND_METRICS_H
#define PETREL_FRONTEND_METRICS_H

#include "metrics.h"

enum frontend_metric {
    FM_CONNECTIONS,           /* gauge {proto, state} */
    FM_CONNECTIONS_ACCEPTED,  /* counter {proto} */
    FM_CONNECTIONS_REFUSED,   /* counter {proto}: max_connections reached */
    FM_COMMANDS,              /* counter {proto, command, result} */
    FM_COMMAND_DURATION,      /* histogram {proto, command} */
    FM_AUTH,                  /* counter {proto, result} */
    FM_BYTES_RECEIVED,        /* counter {proto} */
    FM_BYTES_SENT,            /* counter {proto} */
    FM_RPC_INFLIGHT,          /* gauge */
    FM_RPC_REQUESTS,          /* counter {op, status} */
    FM_RPC_DURATION,          /* histogram {op} */
    FM_BACKEND_LINKS_UP,      /* gauge */
    FM_DRAINING,              /* gauge: workers draining */
    /* Redis and notification metrics go here. */
    FM_COUNT
};

/* Fixed label indexes. */
enum { MR_OK, MR_NO, MR_BAD };                              /* command result */
enum { MS_NOTAUTH, MS_AUTH, MS_SELECTED, MS_LOGOUT };       /* session state */
enum { MA_SUCCESS, MA_FAILURE, MA_TEMPFAIL };               /* auth result */

extern const struct metric_def frontend_metrics[FM_COUNT];

/* Label index of a protocol name, command name ("other" when unknown),
 * RPC op (by Request op_case) and RPC status. */
int fm_proto(const char *name);
int fm_command(const char *name);
int fm_op(int op_case);
int fm_status(int status);

#endif
