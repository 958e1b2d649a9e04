/* Per-address and per-account connection limits (see conn_limits.h). */
#include "conn_limits.h"

#include "auth_policy.h"
#include "cluster_state.h"
#include "log.h"
#include "redis_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_BUCKETS 4096

/* Drops expired members, then adds ARGV[3] if fewer than ARGV[1] remain
 * (1), else 0. ARGV[2]: seconds a member lives unrefreshed. */
static const char LUA_ADD[] =
    "local t = tonumber(redis.call('time')[1]) "
    "redis.call('zremrangebyscore', KEYS[1], '-inf', t) "
    "if not redis.call('zscore', KEYS[1], ARGV[3]) and "
    "   redis.call('zcard', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end "
    "redis.call('zadd', KEYS[1], t + tonumber(ARGV[2]), ARGV[3]) "
    "redis.call('expire', KEYS[1], ARGV[2]) "
    "return 1";
static const char LUA_REFRESH[] =
    "local t = tonumber(redis.call('time')[1]) "
    "redis.call('zadd', KEYS[1], t + tonumber(ARGV[1]), ARGV[2]) "
    "redis.call('expire', KEYS[1], ARGV[1]) "
    "return 1";

enum { SLOT_IP, SLOT_USER, NSLOTS };

struct slot {
    char key[400];               /* Redis key; "" when not held */
    bool counted;                /* in the local table */
};

struct conn_slots {
    struct session *s;           /* NULL once the session closed */
    struct conn_slots *prev, *next;
    struct slot slot[NSLOTS];
    int pending;                 /* Redis callbacks in flight */
    void (*start)(struct session *s);
    void (*account_cb)(struct session *s, bool ok);
};

static struct conn_slots *all;
static ev_timer tick;
static bool tick_on;

/* ---- the local table: key -> connections of this worker ---- */

struct local_count {
    struct local_count *next;
    long n;
    char key[];
};
static struct local_count *buckets[LOCAL_BUCKETS];

static struct local_count **local_where(const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    struct local_count **pp = &buckets[h % LOCAL_BUCKETS];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static long local_get(const char *key)
{
    struct local_count *e = *local_where(key);
    return e ? e->n : 0;
}

static void local_add(const char *key, long d)
{
    struct local_count **pp = local_where(key), *e = *pp;
    if (!e) {
        if (d <= 0)
            return;
        size_t len = strlen(key);
        e = calloc(1, sizeof *e + len + 1);
        if (!e)
            abort();
        memcpy(e->key, key, len + 1);
        *pp = e;
    }
    e->n += d;
    if (e->n <= 0) {
        *pp = e->next;
        free(e);
    }
}

/* ---- bookkeeping ---- */

static void refresh(struct ev_loop *loop, ev_timer *t, int revents);

static struct conn_slots *slots_of(struct session *s)
{
    if (s->slots)
        return s->slots;
    struct conn_slots *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->s = s;
    s->slots = c;
    c->next = all;
    if (all)
        all->prev = c;
    all = c;
    if (!tick_on) {
        double every = (double)frontend->cfg->session_ttl / 3;
        ev_timer_init(&tick, refresh, every, every);
        ev_timer_start(frontend->loop, &tick);
        ev_unref(frontend->loop);   /* the timer alone does not keep the loop alive */
        tick_on = true;
    }
    return c;
}

static void slots_put(struct conn_slots *c)
{
    if (c->s || c->pending > 0)
        return;
    free(c);
}

/* The slot is ours: count it locally (the fallback's view). */
static void hold(struct conn_slots *c, int i)
{
    c->slot[i].counted = true;
    local_add(c->slot[i].key, 1);
}

static void refresh(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct redis_link *l = cluster_redis();
    if (!l || !redis_link_up(l))
        return;
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%ld", frontend->cfg->session_ttl);
    for (struct conn_slots *c = all; c; c = c->next)
        for (int i = 0; i < NSLOTS; i++)
            if (c->s && c->slot[i].counted)
                redis_link_command(l, NULL, NULL, "EVAL %s 1 %s %s %s", LUA_REFRESH, c->slot[i].key,
                                   ttl, c->s->id);
}

/* Sends the atomic check-and-add for slot i; false when Redis is not there. */
static bool ask_redis(struct conn_slots *c, int i, long limit, redisCallbackFn *cb)
{
    struct redis_link *l = cluster_redis();
    if (!l)
        return false;
    char lim[24], ttl[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    snprintf(ttl, sizeof ttl, "%ld", frontend->cfg->session_ttl);
    if (redis_link_command(l, cb, c, "EVAL %s 1 %s %s %s %s", LUA_ADD, c->slot[i].key, lim, ttl,
                           c->s->id) < 0)
        return false;
    c->pending++;
    return true;
}

/* 1 admitted, 0 refused, -1 no answer (decide locally). */
static int verdict(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return -1;
    return r->integer == 1;
}

/* ---- per address, before the greeting ---- */

static void refuse(struct session *s)
{
    log_warn("\"connection refused: max_connections_per_ip reached\" session=%s client=%s limit=%ld",
             s->id, s->client_ip, frontend->cfg->max_connections_per_ip);
    if (strcmp(s->proto->name, "imap") == 0)
        conn_puts(&s->conn, "* BYE [LIMIT] Too many connections from your address.\r\n");
    else if (strcmp(s->proto->name, "pop3") == 0)
        conn_puts(&s->conn, "-ERR [SYS/TEMP] Too many connections from your address.\r\n");
    session_end(s, "too many connections from the address");
}

static void admit_decided(struct conn_slots *c, bool ok)
{
    struct session *s = c->s;
    if (!ok) {
        c->slot[SLOT_IP].key[0] = '\0';
        refuse(s);
        return;
    }
    hold(c, SLOT_IP);
    conn_resume(&s->conn);
    c->start(s);
}

static void on_admit(redisAsyncContext *ac, void *r, void *priv)
{
    struct conn_slots *c = priv;
    c->pending--;
    if (!c->s) {
        slots_put(c);
        return;
    }
    int v = verdict(r);
    if (v < 0)
        v = local_get(c->slot[SLOT_IP].key) < frontend->cfg->max_connections_per_ip;
    admit_decided(c, v == 1);
}

void conn_limits_admit(struct session *s, void (*start)(struct session *s))
{
    long limit = frontend->cfg->max_connections_per_ip;
    if (limit <= 0 || strcmp(s->proto->name, "lmtp") == 0 ||
        cidr_match(&security.throttle_exempt, s->client_ip)) {
        start(s);
        return;
    }
    struct conn_slots *c = slots_of(s);
    c->start = start;
    snprintf(c->slot[SLOT_IP].key, sizeof c->slot[SLOT_IP].key, "petrel:conn:ip:%s", s->client_ip);
    if (ask_redis(c, SLOT_IP, limit, on_admit)) {
        conn_pause(&s->conn);
        return;
    }
    admit_decided(c, local_get(c->slot[SLOT_IP].key) < limit);
}

/* ---- per account and address, after the password ---- */

static void account_decided(struct conn_slots *c, bool ok)
{
    if (ok)
        hold(c, SLOT_USER);
    else {
        log_warn("\"login refused: max_connections_per_account reached\" session=%s user=%s client=%s "
                 "limit=%ld", c->s->id, c->s->user, c->s->client_ip,
                 frontend->cfg->max_connections_per_account);
        c->slot[SLOT_USER].key[0] = '\0';
    }
    void (*cb)(struct session *, bool) = c->account_cb;
    c->account_cb = NULL;
    cb(c->s, ok);
}

static void on_account(redisAsyncContext *ac, void *r, void *priv)
{
    struct conn_slots *c = priv;
    c->pending--;
    if (!c->s) {
        slots_put(c);
        return;
    }
    int v = verdict(r);
    if (v < 0)
        v = local_get(c->slot[SLOT_USER].key) < frontend->cfg->max_connections_per_account;
    account_decided(c, v == 1);
}

void conn_limits_account(struct session *s, void (*cb)(struct session *s, bool ok))
{
    long limit = frontend->cfg->max_connections_per_account;
    if (limit <= 0 || !s->user || cidr_match(&security.throttle_exempt, s->client_ip)) {
        cb(s, true);
        return;
    }
    struct conn_slots *c = slots_of(s);
    struct slot *sl = &c->slot[SLOT_USER];
    if (sl->counted) {   /* already holds one (a second login cannot happen) */
        cb(s, true);
        return;
    }
    snprintf(sl->key, sizeof sl->key, "petrel:conn:user:%s/%s", s->client_ip, s->user);
    c->account_cb = cb;
    if (ask_redis(c, SLOT_USER, limit, on_account))
        return;
    account_decided(c, local_get(sl->key) < limit);
}

void conn_limits_closed(struct session *s)
{
    struct conn_slots *c = s->slots;
    if (!c)
        return;
    s->slots = NULL;
    struct redis_link *l = cluster_redis();
    for (int i = 0; i < NSLOTS; i++) {
        struct slot *sl = &c->slot[i];
        if (!sl->key[0])
            continue;
        if (sl->counted)
            local_add(sl->key, -1);
        /* Also while our check is in flight: Redis runs this after it. */
        if (l)
            redis_link_command(l, NULL, NULL, "ZREM %s %s", sl->key, s->id);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->s = NULL;
    slots_put(c);
}
