/* Modified UTF-7 mailbox names (RFC 3501 5.1.3): both directions, and the
 * encodings the RFC forbids. */
#include "check.h"
#include "imap/imap_utf7.h"

#include <string.h>

static const struct { const char *utf7, *utf8; } valid[] = {
    { "INBOX", "INBOX" },
    { "&-", "&" },
    { "Tom &- Jerry", "Tom & Jerry" },
    { "Caf&AOk-", "Caf\xc3\xa9" },
    /* RFC 3501's example: ~peter/mail/<Japanese>/<Japanese> */
    { "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
    { "&2D3eAA-", "\xf0\x9f\x98\x80" },   /* U+1F600, a surrogate pair */
    { "&BB8EQAQ4BDIENQRC-", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
};

static const char *const invalid[] = {
    "Caf\xc3\xa9",   /* raw 8-bit */
    "bad&name",      /* unterminated run */
    "&AGE-",         /* encodes printable ASCII 'a' */
    "&AOk",          /* no terminating '-' */
    "&AOk-&AOk-",    /* two runs back to back: not minimal */
    "&2D0-",         /* lone high surrogate */
    "&3gA-",         /* lone low surrogate */
    "&AOl-",         /* non-zero padding bits */
    "&Jj=-",         /* not base64 */
    "tab\there",     /* control character */
};

int main(void)
{
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        struct buf b = {0};
        int rc = imap_utf7_to_utf8(valid[i].utf7, strlen(valid[i].utf7), &b);
        buf_append(&b, "", 1);
        CHECK_MSG(rc == 0, "decode %s", valid[i].utf7);
        if (rc == 0)
            CHECK_STREQ(buf_head(&b), valid[i].utf8);
        buf_free(&b);
        imap_utf8_to_utf7(valid[i].utf8, strlen(valid[i].utf8), &b);
        buf_append(&b, "", 1);
        CHECK_STREQ(buf_head(&b), valid[i].utf7);
        buf_free(&b);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        struct buf b = {0};
        CHECK_MSG(imap_utf7_to_utf8(invalid[i], strlen(invalid[i]), &b) < 0, "accepted %s", invalid[i]);
        buf_free(&b);
    }
    return check_report();
}
