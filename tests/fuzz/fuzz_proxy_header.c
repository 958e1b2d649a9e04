/* libFuzzer target for the PROXY protocol header parser (frontend/proxy_header.c).
 *
 * The input is fed whole and then in pieces whose sizes come from the first
 * byte; both runs must agree on the result, on how many bytes the header took
 * (never more than it is, never more than the limits) and on what it says. */
#include "proxy_header.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

struct outcome {
    enum proxy_result r;
    size_t consumed;
    struct proxy_info info;
};

static struct outcome run(const uint8_t *d, size_t len, size_t step)
{
    static struct proxy_parser p;
    proxy_parser_init(&p);
    struct outcome o = { PROXY_MORE, 0 };
    memset(&o.info, 0, sizeof o.info);
    const char *err = NULL;
    while (o.r == PROXY_MORE && o.consumed < len) {
        size_t n = len - o.consumed < step ? len - o.consumed : step, used;
        o.r = proxy_parser_feed(&p, d + o.consumed, n, &used, &o.info, &err);
        check(used <= n);
        check(o.r != PROXY_MORE || used == n);
        o.consumed += used;
    }
    check(o.r != PROXY_ERROR || (err && *err));
    check(o.consumed <= 16 + PROXY_V2_MAX_LEN);
    if (o.r == PROXY_DONE) {
        check(o.info.version == 1 || o.info.version == 2);
        check(o.info.version != 1 || o.consumed <= PROXY_V1_MAX);
        check(o.info.family == 0 || o.info.family == AF_INET || o.info.family == AF_INET6);
        check(memchr(o.info.src, '\0', sizeof o.info.src) && memchr(o.info.dst, '\0', sizeof o.info.dst));
        check(o.info.family == 0 || o.info.src[0]);
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] % 17 + 1;
    data++;
    size--;
    struct outcome a = run(data, size, size ? size : 1), b = run(data, size, step);
    check(a.r == b.r);
    if (a.r == PROXY_DONE) {
        check(a.consumed == b.consumed);
        check(memcmp(&a.info, &b.info, sizeof a.info) == 0);
    }
    return 0;
}
