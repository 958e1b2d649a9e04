/* The process model: a supervisor forks N workers, restarts one that dies
 * (with a delay if they die in a loop), and on SIGTERM/SIGINT passes the signal
 * on, waits for the workers up to a grace period, then kills what is left.
 * Workers die with the supervisor (PR_SET_PDEATHSIG), so a supervisor killed
 * with SIGKILL leaves nothing behind. */
#ifndef PETREL_SUPERVISOR_H
#define PETREL_SUPERVISOR_H

struct supervisor {
    const char *role;           /* "frontend", "backend": for logs */
    int workers;                /* number of worker processes */
    int grace_seconds;          /* how long workers get to stop on SIGTERM */
    /* Runs in each forked worker; its return value is the worker's exit code. */
    int (*worker_main)(int index, void *arg);
    void *arg;
};

/* Returns the supervisor's exit code once every worker is gone. */
int supervisor_run(const struct supervisor *sv);
int supervisor_default_workers(void);

#endif
