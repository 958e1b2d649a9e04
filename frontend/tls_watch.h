/* Certificate reload without SIGHUP: inotify on the directories that hold the
 * certificate and key files. Watching the directory, not the file, catches a
 * Kubernetes Secret update (the kubelet writes a new ..TIMESTAMP directory and
 * renames the ..data symlink over the old one, so the files' own inodes never
 * change) as well as an edit in place or a rename over the file. Events are
 * debounced: the reload runs once things have been quiet for `delay` seconds,
 * so a certificate written before its key is not loaded half-way. */
#ifndef PETREL_TLS_WATCH_H
#define PETREL_TLS_WATCH_H

#include <ev.h>

typedef void tls_watch_cb(void);

/* paths: files whose directories are watched; an entry may be a list
 * (tls_certs' "CERT:KEY,CERT:KEY"); NULL and empty entries are skipped.
 * Returns 0, or -1 (logged) when inotify is unavailable: SIGHUP still works. */
int tls_watch_start(struct ev_loop *loop, const char *const *paths, int n, double delay,
                    tls_watch_cb *reload);

#endif
