/* The backends setting as a changing set of addresses (frontend/backend_addrs.c):
 * parsing, lookups, the add/remove diff, and the lookup thread. */
#include "check.h"
#include "backend_addrs.h"

#include <stdlib.h>

static void test_parse(void)
{
    char err[256];
    struct backend_target *t;
    int n = backend_targets_parse("10.0.0.1:7100, petrel-backend:7100,[::1]:7101", &t, err, sizeof err);
    CHECK(n == 3);
    if (n == 3) {
        CHECK_STREQ(t[0].host, "10.0.0.1");
        CHECK_STREQ(t[0].port, "7100");
        CHECK(t[0].numeric);
        CHECK_STREQ(t[1].host, "petrel-backend");
        CHECK_STREQ(t[1].spec, "petrel-backend:7100");
        CHECK(!t[1].numeric);
        CHECK_STREQ(t[2].host, "::1");
        CHECK_STREQ(t[2].port, "7101");
        CHECK(t[2].numeric);
        backend_targets_free(t, n);
    }
    const char *bad[] = { "", " , ", "host", "host:", ":7100", "host:0", "host:70000", "host:71x" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(backend_targets_parse(bad[i], &t, err, sizeof err) < 0, "accepted \"%s\"", bad[i]);
}

static int diff(const char *cur_s, const char *next_s, char *keep_out, char *new_out)
{
    char *cur[16], *next[16];
    int nc = 0, nn = 0;
    char *a = strdup(cur_s), *b = strdup(next_s), *save;
    for (char *p = strtok_r(a, " ", &save); p; p = strtok_r(NULL, " ", &save))
        cur[nc++] = p;
    for (char *p = strtok_r(b, " ", &save); p; p = strtok_r(NULL, " ", &save))
        next[nn++] = p;
    bool keep[16], fresh[16];
    backend_addrs_diff(cur, nc, next, nn, keep, fresh);
    for (int i = 0; i < nc; i++)
        keep_out[i] = keep[i] ? 'k' : 'r';
    keep_out[nc] = '\0';
    for (int j = 0; j < nn; j++)
        new_out[j] = fresh[j] ? 'n' : '-';
    new_out[nn] = '\0';
    free(a);
    free(b);
    return 0;
}

static void test_diff(void)
{
    static const struct { const char *cur, *next, *keep, *fresh; } cases[] = {
        { "", "a:1 b:1", "", "nn" },                       /* first answer */
        { "a:1 b:1", "a:1 b:1", "kk", "--" },              /* nothing changed */
        { "a:1 b:1", "b:1 a:1", "kk", "--" },              /* order does not matter */
        { "a:1 b:1", "a:1", "kr", "-" },                   /* b left */
        { "a:1 b:1", "c:1", "rr", "n" },                   /* all replaced */
        { "a:1 b:1", "a:1 b:1 c:1", "kk", "--n" },          /* c joined */
        { "a:1", "", "r", "" },                            /* empty answer */
        { "a:1", "b:1 b:1", "r", "n-" },                   /* duplicate new once */
        { "a:1 a:2", "a:2", "rk", "-" },                   /* same host, other port */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char keep[17], fresh[17];
        diff(cases[i].cur, cases[i].next, keep, fresh);
        CHECK_MSG(strcmp(keep, cases[i].keep) == 0 && strcmp(fresh, cases[i].fresh) == 0,
                  "case %zu: keep %s fresh %s, want %s %s", i, keep, fresh, cases[i].keep,
                  cases[i].fresh);
    }
}

static void test_resolve(void)
{
    char err[256], **addrs;
    struct backend_target *t;
    int n = backend_targets_parse("127.0.0.1:7100,localhost:7101,[::1]:7102,no-such-host.invalid:1",
                                  &t, err, sizeof err);
    CHECK(n == 4);
    int k = backend_resolve(&t[0], &addrs, err, sizeof err);
    CHECK(k == 1);
    if (k == 1)
        CHECK_STREQ(addrs[0], "127.0.0.1:7100");
    backend_addrs_free(addrs, k);
    /* localhost: 127.0.0.1 at least (::1 too where the hosts file says so). */
    k = backend_resolve(&t[1], &addrs, err, sizeof err);
    CHECK_MSG(k >= 1, "localhost: %s", err);
    bool v4 = false;
    for (int i = 0; i < k; i++)
        v4 |= strcmp(addrs[i], "127.0.0.1:7101") == 0;
    CHECK(v4);
    for (int i = 1; i < k; i++)
        CHECK(strcmp(addrs[i - 1], addrs[i]) < 0);   /* sorted, no duplicates */
    backend_addrs_free(addrs, k > 0 ? k : 0);
    k = backend_resolve(&t[2], &addrs, err, sizeof err);
    CHECK(k == 1);
    if (k == 1)
        CHECK_STREQ(addrs[0], "[::1]:7102");
    backend_addrs_free(addrs, k > 0 ? k : 0);
    CHECK(backend_resolve(&t[3], &addrs, err, sizeof err) < 0);
    backend_targets_free(t, n);
}

/* The thread answers on the loop, once per named entry. */
static int answers, answered_target = -1, answered_n;
static char answered_first[64];

static void on_answer(int target, char **addrs, int n, const char *err, void *ctx)
{
    answers++;
    answered_target = target;
    answered_n = n;
    if (n > 0)
        snprintf(answered_first, sizeof answered_first, "%s", addrs[0]);
    backend_addrs_free(addrs, n > 0 ? n : 0);
    ev_break(ctx, EVBREAK_ALL);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents) { ev_break(loop, EVBREAK_ALL); }

static void test_thread(void)
{
    struct ev_loop *loop = ev_default_loop(0);
    char err[256];
    struct backend_target *t;
    int n = backend_targets_parse("127.0.0.1:1,localhost:7200", &t, err, sizeof err);
    struct backend_resolver *r = backend_resolver_new(loop, t, n, on_answer, loop);
    ev_timer timeout;
    ev_timer_init(&timeout, timeout_cb, 10, 0);
    ev_timer_start(loop, &timeout);
    for (int round = 0; round < 2; round++) {
        answers = 0;
        CHECK(backend_resolver_kick(r));
        CHECK(!backend_resolver_kick(r));   /* one round at a time */
        ev_run(loop, 0);
        CHECK(answers == 1);
        CHECK(answered_target == 1);
        CHECK(answered_n >= 1);
        CHECK_STREQ(answered_first, "127.0.0.1:7200");
    }
    ev_timer_stop(loop, &timeout);
    backend_targets_free(t, n);
}

int main(void)
{
    test_parse();
    test_diff();
    test_resolve();
    test_thread();
    return check_report();
}
