/* HEADER.FIELDS / HEADER.FIELDS.NOT selection. */
#include "check.h"
#include "header_filter.h"

#include <string.h>

static const char hdr[] =
    "From: Alice <a@example.com>\r\n"
    "To: Bob <b@example.com>,\r\n"
    "  Carol <c@example.com>\r\n"
    "Subject: Hello\r\n"
    "X-Spam : yes\r\n"
    "subject: second\r\n"
    "\r\n";

static void run(char *const *names, size_t n, int exclude, const char *want, const char *src,
                size_t len)
{
    struct buf out = {0};
    header_filter(src, len, names, n, exclude, &out);
    buf_append(&out, "", 1);
    CHECK_STREQ(buf_head(&out), want);
    buf_free(&out);
}

int main(void)
{
    char *from_to[] = { "FROM", "to" };
    run(from_to, 2, 0,
        "From: Alice <a@example.com>\r\nTo: Bob <b@example.com>,\r\n  Carol <c@example.com>\r\n\r\n",
        hdr, strlen(hdr));
    char *subject[] = { "Subject" };
    run(subject, 1, 0, "Subject: Hello\r\nsubject: second\r\n\r\n", hdr, strlen(hdr));
    char *spam[] = { "x-spam" };
    run(spam, 1, 0, "X-Spam : yes\r\n\r\n", hdr, strlen(hdr));
    run(subject, 1, 1,
        "From: Alice <a@example.com>\r\nTo: Bob <b@example.com>,\r\n  Carol <c@example.com>\r\n"
        "X-Spam : yes\r\n\r\n",
        hdr, strlen(hdr));
    /* a line without a colon (found by test_dovecot_diff.py, as Dovecot) */
    const char odd[] = "A: 1\r\nnot a header\r\nB: 2\r\n\r\n";
    char *a[] = { "A" };
    run(a, 1, 1, "not a header\r\nB: 2\r\n\r\n", odd, strlen(odd));
    run(a, 1, 0, "A: 1\r\n\r\n", odd, strlen(odd));
    /* a header block that is the whole message, without its blank line */
    const char bare[] = "A: 1\r\nB: 2\r\n";
    run(a, 1, 1, "B: 2\r\n\r\n", bare, strlen(bare));
    char *none[] = { "Nope" };
    run(none, 1, 0, "\r\n", hdr, strlen(hdr));
    /* Bare LF kept as stored; a header without its blank line; a cut line. */
    run(subject, 1, 0, "Subject: x\n\r\n", "From: a\nSubject: x\n\nbody", 24);
    run(subject, 1, 0, "Subject: x\r\n\r\n", "From: a\nSubject: x", 18);
    run(subject, 1, 0, "\r\n", "", 0);
    /* A line without a colon is kept by .NOT, as Dovecot does. */
    run(subject, 1, 1, "garbage line\r\n\r\n", "garbage line\r\n\r\n", 16);
    run(subject, 1, 0, "\r\n", "garbage line\r\n\r\n", 16);
    /* CRs before a CRLF lose one in HEADER.FIELDS, continuation lines too,
     * not in .NOT; a lone CR stays (Dovecot 2.3.19's answers,
     * test_dovecot_diff.py's cr-* messages). */
    const char crs[] = "Subject: a\r\r\n  b\r\r\r\nX: c\rd\r\n\r\n";
    run(subject, 1, 0, "Subject: a\r\n  b\r\r\n\r\n", crs, strlen(crs));
    char *x[] = { "X" };
    run(x, 1, 0, "X: c\rd\r\n\r\n", crs, strlen(crs));
    run(x, 1, 1, "Subject: a\r\r\n  b\r\r\r\n\r\n", crs, strlen(crs));
    return check_report();
}
