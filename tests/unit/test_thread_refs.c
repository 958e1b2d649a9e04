/* Threading fields of an arriving message (backend/thread_refs.c) and the
 * IMAP form of object ids (backend/objectid.c). */
#include "check.h"
#include "objectid.h"
#include "thread_refs.h"

#include <stdio.h>
#include <stdlib.h>

/* Feeds s in pieces of `step` bytes (0: at `cut`, in two) and returns the
 * parameters as "msgid|refs" (msgid "-" when NULL). */
static char *run(const char *s, size_t step, size_t cut)
{
    struct thread_refs t;
    thread_refs_init(&t);
    size_t n = strlen(s);
    if (step == 0) {
        thread_refs_feed(&t, s, cut);
        thread_refs_feed(&t, s + cut, n - cut);
    } else {
        for (size_t i = 0; i < n; i += step)
            thread_refs_feed(&t, s + i, n - i < step ? n - i : step);
    }
    char *msgid, *refs;
    thread_refs_params(&t, &msgid, &refs);
    thread_refs_free(&t);
    size_t len = (msgid ? strlen(msgid) : 1) + strlen(refs) + 2;
    char *out = malloc(len);
    snprintf(out, len, "%s|%s", msgid ? msgid : "-", refs);
    free(msgid);
    free(refs);
    return out;
}

static void check_case(size_t i, const char *in, const char *want)
{
    char *got = run(in, strlen(in) + 1, 0);
    CHECK_MSG(strcmp(got, want) == 0, "case %zu whole: got \"%s\", want \"%s\"", i, got, want);
    free(got);
    got = run(in, 1, 0);
    CHECK_MSG(strcmp(got, want) == 0, "case %zu bytewise: got \"%s\"", i, got);
    free(got);
    bool splits_agree = true;
    for (size_t cut = 0; cut <= strlen(in); cut++) {
        got = run(in, 0, cut);
        splits_agree &= strcmp(got, want) == 0;
        free(got);
    }
    CHECK_MSG(splits_agree, "case %zu split", i);
}

static void test_fields(void)
{
    static const struct { const char *in, *want; } cases[] = {
        { "", "-|{}" },
        { "Subject: none\r\n\r\nbody <x@y>\r\n", "-|{}" },
        { "Message-ID: <a@example.com>\r\n\r\n", "a@example.com|{}" },
        { "message-id:<a@b>\n\nReferences: <not@header>\n", "a@b|{}" },
        /* Folded References, oldest first; In-Reply-To added once. */
        { "Message-Id: <c@x>\r\nReferences: <a@x>\r\n <b@x>\r\nIn-Reply-To: <b@x>\r\n\r\n",
          "c@x|{\"a@x\",\"b@x\"}" },
        { "In-Reply-To: Your message of Monday <p@x>\nSubject: re\n\n", "-|{\"p@x\"}" },
        /* Its own id is never a reference; the first Message-ID counts. */
        { "Message-ID: <s@x>\nMessage-ID: <t@x>\nReferences: <s@x> <r@x>\n\n", "s@x|{\"r@x\"}" },
        /* Not ids: spaces, 8-bit, an unclosed or empty bracket. */
        { "References: <a b> <\xc3\xa9@x> <> <ok@x> <open\n\n", "-|{\"ok@x\"}" },
        { "References: <<in@x>>\n\n", "-|{\"in@x\"}" },
        /* Obsolete quoted local parts are not taken (nor need escaping). */
        { "References: <\"q r\"@x> <a\\b@x> <ok2@x>\n\n", "-|{\"ok2@x\"}" },
        /* "Name :" (obsolete syntax) and a field name that only starts the same. */
        { "Message-ID : <o@x>\nReferences-Extra: <no@x>\n\n", "o@x|{}" },
        /* A bare CR line is no field; the header ends at CRLF CRLF only. */
        { "X: 1\r\n\rMessage-ID: <no@x>\r\nReferences: <yes@x>\r\n\r\n", "-|{\"yes@x\"}" },
        /* No blank line: the whole text is header. */
        { "Message-ID: <last@x>", "last@x|{}" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(i, cases[i].in, cases[i].want);
}

/* A long References keeps its first id and the newest ones, THREAD_REFS_MAX
 * in all with In-Reply-To. */
static void test_many_refs(void)
{
    struct buf h = {0};
    buf_puts(&h, "References:");
    for (int i = 0; i < 500; i++)
        buf_printf(&h, " <r%d@x>", i);
    buf_puts(&h, "\r\nIn-Reply-To: <irt@x>\r\n\r\n");
    buf_append(&h, "", 1);
    char *got = run(buf_head(&h), 4096, 0);
    CHECK(strncmp(got, "-|{\"r0@x\",\"r438@x\",", 19) == 0);
    CHECK(strstr(got, "\"r437@x\"") == NULL);
    CHECK(strstr(got, "\"r499@x\",\"irt@x\"}") != NULL);
    size_t n = 0;
    for (const char *p = got; (p = strchr(p, '@')); p++)
        n++;
    CHECK(n == THREAD_REFS_MAX);
    free(got);
    buf_free(&h);
}

/* A field longer than THREAD_FIELD_MAX is cut, not kept whole. */
static void test_bounded(void)
{
    struct thread_refs t;
    thread_refs_init(&t);
    thread_refs_feed(&t, "References: ", 12);
    char junk[4096];
    memset(junk, 'x', sizeof junk);
    for (int i = 0; i < 100; i++)
        thread_refs_feed(&t, junk, sizeof junk);
    CHECK(buf_len(&t.value[TF_REFERENCES]) == THREAD_FIELD_MAX);
    thread_refs_free(&t);
}

static void test_objectid(void)
{
    char id[OBJECTID_LEN], uuid[OBJECTID_UUID_LEN];
    CHECK(objectid_format('M', "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", id));
    CHECK_STREQ(id, "M0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    CHECK(objectid_parse('M', id, uuid));
    CHECK_STREQ(uuid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    CHECK(!objectid_parse('T', id, uuid) && uuid[0] == '\0');   /* another kind */
    CHECK(!objectid_parse('M', "M0F1E2D3C4B5A69788796A5B4C3D2E1F0", uuid));   /* case matters */
    CHECK(!objectid_parse('M', "M0f1e2d3c", uuid));
    CHECK(!objectid_parse('M', "M0f1e2d3c4b5a69788796a5b4c3d2e1f0x", uuid));
    CHECK(!objectid_parse('M', "M0f1e2d3c4b5a69788796a5b4c3d2e1g0", uuid));
    CHECK(!objectid_format('T', "", id) && id[0] == '\0');   /* NULL threadid: NIL */
    CHECK(!objectid_format('T', "not-a-uuid", id) && id[0] == '\0');
}

int main(void)
{
    test_fields();
    test_many_refs();
    test_bounded();
    test_objectid();
    return check_report();
}
