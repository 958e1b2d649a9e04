/* One asynchronous Redis connection on a libev loop (hiredis) that looks
 * after itself: it connects in the background, sends AUTH and SELECT from the
 * URL, and when Redis goes away it reconnects with exponential backoff
 * (0.2 s doubling to 5 s, with jitter) for as long as the process lives.
 *
 * Users never hold the hiredis context across callbacks: they ask
 * redis_link_up() and send with redis_link_command(), which refuses (-1)
 * while the link is down. Whatever needs to be in Redis after an outage is
 * re-sent from on_up (resubscribe, re-register). Every reply callback must
 * accept a NULL reply: the link went down before the reply arrived.
 *
 * Redis is never the source of truth here, so nothing waits for it: while it
 * is down callers carry on in a degraded mode of their own choosing. */
#ifndef PETREL_REDIS_LINK_H
#define PETREL_REDIS_LINK_H

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>

struct redis_url {
    char host[256];
    int port;
    int db;
    char password[256];     /* empty: no AUTH */
};

/* redis://[[user]:password@]host[:port][/db]. Returns 0, or -1 with *why. */
int redis_url_parse(const char *url, struct redis_url *u, const char **why);

struct redis_link {
    struct ev_loop *loop;
    struct redis_url url;
    const char *name;               /* in log lines: "commands", "notify", ... */
    char client_name[128];           /* CLIENT SETNAME on connect (empty: none) */
    redisAsyncContext *ac;          /* NULL while disconnected */
    bool up;                        /* connected (commands may be sent) */
    bool stopped;
    ev_timer retry;                 /* reconnect, and connect timeout */
    double backoff;
    unsigned failures;              /* in a row, to log only the first */
    /* Called once connected (again); may send commands. */
    void (*on_up)(struct redis_link *l);
    /* Called when an up link went down. Pending callbacks got NULL replies. */
    void (*on_down)(struct redis_link *l);
    void *ctx;                      /* the owner's */
};

/* Starts connecting. Returns -1 (logged) if url is invalid. */
int redis_link_start(struct redis_link *l, struct ev_loop *loop, const char *url, const char *name);
/* Disconnects for good (pending callbacks get NULL replies). */
void redis_link_stop(struct redis_link *l);
static inline bool redis_link_up(const struct redis_link *l) { return l->up; }
/* Queues a command (hiredis format). Returns -1 while the link is down or
 * the command cannot be queued; cb is then never called. cb may be NULL. */
int redis_link_command(struct redis_link *l, redisCallbackFn *cb, void *privdata, const char *fmt, ...);
int redis_link_command_argv(struct redis_link *l, redisCallbackFn *cb, void *privdata, int argc,
                            const char **argv, const size_t *argvlen);
/* Writes the queued commands to the socket now instead of at the next
 * poll: for a command that another node must see before this one answers
 * its client (a failed login counted in Redis before the NO goes out, so
 * the client's next try on another frontend meets the new count). */
void redis_link_flush(struct redis_link *l);

#endif
