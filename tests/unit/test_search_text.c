/* Searchable text: folding, patterns, Date: parsing, and what mime_store
 * collects from a message for blob_text (006_search.sql). */
#include "check.h"
#include "mime_store.h"
#include "search_text.h"

#include <string.h>

struct backend *backend;   /* mime_store.c's ensure path needs it; unused here */

static void fold(const char *in, size_t len, bool oneline, const char *want)
{
    struct buf out = {0};
    search_fold(&out, in, len, oneline);
    buf_append(&out, "", 1);
    CHECK_STREQ(buf_head(&out), want);
    buf_free(&out);
}

static void like(const char *in, const char *want)
{
    struct buf out = {0};
    search_like_pattern(&out, in, strlen(in));
    buf_append(&out, "", 1);
    CHECK_STREQ(buf_head(&out), want);
    buf_free(&out);
}

static void regex(const char *in, const char *want)
{
    struct buf out = {0};
    search_regex_literal(&out, in, strlen(in));
    buf_append(&out, "", 1);
    CHECK_STREQ(buf_head(&out), want);
    buf_free(&out);
}

static void date(const char *in, int y, int m, int d)
{
    int yy = 0, mm = 0, dd = 0;
    int r = search_parse_date(in, strlen(in), &yy, &mm, &dd);
    if (y == 0) {
        CHECK_MSG(r < 0, "%s parsed as %d-%d-%d", in, yy, mm, dd);
        return;
    }
    CHECK_MSG(r == 0 && yy == y && mm == m && dd == d, "%s: r=%d %d-%d-%d", in, r, yy, mm, dd);
}

/* Feeds msg in pieces of step bytes and checks the collected text. */
static void collect(const char *msg, size_t step, const char *headers, const char *text,
                    const char *sentdate)
{
    struct mime_store *s = mime_store_parser();
    size_t len = strlen(msg);
    for (size_t i = 0; i < len; i += step)
        mime_store_feed(s, msg + i, len - i < step ? len - i : step);
    struct mime_blob mb;
    mime_blob_finish(&mb, s);
    CHECK_STREQ(buf_head(&mb.headers), headers);
    CHECK_STREQ(buf_head(&mb.text), text);
    CHECK_STREQ(mb.sentdate, sentdate);
    struct db_param p[MIME_BLOB_NPARAMS];
    mime_blob_params(&mb, p);
    CHECK(p[4].value && !p[4].binary && strcmp(p[4].value, headers) == 0);
    CHECK(p[6].value ? strcmp(p[6].value, sentdate) == 0 : sentdate[0] == '\0');
    mime_blob_free(&mb);
}

int main(void)
{
    fold("Hello WORLD", 11, false, "hello world");
    fold("Caf\xc3\x89 \xc3\x9c", 8, false, "caf\xc3\xa9 \xc3\xbc");           /* É Ü */
    fold("\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91", 10, false,                 /* ΣΟΦΙΑ */
         "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1");
    fold("\xd0\x9f\xd0\xa0\xd0\x98", 6, false, "\xd0\xbf\xd1\x80\xd0\xb8");   /* ПРИ */
    fold("\xc5\x81\xc3\xb3" "d\xc5\xba", 7, false, "\xc5\x82\xc3\xb3" "d\xc5\xba"); /* Łódź */
    fold("a\0b", 3, false, "ab");                                             /* NUL dropped */
    fold("a\xff" "b", 3, false, "a\xef\xbf\xbd" "b");                         /* invalid byte */
    fold("a\xc3", 2, false, "a\xef\xbf\xbd");                                 /* cut sequence */
    fold("\xed\xa0\x80", 3, false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");    /* surrogate */
    fold("\xc0\xaf", 2, false, "\xef\xbf\xbd\xef\xbf\xbd");                   /* overlong */
    fold("a\r\nb\tc", 6, true, "a  b c");
    fold("a\r\nb", 4, false, "a\r\nb");

    like("50%_a\\b", "%50\\%\\_a\\\\b%");
    like("", "%%");
    regex("a.b*c(d)", "a\\.b\\*c\\(d\\)");
    regex("x y\xc3\xa9", "x y\xc3\xa9");
    regex("^$[]{}|?+\\", "\\^\\$\\[\\]\\{\\}\\|\\?\\+\\\\");

    date("Tue, 1 Feb 1994 10:00:00 +0000", 1994, 2, 1);
    date("1 feb 1994 23:59 -1200", 1994, 2, 1);
    date("  Mon (comment) , 31 Dec 99 12:00 GMT", 1999, 12, 31);
    date("5 Mar 05 1:00", 2005, 3, 5);
    date("29 Feb 2024 00:00 +0000", 2024, 2, 29);
    date("29 Feb 2023 00:00 +0000", 0, 0, 0);
    date("32 Jan 2020", 0, 0, 0);
    date("yesterday", 0, 0, 0);
    date("", 0, 0, 0);
    date("1 Foo 2020", 0, 0, 0);

    static const char simple[] =
        "From: =?utf-8?q?J=C3=B6rg?= <JOERG@example.com>\r\n"
        "Subject: =?utf-8?q?Caf=C3=A9?= Menu\r\n"
        "Date: Tue, 1 Feb 1994 10:00:00 +0100\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Na=C3=AFve BODY text\r\n";
    const char *hs = "from: j\xc3\xb6rg <joerg@example.com>\n"
                     "subject: caf\xc3\xa9 menu\n"
                     "date: tue, 1 feb 1994 10:00:00 +0100\n"
                     "content-type: text/plain; charset=utf-8\n"
                     "content-transfer-encoding: quoted-printable\n";
    for (size_t step = 1; step <= sizeof simple; step *= 3)
        collect(simple, step, hs, "na\xc3\xafve body text\r\n", "1994-02-01");

    /* base64 in a multipart, an embedded message's header, no Date. */
    static const char multi[] =
        "Subject: outer\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n"
        "\r\n"
        "--b\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "R3L832UgYXVzIE38bmNoZW4=\r\n"
        "--b\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        "Subject: Inner\r\n"
        "\r\n"
        "inner body\r\n"
        "--b--\r\n";
    struct mime_store *s = mime_store_parser();
    mime_store_feed(s, multi, strlen(multi));
    struct mime_blob mb;
    mime_blob_finish(&mb, s);
    CHECK(strstr(buf_head(&mb.headers), "subject: outer\n") != NULL);
    CHECK(strstr(buf_head(&mb.headers), "inner") == NULL);
    CHECK_MSG(strstr(buf_head(&mb.text), "gr\xc3\xbc\xc3\x9f" "e aus m\xc3\xbcnchen") != NULL,
              "text: %s", buf_head(&mb.text));
    CHECK(strstr(buf_head(&mb.text), "subject: inner\n") != NULL);
    CHECK(strstr(buf_head(&mb.text), "inner body") != NULL);
    CHECK_STREQ(mb.sentdate, "");
    mime_blob_free(&mb);

    mime_store_free(mime_store_parser());   /* an aborted upload */
    mime_store_free(NULL);
    return check_report();
}
