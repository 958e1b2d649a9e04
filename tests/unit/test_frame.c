/* RPC framing: round trips, frames split at every byte, and hostile headers. */
#include "check.h"
#include "frame.h"

#include <stdlib.h>

static void test_round_trip_bytewise(void)
{
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__LoginReq login = PETREL__LOGIN_REQ__INIT;
    login.username = "demo@example.com";
    login.password = "secret";
    req.id = 42;
    req.session = "fe-0-1";
    req.op_case = PETREL__REQUEST__OP_LOGIN;
    req.login = &login;
    struct buf wire = {0};
    frame_append(&wire, &req.base);
    frame_append(&wire, &req.base);   /* two frames back to back */

    /* Fed one byte at a time, the reader sees nothing until a frame is whole. */
    struct buf in = {0};
    int frames = 0;
    for (size_t i = 0; i < buf_len(&wire); i++) {
        buf_append(&in, buf_head(&wire) + i, 1);
        const uint8_t *p;
        size_t len;
        int rc;
        while ((rc = frame_peek(&in, 1024, &p, &len)) == 1) {
            Petrel__Request *got = petrel__request__unpack(NULL, len, p);
            CHECK(got != NULL);
            if (got) {
                CHECK(got->id == 42);
                CHECK(got->op_case == PETREL__REQUEST__OP_LOGIN);
                CHECK_STREQ(got->login->username, "demo@example.com");
                CHECK_STREQ(frame_request_op_name(got), "login");
                petrel__request__free_unpacked(got, NULL);
            }
            frame_consume(&in, len);
            frames++;
        }
        CHECK(rc == 0);
    }
    CHECK(frames == 2);
    CHECK(buf_len(&in) == 0);
    buf_free(&in);
    buf_free(&wire);
}

static void test_hostile_headers(void)
{
    static const struct {
        const char *bytes;
        size_t len;
        size_t max;
        int want;
    } cases[] = {
        { "", 0, 100, 0 },                          /* nothing yet */
        { "\0\0\0", 3, 100, 0 },                    /* header incomplete */
        { "\0\0\0\0", 4, 100, 1 },                  /* empty frame is valid */
        { "\0\0\0\x64", 4, 100, 0 },                /* 100 announced, none there */
        { "\0\0\0\x65", 4, 100, -1 },               /* 101 > max: refused at once */
        { "\xff\xff\xff\xff", 4, 4194304, -1 },     /* 4 GiB announced */
        { "\x80\0\0\0", 4, 4194304, -1 },           /* sign bit set */
        { "\0\0\0\x02" "ab", 6, 100, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b = {0};
        buf_append(&b, cases[i].bytes, cases[i].len);
        const uint8_t *p;
        size_t len;
        int rc = frame_peek(&b, cases[i].max, &p, &len);
        CHECK_MSG(rc == cases[i].want, "case %zu: got %d want %d", i, rc, cases[i].want);
        buf_free(&b);
    }
}

static void test_garbage_payload(void)
{
    /* A whole frame whose payload is not a Request must fail to unpack, not
     * crash: the link is then closed by its owner. */
    static const uint8_t junk[][8] = {
        { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
        { 0x0a, 0x7f, 0x00 },                    /* string field longer than the frame */
        { 0x52, 0x05, 0x0a, 0x80 },              /* nested message with a broken varint */
    };
    static const size_t lens[] = { 8, 3, 4 };
    for (size_t i = 0; i < 3; i++) {
        Petrel__Request *r = petrel__request__unpack(NULL, lens[i], junk[i]);
        CHECK_MSG(r == NULL, "junk case %zu unpacked", i);
        if (r)
            petrel__request__free_unpacked(r, NULL);
    }
}

int main(void)
{
    test_round_trip_bytewise();
    test_hostile_headers();
    test_garbage_payload();
    return check_report();
}
