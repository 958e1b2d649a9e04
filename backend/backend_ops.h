/* Running a backend worker like a provider: the HTTP endpoint (/metrics,
 * /healthz, /readyz) and the drain on SIGTERM (backend_ops.c). */
#ifndef PETREL_BACKEND_OPS_H
#define PETREL_BACKEND_OPS_H

/* In the worker, once backend->loop and backend->db exist (the metrics slot
 * is taken first thing in worker_main). */
int backend_ops_start(int worker, const char *http_listen);
/* SIGTERM/SIGINT: stop accepting, report not ready, finish the requests in
 * flight, exit when every frontend link has gone or after shutdown_grace. A
 * second signal exits at once. */
void backend_drain_start(void);

#endif
