/* Cluster-wide session state in Redis: the session registry, kicks, the
 * POP3 maildrop lock and change notifications (see cluster_state.h). */
#include "cluster_state.h"

#include "log.h"
#include "redis_link.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ACCOUNT_BUCKETS 1024
#define PRUNE_BATCH "100"   /* set members checked per tick */

enum sub_state { SUB_NONE, SUB_SENT, SUB_ACTIVE, SUB_UNSUB_SENT };
enum lock_state { LOCK_NONE, LOCK_PENDING, LOCK_HELD, LOCK_DEGRADED, LOCK_RELEASING };

struct account {
    int64_t id;
    struct account *hnext;          /* hash chain */
    struct cs_entry *sessions;      /* registered sessions of this account */
    int nsessions;
    enum sub_state sub;
};

/* A session as this module knows it; outlives the session while a Redis
 * callback still points to it. */
struct cs_entry {
    struct session *s;              /* NULL once the session closed */
    const struct cluster_hooks *hooks;
    struct cs_entry *prev, *next;   /* every entry of the worker */
    struct cs_entry *aprev, *anext; /* the account's registered sessions */
    struct account *acct;
    bool registered;
    bool kicked;
    char *address;
    char *mailbox;
    long long started;
    enum lock_state lock;
    char lock_key[48];
    char lock_value[sizeof ((struct session *)0)->id + 16];
    void (*lock_cb)(struct session *s, enum cluster_lock_result r);
    void (*unlock_cb)(struct session *s);
    int refs;                       /* Redis callbacks in flight */
};

static struct {
    bool on;
    struct redis_link cmd, sub;
    ev_timer tick;
    long long session_ttl;          /* seconds */
    long long lock_ttl_ms;
    struct cs_entry *all;
    struct account *buckets[ACCOUNT_BUCKETS];
    bool lock_lost_logged;
} cs;

/* Renews our lock, or takes it again if it vanished (Redis restarted, or it
 * expired while Redis was unreachable). 1 renewed, 2 re-taken, 0 not ours. */
static const char LUA_RENEW[] =
    "local v = redis.call('get', KEYS[1]) "
    "if v == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end "
    "if not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end "
    "return 0";
static const char LUA_RELEASE[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
    "return 0";
/* Removes members of the global set whose session hash has expired. */
static const char LUA_PRUNE[] =
    "local n = 0 "
    "for _, id in ipairs(redis.call('srandmember', KEYS[1], tonumber(ARGV[1]))) do "
    "  if redis.call('exists', 'petrel:session:' .. id) == 0 then "
    "    redis.call('srem', KEYS[1], id) n = n + 1 end end "
    "return n";

/* ---- entries ---- */

static struct cs_entry *entry_of(struct session *s)
{
    if (s->cluster)
        return s->cluster;
    struct cs_entry *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->s = s;
    s->cluster = e;
    e->next = cs.all;
    if (cs.all)
        cs.all->prev = e;
    cs.all = e;
    return e;
}

static void entry_put(struct cs_entry *e)
{
    if (e->s || e->refs > 0)
        return;
    free(e->address);
    free(e->mailbox);
    free(e);
}

/* ---- accounts and subscriptions ---- */

static struct account **bucket(int64_t id)
{
    return &cs.buckets[(uint64_t)id % ACCOUNT_BUCKETS];
}

static struct account *account_find(int64_t id)
{
    for (struct account *a = *bucket(id); a; a = a->hnext)
        if (a->id == id)
            return a;
    return NULL;
}

static void account_free(struct account *a)
{
    for (struct account **pp = bucket(a->id); *pp; pp = &(*pp)->hnext)
        if (*pp == a) {
            *pp = a->hnext;
            break;
        }
    free(a);
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv);

static void subscribe(struct account *a)
{
    if (redis_link_command(&cs.sub, on_sub_reply, NULL, "SUBSCRIBE petrel:account:%lld",
                           (long long)a->id) == 0)
        a->sub = SUB_SENT;
}

static struct account *account_ref(int64_t id)
{
    struct account *a = account_find(id);
    if (!a) {
        a = calloc(1, sizeof *a);
        if (!a)
            abort();
        a->id = id;
        a->hnext = *bucket(id);
        *bucket(id) = a;
    }
    a->nsessions++;
    /* With an UNSUBSCRIBE in flight, its reply subscribes again: a SUBSCRIBE
     * sent now would have its callback dropped when that reply arrives. */
    if (a->sub == SUB_NONE)
        subscribe(a);
    return a;
}

/* The last session going leaves the subscription to the next tick, so a
 * client that reconnects right away does not cost two round trips. */
static void account_unref(struct account *a)
{
    a->nsessions--;
    if (a->nsessions == 0 && a->sub == SUB_NONE)
        account_free(a);
}

static void account_changed(struct account *a, int64_t mailbox_id, uint64_t modseq)
{
    struct cs_entry *next;
    for (struct cs_entry *e = a->sessions; e; e = next) {
        next = e->anext;
        if (e->s && e->hooks && e->hooks->changed)
            e->hooks->changed(e->s, mailbox_id, modseq);
    }
}

static void kick(const char *address, size_t len)
{
    int n = 0;
    for (struct cs_entry *e = cs.all; e; e = e->next) {
        if (!e->s || !e->registered || e->kicked || strlen(e->address) != len ||
            strncasecmp(e->address, address, len) != 0)
            continue;
        e->kicked = true;
        n++;
        log_info("\"session kicked by administrator\" session=%s user=%s", e->s->id, e->address);
        if (e->hooks && e->hooks->kick) {
            e->hooks->kick(e->s);
        } else {
            conn_puts(&e->s->conn, "* BYE Session kicked by administrator.\r\n");
            session_end(e->s, "kicked");
        }
    }
    if (n)
        log_debug("\"kick handled\" sessions=%d", n);
}

static bool parse_i64(const char *p, size_t len, int64_t *v)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    char *end;
    long long x = strtoll(tmp, &end, 10);
    if (*end)
        return false;
    *v = x;
    return true;
}

static void on_event(const char *channel, size_t clen, const char *payload, size_t plen)
{
    static const char pfx[] = "petrel:account:";
    int64_t id, mailbox_id = -1, modseq = 0;
    if (clen <= sizeof pfx - 1 || memcmp(channel, pfx, sizeof pfx - 1) != 0 ||
        !parse_i64(channel + sizeof pfx - 1, clen - (sizeof pfx - 1), &id))
        return;
    struct account *a = account_find(id);
    if (!a)
        return;
    /* "<mailbox_id> <modseq> [<session>]"; anything unreadable means "something". */
    const char *sp = memchr(payload, ' ', plen);
    size_t l1 = sp ? (size_t)(sp - payload) : plen;
    if (!parse_i64(payload, l1, &mailbox_id) || mailbox_id <= 0)
        mailbox_id = -1;
    if (sp) {
        const char *m = sp + 1, *sp2 = memchr(m, ' ', plen - l1 - 1);
        if (!parse_i64(m, sp2 ? (size_t)(sp2 - m) : plen - l1 - 1, &modseq) || modseq < 0)
            modseq = 0;
    }
    account_changed(a, mailbox_id, (uint64_t)modseq);
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *type = reply->element[0]->str;
    const char *channel = reply->element[1]->str;
    size_t clen = reply->element[1]->len;
    if (strcmp(type, "message") == 0) {
        const redisReply *p = reply->element[2];
        if (p->type != REDIS_REPLY_STRING)
            return;
        if (strcmp(channel, "petrel:kick") == 0)
            kick(p->str, p->len);
        else
            on_event(channel, clen, p->str, p->len);
        return;
    }
    if (strcmp(channel, "petrel:kick") == 0)
        return;
    static const char pfx[] = "petrel:account:";
    int64_t id;
    if (clen <= sizeof pfx - 1 || memcmp(channel, pfx, sizeof pfx - 1) != 0 ||
        !parse_i64(channel + sizeof pfx - 1, clen - (sizeof pfx - 1), &id))
        return;
    struct account *a = account_find(id);
    if (!a)
        return;
    if (strcmp(type, "subscribe") == 0 && a->sub == SUB_SENT) {
        a->sub = SUB_ACTIVE;
        /* Whatever happened before we listened (or while Redis was away). */
        account_changed(a, -1, 0);
    } else if (strcmp(type, "unsubscribe") == 0 && a->sub == SUB_UNSUB_SENT) {
        a->sub = SUB_NONE;
        if (a->nsessions > 0)
            subscribe(a);
        else
            account_free(a);
    }
}

static void sub_up(struct redis_link *l)
{
    redis_link_command(&cs.sub, on_sub_reply, NULL, "SUBSCRIBE petrel:kick");
    for (int i = 0; i < ACCOUNT_BUCKETS; i++) {
        struct account *next;
        for (struct account *a = cs.buckets[i]; a; a = next) {
            next = a->hnext;
            if (a->nsessions > 0)
                subscribe(a);
            else
                account_free(a);
        }
    }
}

static void sub_down(struct redis_link *l)
{
    for (int i = 0; i < ACCOUNT_BUCKETS; i++) {
        struct account *next;
        for (struct account *a = cs.buckets[i]; a; a = next) {
            next = a->hnext;
            a->sub = SUB_NONE;
            if (a->nsessions == 0)
                account_free(a);
        }
    }
}

/* ---- registry ---- */

static void write_session(struct cs_entry *e)
{
    struct session *s = e->s;
    char key[sizeof ((struct session *)0)->id + 32], worker[16], started[24], acct[24], ttl[24];
    snprintf(key, sizeof key, "petrel:session:%s", s->id);
    snprintf(worker, sizeof worker, "%d", frontend->worker);
    snprintf(started, sizeof started, "%lld", e->started);
    snprintf(acct, sizeof acct, "%" PRId64, s->account_id);
    snprintf(ttl, sizeof ttl, "%lld", cs.session_ttl);
    const char *hset[] = { "HSET", key, "account", e->address, "account_id", acct,
                           "protocol", s->proto->name, "node", frontend->cfg->node,
                           "worker", worker, "client", s->client_ip, "started", started,
                           "mailbox", e->mailbox ? e->mailbox : "" };
    if (redis_link_command_argv(&cs.cmd, NULL, NULL, sizeof hset / sizeof hset[0], hset, NULL) < 0)
        return;
    redis_link_command(&cs.cmd, NULL, NULL, "EXPIRE %s %s", key, ttl);
    redis_link_command(&cs.cmd, NULL, NULL, "SADD petrel:sessions:%s %s", e->address, s->id);
    /* The per-address set lives as long as some session refreshes it. */
    redis_link_command(&cs.cmd, NULL, NULL, "EXPIRE petrel:sessions:%s %s", e->address, ttl);
    redis_link_command(&cs.cmd, NULL, NULL, "SADD petrel:sessions %s", s->id);
}

static void on_renewed(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    struct cs_entry *e = priv;
    e->refs--;
    if (e->s && reply && reply->type == REDIS_REPLY_INTEGER &&
        (e->lock == LOCK_HELD || e->lock == LOCK_DEGRADED)) {
        if (reply->integer > 0) {
            if (e->lock == LOCK_DEGRADED)
                log_info("\"pop3 lock taken after degraded login\" session=%s", e->s->id);
            e->lock = LOCK_HELD;
        } else if (e->lock == LOCK_HELD || !cs.lock_lost_logged) {
            log_warn("\"pop3 lock held by another session; this one goes on\" session=%s key=%s",
                     e->s->id, e->lock_key);
            cs.lock_lost_logged = true;
            e->lock = LOCK_DEGRADED;
        }
    }
    entry_put(e);
}

static void refresh_all(void)
{
    if (!redis_link_up(&cs.cmd))
        return;
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", cs.lock_ttl_ms);
    for (struct cs_entry *e = cs.all; e; e = e->next) {
        if (!e->s)
            continue;
        if (e->registered)
            write_session(e);
        if ((e->lock == LOCK_HELD || e->lock == LOCK_DEGRADED) &&
            redis_link_command(&cs.cmd, on_renewed, e, "EVAL %s 1 %s %s %s", LUA_RENEW, e->lock_key,
                               e->lock_value, ms) == 0)
            e->refs++;
    }
}

static void cmd_up(struct redis_link *l)
{
    refresh_all();
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    refresh_all();
    redis_link_command(&cs.cmd, NULL, NULL, "EVAL %s 1 petrel:sessions %s", LUA_PRUNE, PRUNE_BATCH);
    if (!redis_link_up(&cs.sub))
        return;
    for (int i = 0; i < ACCOUNT_BUCKETS; i++)
        for (struct account *a = cs.buckets[i]; a; a = a->hnext)
            if (a->nsessions == 0 && (a->sub == SUB_SENT || a->sub == SUB_ACTIVE) &&
                redis_link_command(&cs.sub, NULL, NULL, "UNSUBSCRIBE petrel:account:%lld",
                                   (long long)a->id) == 0)
                a->sub = SUB_UNSUB_SENT;
}

int cluster_state_start(void)
{
    const struct frontend_settings *c = frontend->cfg;
    cs.session_ttl = c->session_ttl;
    cs.lock_ttl_ms = c->pop3_lock_ttl * 1000;
    if (!c->redis_url || !*c->redis_url) {
        log_info("\"cluster state off (no redis_url): no session registry, kicks, POP3 locks or push\"");
        return 0;
    }
    cs.cmd.on_up = cmd_up;
    cs.sub.on_up = sub_up;
    cs.sub.on_down = sub_down;
    snprintf(cs.cmd.client_name, sizeof cs.cmd.client_name, "petrel-frontend-%s-%d-commands",
             c->node, frontend->worker);
    snprintf(cs.sub.client_name, sizeof cs.sub.client_name, "petrel-frontend-%s-%d-subscriber",
             c->node, frontend->worker);
    if (redis_link_start(&cs.cmd, frontend->loop, c->redis_url, "commands") < 0 ||
        redis_link_start(&cs.sub, frontend->loop, c->redis_url, "subscriber") < 0)
        return -1;
    cs.on = true;
    double every = (double)(c->session_ttl < c->pop3_lock_ttl ? c->session_ttl : c->pop3_lock_ttl) / 3;
    ev_timer_init(&cs.tick, on_tick, every, every);
    ev_timer_start(frontend->loop, &cs.tick);
    ev_unref(frontend->loop);   /* the tick alone does not keep the loop alive */
    return 0;
}

struct redis_link *cluster_redis(void)
{
    return cs.on ? &cs.cmd : NULL;
}

void cluster_session_login(struct session *s, const struct cluster_hooks *hooks)
{
    if (!cs.on || !s->user)
        return;
    struct cs_entry *e = entry_of(s);
    if (e->registered)
        return;
    e->hooks = hooks;
    e->address = strdup(s->user);
    if (!e->address)
        abort();
    e->started = (long long)time(NULL);
    e->registered = true;
    e->acct = account_ref(s->account_id);
    e->anext = e->acct->sessions;
    if (e->anext)
        e->anext->aprev = e;
    e->acct->sessions = e;
    write_session(e);
}

void cluster_session_mailbox(struct session *s, const char *mailbox)
{
    struct cs_entry *e = s->cluster;
    if (!cs.on || !e || !e->registered)
        return;
    free(e->mailbox);
    e->mailbox = mailbox && *mailbox ? strdup(mailbox) : NULL;
    char key[sizeof ((struct session *)0)->id + 32];
    snprintf(key, sizeof key, "petrel:session:%s", s->id);
    /* The EXPIRE too: after a Redis restart HSET alone would make a key
     * that never expires. */
    if (redis_link_command(&cs.cmd, NULL, NULL, "HSET %s mailbox %s", key,
                           e->mailbox ? e->mailbox : "") == 0)
        redis_link_command(&cs.cmd, NULL, NULL, "EXPIRE %s %lld", key, cs.session_ttl);
}

bool cluster_push_ok(const struct session *s)
{
    const struct cs_entry *e = s->cluster;
    return cs.on && e && e->acct && e->acct->sub == SUB_ACTIVE && redis_link_up(&cs.sub);
}

static void release_lock(struct cs_entry *e, redisCallbackFn *cb)
{
    if (redis_link_command(&cs.cmd, cb, e, "EVAL %s 1 %s %s", LUA_RELEASE, e->lock_key,
                           e->lock_value) == 0 && cb)
        e->refs++;
}

void cluster_session_closed(struct session *s)
{
    struct cs_entry *e = s->cluster;
    if (!e)
        return;
    s->cluster = NULL;
    e->s = NULL;
    if (e->prev)
        e->prev->next = e->next;
    else
        cs.all = e->next;
    if (e->next)
        e->next->prev = e->prev;
    if (e->registered) {
        if (e->aprev)
            e->aprev->anext = e->anext;
        else
            e->acct->sessions = e->anext;
        if (e->anext)
            e->anext->aprev = e->aprev;
        account_unref(e->acct);
        e->acct = NULL;
        char key[sizeof ((struct session *)0)->id + 32];
        snprintf(key, sizeof key, "petrel:session:%s", s->id);
        if (redis_link_command(&cs.cmd, NULL, NULL, "DEL %s", key) == 0) {
            redis_link_command(&cs.cmd, NULL, NULL, "SREM petrel:sessions:%s %s", e->address, s->id);
            redis_link_command(&cs.cmd, NULL, NULL, "SREM petrel:sessions %s", s->id);
        }
    }
    /* A pending SET NX releases from its callback. */
    if (e->lock == LOCK_HELD || e->lock == LOCK_DEGRADED)
        release_lock(e, NULL);
    entry_put(e);
}

/* ---- the POP3 maildrop lock ---- */

static void on_locked(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    struct cs_entry *e = priv;
    enum cluster_lock_result res;
    e->refs--;
    if (reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0) {
        e->lock = LOCK_HELD;
        res = CLUSTER_LOCK_OK;
    } else if (reply && reply->type == REDIS_REPLY_NIL) {
        e->lock = LOCK_NONE;
        res = CLUSTER_LOCK_BUSY;
    } else {
        log_warn("\"pop3 lock unavailable (redis: %s); allowing the login without it\" key=%s",
                 reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "connection lost",
                 e->lock_key);
        e->lock = LOCK_DEGRADED;
        res = CLUSTER_LOCK_DEGRADED;
    }
    void (*cb)(struct session *, enum cluster_lock_result) = e->lock_cb;
    e->lock_cb = NULL;
    if (!e->s) {
        if (e->lock == LOCK_HELD)
            release_lock(e, NULL);
        entry_put(e);
        return;
    }
    cb(e->s, res);
}

void cluster_pop3_lock(struct session *s, void (*cb)(struct session *s, enum cluster_lock_result r))
{
    if (!cs.on) {
        cb(s, CLUSTER_LOCK_OK);
        return;
    }
    struct cs_entry *e = entry_of(s);
    snprintf(e->lock_key, sizeof e->lock_key, "petrel:pop3lock:%" PRId64, s->account_id);
    snprintf(e->lock_value, sizeof e->lock_value, "%s@%ld", s->id, (long)getpid());
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", cs.lock_ttl_ms);
    e->lock_cb = cb;
    if (redis_link_command(&cs.cmd, on_locked, e, "SET %s %s NX PX %s", e->lock_key, e->lock_value,
                           ms) == 0) {
        e->lock = LOCK_PENDING;
        e->refs++;
        return;
    }
    log_warn("\"pop3 lock unavailable (redis down); allowing the login without it\" session=%s key=%s",
             s->id, e->lock_key);
    e->lock = LOCK_DEGRADED;
    e->lock_cb = NULL;
    cb(s, CLUSTER_LOCK_DEGRADED);
}

static void on_unlocked(redisAsyncContext *ac, void *r, void *priv)
{
    struct cs_entry *e = priv;
    e->refs--;
    e->lock = LOCK_NONE;
    void (*cb)(struct session *) = e->unlock_cb;
    e->unlock_cb = NULL;
    if (e->s && cb)
        cb(e->s);
    entry_put(e);
}

void cluster_pop3_unlock(struct session *s, void (*cb)(struct session *s))
{
    struct cs_entry *e = s->cluster;
    if (!cs.on || !e || (e->lock != LOCK_HELD && e->lock != LOCK_DEGRADED)) {
        cb(s);
        return;
    }
    int refs = e->refs;
    e->unlock_cb = cb;
    e->lock = LOCK_RELEASING;
    release_lock(e, on_unlocked);
    if (e->refs == refs) {   /* not sent: Redis is down, the lock expires */
        e->lock = LOCK_NONE;
        e->unlock_cb = NULL;
        cb(s);
    }
}
