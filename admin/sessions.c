/* Session registry commands. The frontends keep, in Redis:
 *   petrel:session:<id>        hash: account protocol node worker client
 *                              started mailbox (expires unless refreshed)
 *   petrel:sessions:<address>  set of that account's session ids
 *   petrel:sessions            set of all session ids
 * Set members outlive their hashes when a frontend dies, so a member whose
 * hash is gone is not a live session. Kicking PUBLISHes the address on
 * petrel:kick; each frontend closes that account's sessions itself. */
#include "admin.h"

#include "redis_link.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool reply_ok(redisContext *c, redisReply *r, const char *what)
{
    if (r && r->type != REDIS_REPLY_ERROR)
        return true;
    fail(EXIT_FAIL, "redis %s failed: %s", what, r ? r->str : c->errstr);
    freeReplyObject(r);
    return false;
}

static redisContext *redis_open(const struct admin_opts *o)
{
    struct redis_url u;
    const char *why;
    if (!o->redis_url || !*o->redis_url) {
        fail(EXIT_FAIL, "no Redis given: set PETREL_REDIS_URL or pass --redis URL");
        return NULL;
    }
    if (redis_url_parse(o->redis_url, &u, &why) < 0) {
        fail(EXIT_USAGE, "invalid Redis URL \"%s\": %s", o->redis_url, why);
        return NULL;
    }
    redisContext *c = redisConnectWithTimeout(u.host, u.port, (struct timeval){ .tv_sec = 5 });
    if (!c || c->err) {
        fail(EXIT_FAIL, "cannot connect to Redis at %s:%d: %s", u.host, u.port,
             c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisReply *r = NULL;
    if (u.password[0] && !reply_ok(c, r = redisCommand(c, "AUTH %s", u.password), "AUTH"))
        goto fail;
    freeReplyObject(r);
    r = NULL;
    if (u.db && !reply_ok(c, r = redisCommand(c, "SELECT %d", u.db), "SELECT"))
        goto fail;
    freeReplyObject(r);
    return c;
fail:
    redisFree(c);
    return NULL;
}

struct session {
    char *id, *account, *protocol, *node, *client, *mailbox;
    long long started;
};

static char *field(redisReply *h, const char *name)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    return NULL;
}

/* Values come from the network: keep each on its one tab-separated line. */
static void print_value(const char *s)
{
    if (!s || !*s) {
        fputs("-", stdout);
        return;
    }
    for (; *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static int by_start(const void *a, const void *b)
{
    const struct session *x = a, *y = b;
    if (x->started != y->started)
        return x->started < y->started ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void print_session(const struct session *s)
{
    char when[32] = "-";
    time_t t = (time_t)s->started;
    struct tm tm;
    if (s->started > 0 && gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *cols[] = { s->id, s->account, s->protocol, s->node, s->client, when, s->mailbox };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        if (i)
            putchar('\t');
        print_value(cols[i]);
    }
    putchar('\n');
}

/* Reads the live sessions listed in set_key: one pipelined HGETALL per
 * member, skipping members whose hash has expired. Prints them if print.
 * Returns the number live, or -1 after reporting. */
static long live_sessions(redisContext *c, const char *set_key, bool print)
{
    redisReply *ids = redisCommand(c, "SMEMBERS %s", set_key);
    if (!reply_ok(c, ids, "SMEMBERS"))
        return -1;
    struct session *live = calloc(ids->elements + 1, sizeof *live);
    redisReply **hashes = calloc(ids->elements + 1, sizeof *hashes);
    if (!live || !hashes) {
        free(live);
        free(hashes);
        freeReplyObject(ids);
        return fail(EXIT_FAIL, "out of memory reading %zu sessions", ids->elements), -1;
    }
    for (size_t i = 0; i < ids->elements; i++)
        redisAppendCommand(c, "HGETALL petrel:session:%s", ids->element[i]->str);
    long n = 0, rc = 0;
    for (size_t i = 0; i < ids->elements; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK || !reply_ok(c, reply, "HGETALL")) {
            rc = -1;
            break;
        }
        hashes[i] = reply;
        if (hashes[i]->type != REDIS_REPLY_ARRAY || hashes[i]->elements == 0)
            continue;
        const char *started = field(hashes[i], "started");
        live[n++] = (struct session){ .id = ids->element[i]->str,
                                      .account = field(hashes[i], "account"),
                                      .protocol = field(hashes[i], "protocol"),
                                      .node = field(hashes[i], "node"),
                                      .client = field(hashes[i], "client"),
                                      .mailbox = field(hashes[i], "mailbox"),
                                      .started = started ? atoll(started) : 0 };
    }
    if (rc == 0 && print) {
        qsort(live, (size_t)n, sizeof *live, by_start);
        for (long i = 0; i < n; i++)
            print_session(&live[i]);
    }
    for (size_t i = 0; i < ids->elements; i++)
        freeReplyObject(hashes[i]);
    free(hashes);
    free(live);
    freeReplyObject(ids);
    return rc < 0 ? -1 : n;
}

static int set_key_for(const struct admin_opts *o, char *key, size_t keylen, char *address)
{
    const char *why;
    if (address_normalise(o->args[0], address, &why) < 0)
        return fail(EXIT_USAGE, "invalid address \"%s\": %s", o->args[0], why);
    snprintf(key, keylen, "petrel:sessions:%s", address);
    return EXIT_OK;
}

int cmd_sessions_list(const struct admin_opts *o)
{
    char key[ADDRESS_MAX + 32] = "petrel:sessions", address[ADDRESS_MAX + 1];
    if (o->nargs == 1 && set_key_for(o, key, sizeof key, address) != EXIT_OK)
        return EXIT_USAGE;
    redisContext *c = redis_open(o);
    if (!c)
        return EXIT_FAIL;
    long n = live_sessions(c, key, true);
    redisFree(c);
    if (n < 0)
        return EXIT_FAIL;
    return fflush(stdout) == 0 ? EXIT_OK : fail(EXIT_FAIL, "writing the list: %m");
}

int cmd_sessions_kick(const struct admin_opts *o)
{
    char key[ADDRESS_MAX + 32], address[ADDRESS_MAX + 1];
    if (set_key_for(o, key, sizeof key, address) != EXIT_OK)
        return EXIT_USAGE;
    redisContext *c = redis_open(o);
    if (!c)
        return EXIT_FAIL;
    long n = live_sessions(c, key, false);
    redisReply *r = n < 0 ? NULL : redisCommand(c, "PUBLISH petrel:kick %s", address);
    int rc = EXIT_FAIL;
    if (n >= 0 && reply_ok(c, r, "PUBLISH")) {
        /* PUBLISH answers how many subscribers got it: zero means no
         * frontend is listening, so nothing will actually close. */
        printf("kicked %ld live session%s of %s%s\n", n, n == 1 ? "" : "s", address,
               r->integer == 0 ? " (but no frontend is listening on petrel:kick)" : "");
        freeReplyObject(r);
        rc = EXIT_OK;
    }
    redisFree(c);
    return rc;
}
