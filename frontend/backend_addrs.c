#include "backend_addrs.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int backend_targets_parse(const char *spec, struct backend_target **out, char *err, size_t errlen)
{
    char *copy = strdup(spec), *save = NULL;
    struct backend_target *t = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *colon = strrchr(tok, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == tok || !colon[1] || *end || port < 1 || port > 65535) {
            snprintf(err, errlen, "backends: \"%s\" is not host:port", tok);
            backend_targets_free(t, n);
            free(copy);
            return -1;
        }
        t = realloc(t, (size_t)(n + 1) * sizeof *t);
        struct backend_target *e = &t[n++];
        e->spec = strdup(tok);
        size_t hl = (size_t)(colon - tok);
        if (tok[0] == '[' && hl > 2 && tok[hl - 1] == ']')
            e->host = strndup(tok + 1, hl - 2);
        else
            e->host = strndup(tok, hl);
        e->port = strdup(colon + 1);
        unsigned char a[sizeof(struct in6_addr)];
        e->numeric = inet_pton(AF_INET, e->host, a) == 1 || inet_pton(AF_INET6, e->host, a) == 1;
    }
    free(copy);
    if (n == 0) {
        snprintf(err, errlen, "backends: no backend configured");
        return -1;
    }
    *out = t;
    return n;
}

void backend_targets_free(struct backend_target *t, int n)
{
    for (int i = 0; i < n; i++) {
        free(t[i].spec);
        free(t[i].host);
        free(t[i].port);
    }
    free(t);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int backend_resolve(const struct backend_target *t, char ***addrs_r, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", gai_strerror(rc));
        return -1;
    }
    char **addrs = NULL;
    int n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 16];
        if (ai->ai_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof ip);
            snprintf(buf, sizeof buf, "%s:%s", ip, t->port);
        } else if (ai->ai_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ip, sizeof ip);
            snprintf(buf, sizeof buf, "[%s]:%s", ip, t->port);
        } else {
            continue;
        }
        addrs = realloc(addrs, (size_t)(n + 1) * sizeof *addrs);
        addrs[n++] = strdup(buf);
    }
    freeaddrinfo(res);
    if (n == 0) {
        snprintf(err, errlen, "no IPv4 or IPv6 address");
        return -1;
    }
    qsort(addrs, (size_t)n, sizeof *addrs, cmp_str);
    int u = 1;
    for (int i = 1; i < n; i++) {
        if (strcmp(addrs[i], addrs[u - 1]) == 0)
            free(addrs[i]);
        else
            addrs[u++] = addrs[i];
    }
    *addrs_r = addrs;
    return u;
}

void backend_addrs_free(char **addrs, int n)
{
    for (int i = 0; i < n; i++)
        free(addrs[i]);
    free(addrs);
}

/* Quadratic, but a Service has tens of addresses, not thousands. */
void backend_addrs_diff(char *const *cur, int ncur, char *const *next, int nnext, bool *cur_keep,
                        bool *next_new)
{
    for (int i = 0; i < ncur; i++) {
        cur_keep[i] = false;
        for (int j = 0; j < nnext && !cur_keep[i]; j++)
            cur_keep[i] = strcmp(cur[i], next[j]) == 0;
    }
    for (int j = 0; j < nnext; j++) {
        next_new[j] = true;
        for (int i = 0; i < ncur && next_new[j]; i++)
            next_new[j] = strcmp(cur[i], next[j]) != 0;
        /* a duplicate within next is new only once */
        for (int k = 0; k < j && next_new[j]; k++)
            next_new[j] = strcmp(next[k], next[j]) != 0;
    }
}

/* ---- the helper thread ---- */

struct answer {
    char **addrs;
    int n;
    char err[256];
};

struct backend_resolver {
    struct ev_loop *loop;
    const struct backend_target *targets;
    int ntargets;
    backend_resolved_cb *done;
    void *ctx;
    ev_async wake;
    pthread_mutex_t lock;
    bool running;                 /* a round is under way (loop side) */
    bool finished;                /* the thread has filled answers */
    struct answer *answers;
};

static void *resolve_round(void *arg)
{
    struct backend_resolver *r = arg;
    for (int i = 0; i < r->ntargets; i++) {
        struct answer *a = &r->answers[i];
        a->addrs = NULL;
        a->n = 0;
        a->err[0] = '\0';
        if (!r->targets[i].numeric)
            a->n = backend_resolve(&r->targets[i], &a->addrs, a->err, sizeof a->err);
    }
    pthread_mutex_lock(&r->lock);
    r->finished = true;
    pthread_mutex_unlock(&r->lock);
    ev_async_send(r->loop, &r->wake);
    return NULL;
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    struct backend_resolver *r = w->data;
    pthread_mutex_lock(&r->lock);
    bool finished = r->finished;
    r->finished = false;
    pthread_mutex_unlock(&r->lock);
    if (!finished)
        return;
    r->running = false;
    for (int i = 0; i < r->ntargets; i++) {
        struct answer *a = &r->answers[i];
        if (r->targets[i].numeric)
            continue;
        r->done(i, a->addrs, a->n, a->n < 0 ? a->err : NULL, r->ctx);
        a->addrs = NULL;
    }
}

struct backend_resolver *backend_resolver_new(struct ev_loop *loop, const struct backend_target *t,
                                              int n, backend_resolved_cb *done, void *ctx)
{
    struct backend_resolver *r = calloc(1, sizeof *r);
    r->loop = loop;
    r->targets = t;
    r->ntargets = n;
    r->done = done;
    r->ctx = ctx;
    r->answers = calloc((size_t)n, sizeof *r->answers);
    pthread_mutex_init(&r->lock, NULL);
    ev_async_init(&r->wake, on_wake);
    r->wake.data = r;
    ev_async_start(loop, &r->wake);
    return r;
}

bool backend_resolver_kick(struct backend_resolver *r)
{
    if (r->running)
        return false;
    /* The thread takes no signals: the loop's handlers stay on this one. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int rc = pthread_create(&th, &attr, resolve_round, r);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return false;
    r->running = true;
    return true;
}
