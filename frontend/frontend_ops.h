/* Running a frontend worker like a provider: the HTTP endpoint (/metrics,
 * /healthz, /readyz) and the drain on SIGTERM (frontend_ops.c). */
#ifndef PETREL_FRONTEND_OPS_H
#define PETREL_FRONTEND_OPS_H

/* In the worker, once the loop exists: http_listen. */
int frontend_ops_start(void);
/* SIGTERM/SIGINT: stop accepting, report not ready, say goodbye to every
 * session spread over drain_window, exit when the last one is gone or after
 * shutdown_grace. A second signal exits at once. */
void frontend_drain_start(void);

#endif
