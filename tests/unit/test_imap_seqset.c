/* IMAP sequence sets: parsing, "*" resolution, merging, formatting. */
#include "check.h"

#include "imap/imap_seqset.h"

#include <stdint.h>

struct seqset_case {
    const char *in;
    enum imap_seqset_kind kind;
    uint32_t max;
    const char *want;  /* formatted set, "$" for SEARCHRES, or "ERR reason" */
};

#define SEQ IMAP_SEQSET_SEQ
#define UID IMAP_SEQSET_UID

static const struct seqset_case cases[] = {
    { "1", SEQ, 10, "1" },
    { "1:5", SEQ, 10, "1:5" },
    { "5:1", SEQ, 10, "1:5" },
    { "*", SEQ, 10, "10" },
    { "*:4", SEQ, 10, "4:10" },
    { "1,3:*", SEQ, 10, "1,3:10" },
    { "2,4:7,9,12:*", SEQ, 15, "2,4:7,9,12:15" },  /* RFC 9051 9. example */
    { "1,2,3,5", SEQ, 10, "1:3,5" },
    { "1:3,2:6,8,7", SEQ, 10, "1:8" },
    { "9,1,5:3", SEQ, 10, "1,3:5,9" },
    { "*:*", SEQ, 10, "10" },
    { "1:*", SEQ, 1, "1" },
    { "3:*", SEQ, 2, "ERR Message sequence number out of range" },
    { "11", SEQ, 10, "ERR Message sequence number out of range" },
    { "*", SEQ, 0, "ERR No messages" },
    { "1", SEQ, 0, "ERR Message sequence number out of range" },
    { "559:*", UID, 300, "300:559" },
    { "100:*", UID, 300, "100:300" },
    { "1000", UID, 300, "1000" },
    { "*", UID, 0, "" },
    { "1:*,5", UID, 0, "5" },
    { "4294967295", UID, 7, "4294967295" },
    { "4294967295,1:4294967295", UID, 7, "1:4294967295" },
    { "4294967294:4294967295,4294967295", UID, 7, "4294967294:4294967295" },
    { "4294967296", UID, 7, "ERR Number too big" },
    { "99999999999999999999", UID, 7, "ERR Number too big" },
    { "0", UID, 7, "ERR Invalid number" },
    { "1:0", UID, 7, "ERR Invalid number" },
    { "01", UID, 7, "ERR Invalid number" },
    { "", UID, 7, "ERR Empty sequence set" },
    { "1,", UID, 7, "ERR Expected a number" },
    { ",1", UID, 7, "ERR Expected a number" },
    { "1:", UID, 7, "ERR Expected a number" },
    { "1:2:3", UID, 7, "ERR Invalid character in sequence set" },
    { "1 2", UID, 7, "ERR Invalid character in sequence set" },
    { "-1", UID, 7, "ERR Expected a number" },
    { "+1", UID, 7, "ERR Expected a number" },
    { "$", UID, 7, "$" },
    { "$", SEQ, 0, "$" },
    { "$,1", UID, 7, "ERR Expected a number" },
    { "1,$", UID, 7, "ERR Expected a number" },
    { "1,2,3,4", UID, 7, "1:4" },
    { "1,2,3,4,5", UID, 7, "ERR Too many ranges in sequence set" },
};

static const size_t max_ranges = 4;

static void test_parse(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct seqset_case *c = &cases[i];
        struct imap_seqset set;
        const char *error = NULL;
        char got[128];
        size_t len;
        if (imap_seqset_parse(c->in, strlen(c->in), c->kind, c->max, max_ranges, &set, &error) < 0) {
            snprintf(got, sizeof got, "ERR %s", error);
            CHECK(set.count == 0 && set.ranges == NULL);
        } else if (set.searchres) {
            snprintf(got, sizeof got, "$");
        } else {
            CHECK(imap_seqset_format(set.ranges, set.count, got, sizeof got, &len));
            CHECK(len == strlen(got));
        }
        CHECK_MSG(strcmp(got, c->want) == 0, "\"%s\" (%s, max %u): got \"%s\", want \"%s\"", c->in,
                  c->kind == SEQ ? "seq" : "uid", (unsigned)c->max, got, c->want);
        imap_seqset_free(&set);
    }
}

static void test_contains_count(void)
{
    struct imap_seqset set;
    const char *error;
    const char *in = "2,4:7,9,12:*";
    CHECK(imap_seqset_parse(in, strlen(in), SEQ, 15, max_ranges, &set, &error) == 0);
    static const uint32_t members[] = { 2, 4, 5, 7, 9, 12, 15 };
    static const uint32_t others[] = { 0, 1, 3, 8, 10, 11, 16, UINT32_MAX };
    for (size_t i = 0; i < sizeof members / sizeof *members; i++)
        CHECK_MSG(imap_seqset_contains(&set, members[i]), "%u", (unsigned)members[i]);
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        CHECK_MSG(!imap_seqset_contains(&set, others[i]), "%u", (unsigned)others[i]);
    CHECK(imap_seqset_count(&set) == 1 + 4 + 1 + 4);
    imap_seqset_free(&set);

    in = "1:4294967295";
    CHECK(imap_seqset_parse(in, strlen(in), UID, 1, max_ranges, &set, &error) == 0);
    CHECK(imap_seqset_count(&set) == UINT32_MAX);
    CHECK(imap_seqset_contains(&set, UINT32_MAX));
    imap_seqset_free(&set);

    struct imap_seqset empty = {0};
    CHECK(imap_seqset_count(&empty) == 0 && !imap_seqset_contains(&empty, 1));
}

static void test_format_bounds(void)
{
    const struct imap_range r[] = { { 1, 3 }, { 5, 5 }, { 4000000000u, 4294967295u } };
    const char *full = "1:3,5,4000000000:4294967295";
    char out[64];
    size_t len;
    CHECK(imap_seqset_format(r, 3, out, sizeof out, &len));
    CHECK_STREQ(out, full);
    CHECK(imap_seqset_format(r, 3, out, strlen(full) + 1, &len) && len == strlen(full));
    CHECK(!imap_seqset_format(r, 3, out, strlen(full), &len) && len == strlen(full));
    CHECK_STREQ(out, "");
    CHECK(!imap_seqset_format(r, 1, out, 0, &len) && len == 3);
    CHECK(imap_seqset_format(r, 0, out, 1, &len) && len == 0 && out[0] == '\0');
}

int main(void)
{
    test_parse();
    test_contains_count();
    test_format_bounds();
    return check_report();
}
