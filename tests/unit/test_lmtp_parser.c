/* LMTP's MAIL and RCPT arguments: paths (RFC 5321 4.1.2, with its
 * examples), ESMTP parameters and SIZE, and hostile input. */
#include "check.h"

#include "buf.h"
#include "lmtp/lmtp_parser.h"

#include <stdlib.h>

struct path_case {
    const char *in;     /* what follows "MAIL FROM:" or "RCPT TO:" */
    const char *want;   /* the address, then "|" and what is left; NULL: refused */
};

static const struct path_case paths[] = {
    { "<userx@y.foo.org>", "userx@y.foo.org|" },
    { " <a@b> SIZE=10", "a@b| SIZE=10" },
    { "<>", "|" },                                             /* the null reverse-path */
    { "<@hosta.int,@jkl.org:userc@d.bar.org>", "userc@d.bar.org|" },   /* RFC 5321 3.6.1 */
    { "<@a:b@c>x", "b@c|x" },
    { "<\"a b\"@c>", "\"a b\"@c|" },
    { "<\"a\\\"b>\"@c>", "\"a\\\"b>\"@c|" },                   /* '>' and '"' quoted */
    { "<\"a\\\\\"@c>", "\"a\\\\\"@c|" },
    { "<caf\xc3\xa9@example.com>", "caf\xc3\xa9@example.com|" },   /* SMTPUTF8 */
    { "a@b", NULL },
    { "<a@b", NULL },
    { "<a b@c>", NULL },
    { "<a<b@c>", NULL },
    { "<@a,@b>", NULL },                                       /* a route and no colon */
    { "<a\x01@b>", NULL },
    { "<a\x7f@b>", NULL },
    { "<\"a\\\x01\"@b>", NULL },                               /* quoted-pair of a CTL */
    { "<\"a>", NULL },                                         /* the quote never ends */
    { "<\"a\\", NULL },
    { "", NULL },
    { "  ", NULL },
    { "\t<a@b>", NULL },
};

static void test_paths(void)
{
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        const struct path_case *c = &paths[i];
        const char *p = c->in;
        char *addr = lmtp_parse_path(&p);
        struct buf got = {0};
        if (addr)
            buf_printf(&got, "%s|%s", addr, p);
        buf_append(&got, "", 1);
        if (c->want)
            CHECK_MSG(addr && strcmp(got.data, c->want) == 0, "\"%s\": got \"%s\", want \"%s\"",
                      c->in, addr ? got.data : "(refused)", c->want);
        else
            CHECK_MSG(!addr && p == c->in, "\"%s\": got \"%s\", want a refusal", c->in, got.data);
        free(addr);
        buf_free(&got);
    }
}

/* The longest address is LMTP_MAX_ADDRESS bytes; one more is refused. */
static void test_path_length(void)
{
    for (size_t len = LMTP_MAX_ADDRESS - 1; len <= LMTP_MAX_ADDRESS + 1; len++) {
        char *in = malloc(len + 3);
        in[0] = '<';
        memset(in + 1, 'a', len);
        memcpy(in + 1 + len, ">", 2);
        const char *p = in;
        char *addr = lmtp_parse_path(&p);
        CHECK_MSG((addr != NULL) == (len <= LMTP_MAX_ADDRESS), "length %zu", len);
        CHECK(!addr || strlen(addr) == len);
        free(addr);
        free(in);
    }
}

static void test_prefix(void)
{
    CHECK_STREQ(lmtp_after_prefix(" FROM:<a@b>", " FROM:"), "<a@b>");
    CHECK_STREQ(lmtp_after_prefix(" from:<a@b>", " FROM:"), "<a@b>");
    CHECK(lmtp_after_prefix(" FROM <a@b>", " FROM:") == NULL);
    CHECK(lmtp_after_prefix(" FRO", " FROM:") == NULL);
    CHECK(lmtp_after_prefix("", " TO:") == NULL);
}

struct param_case {
    const char *in;
    const char *want;   /* each parameter as "KEY" or "KEY=[value]", space-separated */
};

static const struct param_case params[] = {
    { "", "" },
    { "   ", "" },
    { " SIZE=1000 BODY=8BITMIME", "SIZE=[1000] BODY=[8BITMIME]" },
    { " smtputf8", "SMTPUTF8" },
    { "  body=7bit   size=0 ", "BODY=[7bit] SIZE=[0]" },
    { " SIZE=", "SIZE=[]" },
    { " =x", "=[x]" },
    { " A=b=c", "A=[b=c]" },
    { " ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=1", "ABCDEFGHIJK=[1]" },   /* key cut to 11 */
};

static void test_params(void)
{
    for (size_t i = 0; i < sizeof params / sizeof *params; i++) {
        const struct param_case *c = &params[i];
        const char *p = c->in, *val;
        char key[12];
        size_t vlen;
        struct buf got = {0};
        int n = 0;
        while (lmtp_next_param(&p, key, sizeof key, &val, &vlen) && n++ < 10) {
            buf_printf(&got, "%s%s", buf_len(&got) ? " " : "", key);
            if (val)
                buf_printf(&got, "=[%.*s]", (int)vlen, val);
        }
        buf_append(&got, "", 1);
        CHECK_MSG(strcmp(got.data, c->want) == 0, "\"%s\": got \"%s\", want \"%s\"", c->in,
                  got.data, c->want);
        CHECK_MSG(*p == '\0' || *p == ' ', "\"%s\": stopped at \"%s\"", c->in, p);
        buf_free(&got);
    }
}

static void test_values(void)
{
    CHECK(lmtp_value_is("8bitmime", 8, "8BITMIME"));
    CHECK(!lmtp_value_is("8BITMIMEX", 9, "8BITMIME"));
    CHECK(!lmtp_value_is("8BIT", 4, "8BITMIME"));
    CHECK(!lmtp_value_is(NULL, 0, "7BIT"));

    uint64_t size = 7;
    CHECK(lmtp_parse_size("0", 1, &size) && size == 0);
    CHECK(lmtp_parse_size("52428800", 8, &size) && size == 52428800);
    CHECK(lmtp_parse_size("9999999999999999999", 19, &size) && size == 9999999999999999999u);
    size = 7;
    CHECK(!lmtp_parse_size("18446744073709551616", 20, &size) && size == 7);
    CHECK(!lmtp_parse_size("", 0, &size));
    CHECK(!lmtp_parse_size(NULL, 0, &size));
    CHECK(!lmtp_parse_size("-1", 2, &size));
    CHECK(!lmtp_parse_size("1k", 2, &size));
    CHECK(!lmtp_parse_size(" 1", 2, &size) && size == 7);
}

int main(void)
{
    test_paths();
    test_path_length();
    test_prefix();
    test_params();
    test_values();
    return check_report();
}
