/* A self-reconnecting asynchronous Redis connection (see redis_link.h). */
#include "redis_link.h"

#include "log.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/sds.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN 0.2
#define BACKOFF_MAX 5.0
#define CONNECT_TIMEOUT 5.0
/* Output queued for a Redis that does not read: beyond this, commands are
 * refused rather than buffered without bound. */
#define MAX_QUEUED (8u << 20)

int redis_url_parse(const char *url, struct redis_url *u, const char **why)
{
    *u = (struct redis_url){ .port = 6379 };
    if (strncmp(url, "redis://", 8) != 0)
        return *why = "it must start with redis://", -1;
    const char *p = url + 8, *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if ((size_t)(at - pw) >= sizeof u->password)
            return *why = "the password is too long", -1;
        memcpy(u->password, pw, (size_t)(at - pw));
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof u->host)
        return *why = "the host is missing or too long", -1;
    memcpy(u->host, p, hl);
    p += hl;
    char *end;
    if (*p == ':') {
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return *why = "the port must be a number from 1 to 65535", -1;
        u->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        long db = strtol(p + 1, &end, 10);
        if (*end || db < 0 || db > 100000)
            return *why = "the database must be a number", -1;
        u->db = (int)db;
    }
    return 0;
}

static void connect_now(struct redis_link *l);

static void schedule_retry(struct redis_link *l)
{
    if (l->stopped)
        return;
    double jitter = 0.75 + (double)(rand() % 500) / 1000.0;
    ev_timer_stop(l->loop, &l->retry);
    ev_timer_set(&l->retry, l->backoff * jitter, 0.);
    ev_timer_start(l->loop, &l->retry);
    l->backoff *= 2;
    if (l->backoff > BACKOFF_MAX)
        l->backoff = BACKOFF_MAX;
}

static void went_down(struct redis_link *l, const char *why)
{
    bool was_up = l->up;
    l->up = false;
    if (was_up || l->failures == 0)
        log_warn("\"redis unavailable, retrying in the background\" link=%s addr=%s:%d error=\"%s\"",
                 l->name, l->url.host, l->url.port, why ? why : "-");
    else
        log_debug("\"redis still unavailable\" link=%s error=\"%s\"", l->name, why ? why : "-");
    l->failures++;
    if (was_up && l->on_down)
        l->on_down(l);
    schedule_retry(l);
}

static void setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    struct redis_link *l = ac->data;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_error("\"redis %s failed\" link=%s error=\"%s\"", (const char *)priv, l ? l->name : "-",
                  reply->str);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct redis_link *l = ac->data;
    if (!l || l->ac != ac)
        return;
    if (status != REDIS_OK) {
        l->ac = NULL;   /* hiredis frees it after this callback */
        went_down(l, ac->errstr);
        return;
    }
    ev_timer_stop(l->loop, &l->retry);
    redisEnableKeepAlive(&ac->c);
    if (l->url.password[0])
        redisAsyncCommand(ac, setup_reply, "AUTH", "AUTH %s", l->url.password);
    if (l->url.db)
        redisAsyncCommand(ac, setup_reply, "SELECT", "SELECT %d", l->url.db);
    if (l->client_name[0])   /* who is who in CLIENT LIST */
        redisAsyncCommand(ac, setup_reply, "CLIENT SETNAME", "CLIENT SETNAME %s", l->client_name);
    l->up = true;
    l->backoff = BACKOFF_MIN;
    log_info("\"redis connected\" link=%s addr=%s:%d%s", l->name, l->url.host, l->url.port,
             l->failures ? " (again)" : "");
    l->failures = 0;
    if (l->on_up)
        l->on_up(l);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct redis_link *l = ac->data;
    if (!l || l->ac != ac)
        return;
    l->ac = NULL;   /* hiredis frees it after this callback */
    if (l->stopped) {
        l->up = false;
        return;
    }
    went_down(l, status == REDIS_OK ? "connection closed" : ac->errstr);
}

/* The retry timer: reconnects when idle, gives up a connect that hangs. */
static void on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct redis_link *l = t->data;
    if (l->stopped)
        return;
    if (l->ac && !l->up) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
        went_down(l, "connect timed out");
        return;
    }
    if (!l->ac)
        connect_now(l);
}

static void connect_now(struct redis_link *l)
{
    redisAsyncContext *ac = redisAsyncConnect(l->url.host, l->url.port);
    if (!ac || ac->err) {
        char why[128];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        went_down(l, why);
        return;
    }
    ac->data = l;
    if (redisLibevAttach(l->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        went_down(l, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    ev_timer_stop(l->loop, &l->retry);
    ev_timer_set(&l->retry, CONNECT_TIMEOUT, 0.);
    ev_timer_start(l->loop, &l->retry);
}

int redis_link_start(struct redis_link *l, struct ev_loop *loop, const char *url, const char *name)
{
    const char *why;
    l->loop = loop;
    l->name = name;
    l->backoff = BACKOFF_MIN;
    if (redis_url_parse(url, &l->url, &why) < 0) {
        log_error("\"invalid redis_url\" url=\"%s\" error=\"%s\"", url, why);
        return -1;
    }
    ev_init(&l->retry, on_retry);
    l->retry.data = l;
    connect_now(l);
    return 0;
}

void redis_link_stop(struct redis_link *l)
{
    l->stopped = true;
    l->up = false;
    ev_timer_stop(l->loop, &l->retry);
    if (l->ac) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        redisAsyncDisconnect(ac);
    }
}

void redis_link_flush(struct redis_link *l)
{
    if (l->up && l->ac)
        redisAsyncHandleWrite(l->ac);
}

int redis_link_command(struct redis_link *l, redisCallbackFn *cb, void *privdata, const char *fmt, ...)
{
    if (!l->up || !l->ac || sdslen(l->ac->c.obuf) > MAX_QUEUED)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(l->ac, cb, privdata, fmt, ap);
    va_end(ap);
    return rc == REDIS_OK ? 0 : -1;
}

int redis_link_command_argv(struct redis_link *l, redisCallbackFn *cb, void *privdata, int argc,
                            const char **argv, const size_t *argvlen)
{
    if (!l->up || !l->ac || sdslen(l->ac->c.obuf) > MAX_QUEUED)
        return -1;
    return redisAsyncCommandArgv(l->ac, cb, privdata, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}
