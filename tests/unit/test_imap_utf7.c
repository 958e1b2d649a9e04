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

/* Names from a UTF-8 client (IMAP4rev2, UTF8=ACCEPT). */
static const char *const utf8_ok[] = {
    "", "INBOX", "Q&A", "Caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80",
    "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf",   /* U+FFFD, U+10FFFF */
};
static const char *const utf8_bad[] = {
    "Caf\xe9",            /* Latin-1 */
    "\xc0\xaf",           /* overlong '/' */
    "\xe0\x80\xaf",       /* overlong '/' */
    "\xed\xa0\x80",       /* surrogate U+D800 */
    "\xf4\x90\x80\x80",   /* beyond U+10FFFF */
    "\xe6\x97",           /* truncated */
    "\x80",               /* stray continuation byte */
    "\xf8\x88\x80\x80\x80", /* 5-byte form */
    "tab\there", "del\x7f", "c1\xc2\x85",   /* control characters */
};

int main(void)
{
    for (size_t i = 0; i < sizeof utf8_ok / sizeof utf8_ok[0]; i++)
        CHECK_MSG(imap_utf8_name_check(utf8_ok[i], strlen(utf8_ok[i])) == 0, "refused ok[%zu]", i);
    for (size_t i = 0; i < sizeof utf8_bad / sizeof utf8_bad[0]; i++)
        CHECK_MSG(imap_utf8_name_check(utf8_bad[i], strlen(utf8_bad[i])) < 0, "accepted bad[%zu]", i);
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
