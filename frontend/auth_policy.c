/* Cleartext policy and authentication throttling (see auth_policy.h). */
#include "auth_policy.h"

#include "cluster_state.h"
#include "log.h"
#include "redis_link.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct security_config security;

/* ---- configuration ---- */

static int parse_policy(const char *s, size_t n, enum plaintext_policy *p)
{
    if (n == 8 && strncasecmp(s, "loopback", 8) == 0)
        *p = PLAINTEXT_LOOPBACK;
    else if (n == 6 && strncasecmp(s, "always", 6) == 0)
        *p = PLAINTEXT_ALWAYS;
    else if (n == 5 && strncasecmp(s, "never", 5) == 0)
        *p = PLAINTEXT_NEVER;
    else
        return -1;
    return 0;
}

static bool known_listener(const char *s, size_t n)
{
    static const char *const names[] = { "imap", "imaps", "pop3", "pop3s", "lmtp" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && strncmp(names[i], s, n) == 0)
            return true;
    return false;
}

/* "loopback" or "loopback,pop3=always,imaps=never". */
static int parse_plaintext(const char *text, char *err, size_t errlen)
{
    security.plaintext = PLAINTEXT_LOOPBACK;
    security.noverrides = 0;
    bool have_default = false;
    for (const char *p = text; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ", ");
        const char *eq = memchr(p, '=', n);
        enum plaintext_policy pol;
        if (!eq) {
            if (have_default || parse_policy(p, n, &pol) < 0)
                goto bad;
            security.plaintext = pol;
            have_default = true;
        } else {
            size_t ln = (size_t)(eq - p);
            if (!known_listener(p, ln) || parse_policy(eq + 1, n - ln - 1, &pol) < 0 ||
                security.noverrides == 8)
                goto bad;
            snprintf(security.plaintext_override[security.noverrides].listener, 16, "%.*s", (int)ln, p);
            security.plaintext_override[security.noverrides++].policy = pol;
        }
        p += n;
        continue;
    bad:
        snprintf(err, errlen, "plaintext_auth: \"%.*s\" is not loopback, always, never or LISTENER=one of them",
                 (int)n, p);
        return -1;
    }
    return 0;
}

static int parse_listeners(const char *text, char *err, size_t errlen)
{
    security.nproxy = 0;
    for (const char *p = text; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ", ");
        if (!known_listener(p, n) || security.nproxy == 8) {
            snprintf(err, errlen, "proxy_protocol: \"%.*s\" is not a listener (imap, imaps, pop3, pop3s, lmtp)",
                     (int)n, p);
            return -1;
        }
        snprintf(security.proxy_listeners[security.nproxy++], 16, "%.*s", (int)n, p);
        p += n;
    }
    return 0;
}

int auth_policy_configure(const struct frontend_settings *c, char *err, size_t errlen)
{
    char why[200];
    if (parse_plaintext(c->plaintext_auth, err, errlen) < 0 ||
        parse_listeners(c->proxy_protocol, err, errlen) < 0)
        return -1;
    if (cidr_parse_list(c->secure_networks, &security.secure_networks, why, sizeof why) < 0) {
        snprintf(err, errlen, "secure_networks: %s", why);
        return -1;
    }
    if (cidr_parse_list(c->throttle_exempt, &security.throttle_exempt, why, sizeof why) < 0) {
        snprintf(err, errlen, "throttle_exempt: %s", why);
        return -1;
    }
    if (cidr_parse_list(c->proxy_trusted, &security.proxy_trusted, why, sizeof why) < 0) {
        snprintf(err, errlen, "proxy_trusted: %s", why);
        return -1;
    }
    if (security.nproxy && security.proxy_trusted.n == 0) {
        snprintf(err, errlen, "proxy_protocol is set but proxy_trusted is empty: no proxy could connect");
        return -1;
    }
    return 0;
}

bool proxy_listener(const char *name)
{
    for (int i = 0; i < security.nproxy; i++)
        if (strcmp(security.proxy_listeners[i], name) == 0)
            return true;
    return false;
}

/* ---- cleartext ---- */

bool auth_allowed(const struct session *s)
{
    if (s->tls || s->secured)
        return true;
    enum plaintext_policy pol = security.plaintext;
    for (int i = 0; i < security.noverrides; i++)
        if (s->listener && strcmp(security.plaintext_override[i].listener, s->listener) == 0)
            pol = security.plaintext_override[i].policy;
    switch (pol) {
    case PLAINTEXT_ALWAYS:
        return true;
    case PLAINTEXT_NEVER:
        return false;
    default:
        return cidr_match(&security.secure_networks, s->client_ip);
    }
}

/* ---- keys ---- */

#define KEY_MAX 320

/* petrel:authfail:ip:<ip>; "" when the address is exempt. */
static void ip_key(const struct session *s, char *out, size_t n)
{
    if (cidr_match(&security.throttle_exempt, s->client_ip))
        *out = '\0';
    else
        snprintf(out, n, "petrel:authfail:ip:%s", s->client_ip);
}

/* petrel:authfail:user:<lower-cased address>, or :sha256:<hex> when long;
 * "" when there is no user name. */
static void user_key(const char *user, char *out, size_t n)
{
    size_t len = user ? strlen(user) : 0;
    if (len == 0) {
        *out = '\0';
        return;
    }
    if (len <= 256) {
        size_t k = (size_t)snprintf(out, n, "petrel:authfail:user:");
        for (size_t i = 0; i < len && k + 1 < n; i++)
            out[k++] = (char)tolower((unsigned char)user[i]);
        out[k] = '\0';
        return;
    }
    unsigned char md[32];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tolower((unsigned char)user[i]);
        EVP_DigestUpdate(ctx, &c, 1);
    }
    EVP_DigestFinal_ex(ctx, md, NULL);
    EVP_MD_CTX_free(ctx);
    size_t k = (size_t)snprintf(out, n, "petrel:authfail:user:sha256:");
    for (int i = 0; i < 32 && k + 2 < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%02x", md[i]);
}

/* ---- the per-worker fallback table: 4-way buckets of hashed keys ---- */

struct local_entry {
    unsigned char key[16];
    long count;
    double expires;
};
static struct local_entry local[AUTH_LOCAL_ENTRIES];

static void key_hash(const char *key, unsigned char out[16])
{
    unsigned char md[32];
    unsigned int mdlen;
    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
    memcpy(out, md, 16);
}

/* The entry of key (live), or NULL; with create, a slot for it (an empty or
 * expired one, else the one expiring first). */
static struct local_entry *local_find(const char *key, bool create)
{
    unsigned char h[16];
    key_hash(key, h);
    uint32_t b;
    memcpy(&b, h, sizeof b);
    struct local_entry *set = &local[(b % (AUTH_LOCAL_ENTRIES / 4)) * 4], *victim = &set[0];
    double now = ev_now(frontend->loop);
    for (int i = 0; i < 4; i++) {
        if (memcmp(set[i].key, h, 16) == 0 && set[i].expires > now)
            return &set[i];
        if (set[i].expires < victim->expires)
            victim = &set[i];
    }
    if (!create)
        return NULL;
    memcpy(victim->key, h, 16);
    victim->count = 0;
    victim->expires = now;
    return victim;
}

static long local_get(const char *key)
{
    if (!*key)
        return 0;
    struct local_entry *e = local_find(key, false);
    return e ? e->count : 0;
}

static void local_fail(const char *key)
{
    if (!*key)
        return;
    struct local_entry *e = local_find(key, true);
    e->count++;
    e->expires = ev_now(frontend->loop) + (double)frontend->cfg->auth_failure_window;
}

static void local_reset(const char *key)
{
    struct local_entry *e = *key ? local_find(key, false) : NULL;
    if (e)
        memset(e, 0, sizeof *e);
}

/* ---- checks ---- */

/* A session's check, kept after cb (for its user) until auth_result, the
 * next check or the end of the session. */
struct auth_wait {
    struct session *s;          /* NULL once the session closed */
    auth_check_cb *cb;          /* NULL once called */
    char *user;
    char *secret;
    ev_timer timer;
    bool redis_pending;
    enum auth_verdict verdict;
    char ipkey[96], userkey[KEY_MAX];
};

static void wipe_secret(struct auth_wait *w)
{
    if (w->secret) {
        explicit_bzero(w->secret, strlen(w->secret));
        free(w->secret);
        w->secret = NULL;
    }
}

static void wait_free(struct auth_wait *w)
{
    wipe_secret(w);
    free(w->user);
    free(w);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct auth_wait *w = t->data;
    auth_check_cb *cb = w->cb;
    w->cb = NULL;
    cb(w->s, w->verdict, w->user ? w->user : "", w->secret);
    /* cb may have ended the session, or started another check. */
    if (!w->s || w->s->auth_wait != w)
        return;
    wipe_secret(w);
}

static double delay_for(long failures)
{
    const struct frontend_settings *c = frontend->cfg;
    if (failures <= 0 || c->auth_failure_delay_ms <= 0)
        return 0;
    double ms = (double)c->auth_failure_delay_ms;
    for (long i = 1; i < failures && ms < (double)c->auth_failure_delay_max_ms; i++)
        ms *= 2;
    if (ms > (double)c->auth_failure_delay_max_ms)
        ms = (double)c->auth_failure_delay_max_ms;
    return ms / 1000;
}

static void decide(struct auth_wait *w, long ipn, long usern)
{
    const struct frontend_settings *c = frontend->cfg;
    double delay = 0;
    if ((c->auth_lockout_ip > 0 && ipn >= c->auth_lockout_ip) ||
        (c->auth_lockout_account > 0 && usern >= c->auth_lockout_account)) {
        w->verdict = AUTH_LOCKED;
        log_info("\"authentication throttled: locked out\" session=%s client=%s ip_failures=%ld "
                 "account_failures=%ld", w->s->id, w->s->client_ip, ipn, usern);
    } else {
        w->verdict = AUTH_GO;
        delay = delay_for(ipn);
        if (delay > 0)
            log_info("\"authentication delayed\" session=%s client=%s ip_failures=%ld delay=%.3f",
                     w->s->id, w->s->client_ip, ipn, delay);
    }
    ev_timer_init(&w->timer, on_timer, delay, 0);
    w->timer.data = w;
    ev_timer_start(frontend->loop, &w->timer);
}

static long reply_int(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return (long)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtol(r->str, NULL, 10);
    return 0;
}

static void on_counts(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    struct auth_wait *w = priv;
    w->redis_pending = false;
    if (!w->s) {
        wait_free(w);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        decide(w, local_get(w->ipkey), local_get(w->userkey));
        return;
    }
    decide(w, reply_int(reply->element[0]), reply_int(reply->element[1]));
}

void auth_throttle_check(struct session *s, const char *user, const char *secret, auth_check_cb *cb)
{
    if (s->auth_wait)   /* a caller bug; the old check is dropped */
        auth_session_closed(s);
    struct auth_wait *w = calloc(1, sizeof *w);
    if (!w || (secret && !(w->secret = strdup(secret))) || !(w->user = strdup(user ? user : "")))
        abort();
    w->s = s;
    w->cb = cb;
    s->auth_wait = w;
    ip_key(s, w->ipkey, sizeof w->ipkey);
    user_key(user, w->userkey, sizeof w->userkey);
    struct redis_link *l = cluster_redis();
    /* MGET of "" answers nil: counts 0. */
    if (l && redis_link_command(l, on_counts, w, "MGET %s %s", w->ipkey, w->userkey) == 0) {
        w->redis_pending = true;
        return;
    }
    decide(w, local_get(w->ipkey), local_get(w->userkey));
}

void auth_result(struct session *s, const char *user, bool ok)
{
    char ipk[96], userk[KEY_MAX];
    ip_key(s, ipk, sizeof ipk);
    if (!user)
        user = s->auth_wait ? s->auth_wait->user : "";
    user_key(user, userk, sizeof userk);
    struct redis_link *l = cluster_redis();
    bool up = l && redis_link_up(l);
    if (ok) {
        if (*userk && up)
            redis_link_command(l, NULL, NULL, "DEL %s", userk);
        local_reset(userk);
        return;
    }
    log_info("\"authentication failure counted\" session=%s client=%s", s->id, s->client_ip);
    const char *keys[2] = { ipk, userk };
    for (int i = 0; i < 2; i++) {
        if (!*keys[i])
            continue;
        if (up && redis_link_command(l, NULL, NULL, "INCR %s", keys[i]) == 0)
            redis_link_command(l, NULL, NULL, "EXPIRE %s %ld", keys[i], frontend->cfg->auth_failure_window);
        else
            local_fail(keys[i]);
    }
    /* The caller answers NO next, and our output now goes out before the
     * loop polls again: without this the client could retry on another
     * frontend before the INCR had left this process. */
    if (up)
        redis_link_flush(l);
}

void auth_session_closed(struct session *s)
{
    struct auth_wait *w = s->auth_wait;
    if (!w)
        return;
    s->auth_wait = NULL;
    w->s = NULL;
    if (ev_is_active(&w->timer))
        ev_timer_stop(frontend->loop, &w->timer);
    if (!w->redis_pending)
        wait_free(w);
    else
        wipe_secret(w);
}
