#include "supervisor.h"

#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 256
/* A worker that dies sooner than this after its start counts as crash-looping
 * and is restarted only after RESTART_DELAY, so a broken config does not spin. */
#define QUICK_DEATH_SECONDS 2
#define RESTART_DELAY_SECONDS 1

static volatile sig_atomic_t got_stop, got_child;

static void on_signal(int sig)
{
    if (sig == SIGCHLD)
        got_child = 1;
    else
        got_stop = sig;
}

int supervisor_default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

struct slot {
    pid_t pid;
    time_t started;
    time_t restart_at;   /* 0: running or stopping */
};

static pid_t spawn(const struct supervisor *sv, int index, const sigset_t *old)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigprocmask(SIG_SETMASK, old, NULL);
        log_init(sv->role, index);
        _exit(sv->worker_main(index, sv->arg));
    }
    if (pid < 0)
        log_error("\"fork failed\" error=\"%s\"", strerror(errno));
    return pid;
}

static int reap(struct slot *slots, int n, int stopping)
{
    int status, alive = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < n; i++) {
            if (slots[i].pid != pid)
                continue;
            slots[i].pid = 0;
            if (!stopping) {
                log_warn("\"worker died, restarting\" worker=%d status=%d signal=%d", i,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                         WIFSIGNALED(status) ? WTERMSIG(status) : 0);
                time_t now = time(NULL);
                slots[i].restart_at =
                    now - slots[i].started < QUICK_DEATH_SECONDS ? now + RESTART_DELAY_SECONDS : now;
            }
        }
    }
    for (int i = 0; i < n; i++)
        alive += slots[i].pid > 0;
    return alive;
}

static void signal_all(struct slot *slots, int n, int sig)
{
    for (int i = 0; i < n; i++)
        if (slots[i].pid > 0)
            kill(slots[i].pid, sig);
}

int supervisor_run(const struct supervisor *sv)
{
    int n = sv->workers < 1 ? 1 : sv->workers > MAX_WORKERS ? MAX_WORKERS : sv->workers;
    struct slot slots[MAX_WORKERS] = {0};
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_info("\"supervisor started\" workers=%d", n);
    for (int i = 0; i < n; i++) {
        slots[i].pid = spawn(sv, i, &old);
        slots[i].started = time(NULL);
    }
    sigset_t waitmask = old;
    sigdelset(&waitmask, SIGCHLD);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGHUP);
    while (!got_stop) {
        /* Signals are blocked except inside pselect, which wakes on one or
         * after a second, so delayed restarts happen on time and no signal
         * slips in between the checks. */
        struct timespec one = { 1, 0 };
        pselect(0, NULL, NULL, NULL, &one, &waitmask);
        if (got_stop == SIGHUP) {
            got_stop = 0;
            signal_all(slots, n, SIGHUP);
        }
        got_child = 0;
        reap(slots, n, 0);
        time_t now = time(NULL);
        for (int i = 0; i < n && !got_stop; i++) {
            if (slots[i].pid == 0 && slots[i].restart_at && slots[i].restart_at <= now) {
                slots[i].pid = spawn(sv, i, &old);
                slots[i].started = now;
                slots[i].restart_at = 0;
            }
        }
    }
    log_info("\"supervisor stopping\" signal=%d", (int)got_stop);
    signal_all(slots, n, SIGTERM);
    time_t deadline = time(NULL) + sv->grace_seconds;
    while (reap(slots, n, 1) > 0 && time(NULL) < deadline) {
        struct timespec tick = { 0, 50 * 1000 * 1000 };
        nanosleep(&tick, NULL);
    }
    signal_all(slots, n, SIGKILL);
    while (reap(slots, n, 1) > 0) {
        struct timespec tick = { 0, 10 * 1000 * 1000 };
        nanosleep(&tick, NULL);
    }
    log_info("\"supervisor stopped\"");
    return 0;
}
