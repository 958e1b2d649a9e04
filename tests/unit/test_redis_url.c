/* redis_url_parse (common/redis_link.c): the forms redis_url takes. */
#include "check.h"
#include "redis_link.h"

static void test_valid(void)
{
    static const struct {
        const char *url, *host, *password;
        int port, db;
    } cases[] = {
        { "redis://127.0.0.1:6380", "127.0.0.1", "", 6380, 0 },
        { "redis://localhost", "localhost", "", 6379, 0 },
        { "redis://redis.example:1/3", "redis.example", "", 1, 3 },
        { "redis://:s3cret@10.0.0.1:7000", "10.0.0.1", "s3cret", 7000, 0 },
        { "redis://user:pa:ss@h/2", "h", "pa:ss", 6379, 2 },
        { "redis://pw@h:65535/", "h", "pw", 65535, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct redis_url u;
        const char *why = NULL;
        int rc = redis_url_parse(cases[i].url, &u, &why);
        CHECK_MSG(rc == 0, "%s: %s", cases[i].url, why ? why : "");
        if (rc != 0)
            continue;
        CHECK_STREQ(u.host, cases[i].host);
        CHECK_STREQ(u.password, cases[i].password);
        CHECK_MSG(u.port == cases[i].port, "%s: port %d", cases[i].url, u.port);
        CHECK_MSG(u.db == cases[i].db, "%s: db %d", cases[i].url, u.db);
    }
}

static void test_invalid(void)
{
    static const char *const cases[] = {
        "", "127.0.0.1:6379", "http://h", "redis://", "redis://:6379", "redis://h:0",
        "redis://h:65536", "redis://h:x", "redis://h:12x", "redis://h/x", "redis://h/-1",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct redis_url u;
        const char *why = NULL;
        CHECK_MSG(redis_url_parse(cases[i], &u, &why) < 0 && why, "accepted \"%s\"", cases[i]);
    }
}

int main(void)
{
    test_valid();
    test_invalid();
    return check_report();
}
