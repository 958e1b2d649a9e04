#include "tls_watch.h"

#include "log.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define MAX_PATHS 32
#define EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
                IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

static struct {
    ev_io io;                     /* fd -1: not watching */
    ev_timer debounce;
    tls_watch_cb *reload;
    char *paths[MAX_PATHS];
    int npaths;
} w;

static void watch_dir(int fd, const char *file, char (*seen)[PATH_MAX], int *nseen)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", file);
    const char *dir = dirname(copy);
    for (int i = 0; i < *nseen; i++)
        if (strcmp(seen[i], dir) == 0)
            return;
    if (*nseen == 2 * MAX_PATHS)
        return;
    snprintf(seen[(*nseen)++], PATH_MAX, "%s", dir);
    if (inotify_add_watch(fd, dir, EVENTS) < 0)
        log_warn("\"cannot watch certificate directory\" dir=%s error=\"%s\"", dir, strerror(errno));
}

static void on_events(struct ev_loop *loop, ev_io *io, int revents);

/* A fresh inotify instance on the directory of each file and of what it
 * links to now (an edit behind a symlink); redone after every change, since
 * the kubelet's swap replaces the directory the links lead to. */
static int rewatch(struct ev_loop *loop)
{
    if (ev_is_active(&w.io)) {
        ev_io_stop(loop, &w.io);
        close(w.io.fd);
    }
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        log_warn("\"inotify unavailable: certificates reload on SIGHUP only\" error=\"%s\"",
                 strerror(errno));
        return -1;
    }
    static char seen[2 * MAX_PATHS][PATH_MAX];
    int nseen = 0;
    for (int i = 0; i < w.npaths; i++) {
        watch_dir(fd, w.paths[i], seen, &nseen);
        char real[PATH_MAX];
        if (realpath(w.paths[i], real))
            watch_dir(fd, real, seen, &nseen);
    }
    ev_io_init(&w.io, on_events, fd, EV_READ);
    ev_io_start(loop, &w.io);
    return 0;
}

static void on_quiet(struct ev_loop *loop, ev_timer *t, int revents)
{
    rewatch(loop);   /* before reading, so a change from now on is seen */
    log_info("\"certificate files changed, reloading TLS\"");
    w.reload();
}

static void on_events(struct ev_loop *loop, ev_io *io, int revents)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    ssize_t n;
    while ((n = read(io->fd, buf, sizeof buf)) > 0)
        any = true;
    if (any)
        ev_timer_again(loop, &w.debounce);   /* (re)starts the quiet period */
}

int tls_watch_start(struct ev_loop *loop, const char *const *paths, int n, double delay,
                    tls_watch_cb *reload)
{
    w.reload = reload;
    for (int i = 0; i < n; i++) {
        if (!paths[i])
            continue;
        char *list = strdup(paths[i]), *save = NULL;
        for (char *p = strtok_r(list, ",:", &save); p && w.npaths < MAX_PATHS;
             p = strtok_r(NULL, ",:", &save))
            w.paths[w.npaths++] = strdup(p);
        free(list);
    }
    ev_init(&w.debounce, on_quiet);
    w.debounce.repeat = delay;
    return rewatch(loop);
}
