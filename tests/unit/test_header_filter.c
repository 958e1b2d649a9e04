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
    char *none[] = { "Nope" };
    run(none, 1, 0, "\r\n", hdr, strlen(hdr));
    /* Bare LF kept as stored; a header without its blank line; a cut line. */
    run(subject, 1, 0, "Subject: x\n\r\n", "From: a\nSubject: x\n\nbody", 24);
    run(subject, 1, 0, "Subject: x\r\n\r\n", "From: a\nSubject: x", 18);
    run(subject, 1, 0, "\r\n", "", 0);
    /* Lines without a colon are not fields. */
    run(subject, 1, 1, "\r\n", "garbage line\r\n\r\n", 16);
    return check_report();
}
