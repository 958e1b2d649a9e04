/* What IMAP BINARY sends (backend/binary_part.c): plans over parsed
 * messages, the header rewrite, and the decoded sizes the MIME parser
 * stores. Expected results are Dovecot 2.3.19.1's answers to the same
 * FETCH BINARY commands. Every message is also run with the stored sizes
 * removed (a tree from before they existed): counting must agree. */
#include "binary_part.h"
#include "check.h"

#include <stdlib.h>

/* Runs the plan over the raw message, in pieces of step bytes. */
static void run_plan(const struct bin_plan *p, const char *msg, size_t step, struct buf *out)
{
    for (size_t i = 0; i < p->n; i++) {
        struct bin_transform x;
        bin_transform_begin(&x, &p->segs[i]);
        for (uint64_t o = p->segs[i].start; o < p->segs[i].end; o += step) {
            size_t n = p->segs[i].end - o < step ? (size_t)(p->segs[i].end - o) : step;
            bin_transform_feed(&x, msg + o, n, out);
        }
        bin_transform_end(&x, out);
    }
}

/* Counting pass over the unsized segments, as op_binary.c does. */
static uint64_t count_plan(struct bin_plan *p, const char *msg)
{
    for (size_t i = 0; i < p->n; i++) {
        struct bin_seg *s = &p->segs[i];
        if (s->sized)
            continue;
        struct bin_transform x;
        bin_transform_begin(&x, s);
        s->size = bin_transform_feed(&x, msg + s->start, (size_t)(s->end - s->start), NULL);
        s->size += bin_transform_end(&x, NULL);
        s->sized = true;
    }
    uint64_t total = 0;
    CHECK(bin_plan_size(p, &total));
    return total;
}

struct pcase {
    const char *msg;
    const char *section;       /* "" : BINARY[] */
    int rc;                    /* bin_plan_build: 0, or -1 (UNKNOWN-CTE) */
    const char *want;
    size_t want_len;           /* 0: strlen */
    bool binary;               /* literal8 */
    size_t msg_len;            /* 0: strlen */
    bool counted;              /* no size stored for it: the stream counts first */
};

static void check_plan(const struct pcase *c)
{
    struct mime_result r;
    size_t ml = c->msg_len ? c->msg_len : strlen(c->msg);
    mime_parse(c->msg, ml, NULL, &r);
    unsigned idx = 0;
    bool hdr = !*c->section;
    if (!hdr) {
        struct mime_range rg;
        CHECK(mime_find_section(&r.tree, c->section, &rg) == 0);
        idx = (unsigned)rg.part;
    }
    struct bin_plan p;
    int rc = bin_plan_build(&r.tree, idx, hdr, &p);
    CHECK_MSG(rc == c->rc, "[%s] rc %d", c->section, rc);
    if (rc == 0) {
        size_t wl = c->want_len ? c->want_len : strlen(c->want);
        uint64_t stored = 0;
        bool sized = bin_plan_size(&p, &stored);
        CHECK_MSG(sized == !c->counted && (!sized || stored == wl), "[%s] stored size %llu, want %zu",
                  c->section, (unsigned long long)stored, wl);
        CHECK((p.converted || p.has_nuls) == c->binary);
        for (size_t step = 1; step <= 9; step += 4) {
            struct buf out = {0};
            run_plan(&p, c->msg, step, &out);
            CHECK_MSG(buf_len(&out) == wl && memcmp(buf_head(&out) ? buf_head(&out) : "", c->want, wl) == 0,
                      "[%s] step %zu got \"%.*s\"", c->section, step, (int)buf_len(&out),
                      buf_head(&out) ? buf_head(&out) : "");
            buf_free(&out);
        }
        bin_plan_free(&p);
        /* The same tree without stored sizes: counted. */
        for (unsigned i = 0; i < r.tree.count; i++)
            r.tree.parts[i].flags &= ~(uint32_t)MIME_PART_BIN_SIZES;
        CHECK(bin_plan_build(&r.tree, idx, hdr, &p) == 0);
        CHECK_MSG(count_plan(&p, c->msg) == wl, "[%s] counted", c->section);
        bin_plan_free(&p);
    }
    mime_result_free(&r);
}

static void test_tree_roundtrip(const char *msg)
{
    struct mime_result r;
    mime_parse(msg, strlen(msg), NULL, &r);
    struct buf enc = {0};
    mime_tree_encode(&r.tree, &enc);
    struct mime_tree t;
    CHECK(mime_tree_decode(buf_head(&enc), buf_len(&enc), &t) == 0);
    CHECK(t.count == r.tree.count);
    for (unsigned i = 0; i < t.count && i < r.tree.count; i++) {
        CHECK(t.parts[i].flags & MIME_PART_BIN_SIZES);
        CHECK(t.parts[i].bin_size == r.tree.parts[i].bin_size);
        CHECK(t.parts[i].bin_cte_len == r.tree.parts[i].bin_cte_len);
    }
    mime_tree_free(&t);
    buf_free(&enc);
    mime_result_free(&r);
}

static void test_sections(void)
{
    CHECK(bin_section_valid(""));
    CHECK(bin_section_valid("1"));
    CHECK(bin_section_valid("1.2.30"));
    CHECK(bin_section_valid("999999999"));
    CHECK(!bin_section_valid("1234567890"));
    CHECK(!bin_section_valid("0"));
    CHECK(!bin_section_valid("1.0"));
    CHECK(!bin_section_valid("01"));
    CHECK(!bin_section_valid("1."));
    CHECK(!bin_section_valid(".1"));
    CHECK(!bin_section_valid("1..2"));
    CHECK(!bin_section_valid("HEADER"));
    CHECK(!bin_section_valid("1.MIME"));
    CHECK(!bin_section_valid("1 2"));
}

/* The header rewrite, whole and byte by byte. */
static void test_header(void)
{
    static const struct { const char *in, *want; } cases[] = {
        { "A: 1\r\nContent-Transfer-Encoding: base64\r\nB: 2\r\n\r\n",
          "A: 1\r\nB: 2\r\n" BINARY_CTE_FIELD "\r\n" },
        /* folded, odd case, blanks before the colon, twice, bare LF */
        { "content-transfer-encoding :\n\tbase64\nX: y\nCONTENT-TRANSFER-ENCODING: qp\n\n",
          "X: y\n" BINARY_CTE_FIELD "\n" },
        /* a continuation of a kept field is kept */
        { "Subject: a\r\n b\r\nContent-Transfer-Encoding: base64\r\n\r\n",
          "Subject: a\r\n b\r\n" BINARY_CTE_FIELD "\r\n" },
        /* names that only look alike stay */
        { "Content-Transfer-Encodings: x\r\nX-Content-Transfer-Encoding: y\r\n\r\n",
          "Content-Transfer-Encodings: x\r\nX-Content-Transfer-Encoding: y\r\n" BINARY_CTE_FIELD "\r\n" },
        /* no blank line (cut by a boundary): added at the end */
        { "Content-Transfer-Encoding: base64\r\nA: b\r\n", "A: b\r\n" BINARY_CTE_FIELD },
        { "A: b", "A: b" BINARY_CTE_FIELD },
        { "", BINARY_CTE_FIELD },
        /* a long name without a colon in the first bytes is kept */
        { "Content-Transfer-Encoding                                                      : x\r\n\r\n",
          "Content-Transfer-Encoding                                                      : x\r\n"
          BINARY_CTE_FIELD "\r\n" },
        /* a bare CR starting a line is a field, not the end */
        { "\rA: b\r\n\r\n", "\rA: b\r\n" BINARY_CTE_FIELD "\r\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bin_seg seg = { .kind = BIN_HEADER, .start = 0, .end = strlen(cases[i].in) };
        size_t steps[] = { 1, strlen(cases[i].in) + 1 };
        for (size_t k = 0; k < 2; k++) {
            size_t step = steps[k];
            struct bin_transform x;
            struct buf out = {0};
            size_t n = 0;
            bin_transform_begin(&x, &seg);
            for (size_t o = 0; o < seg.end; o += step)
                n += bin_transform_feed(&x, cases[i].in + o, seg.end - o < step ? seg.end - o : step, &out);
            n += bin_transform_end(&x, &out);
            CHECK_MSG(n == buf_len(&out) && buf_len(&out) == strlen(cases[i].want) &&
                      memcmp(buf_head(&out), cases[i].want, n) == 0, "header %zu step %zu: \"%.*s\"", i,
                      step, (int)buf_len(&out), buf_head(&out));
            buf_free(&out);
        }
    }
}

#define HDR "From: a@b\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
#define B64 HDR "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" \
    "aGVsbG8Ad29ybGT/\r\naGk=\r\n"
#define QP HDR "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" \
    "caf=C3=A9 soft=\r\nbreak=3D end  \r\nline2\r\n"
#define MP "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\n" \
    "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n--XX\r\n" \
    "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--XX\r\n" \
    "Content-Type: message/rfc822\r\n\r\n" HDR "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" \
    "aGk=\r\n\r\n--XX--\r\n"
#define MP_BIN "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\n" \
    "Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\na=b\r\n--XX\r\n" \
    "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\0\1\2\377\r\n--XX\r\n" \
    "Content-Type: message/rfc822\r\n\r\n" HDR "Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n" \
    "hi\r\n--XX--\r\n"
#define B64MP "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n" \
    "Content-Transfer-Encoding: base64\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX--\r\n"
#define UNK HDR "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"
#define MP_UNK "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n" \
    "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--XX\r\nContent-Type: text/plain\r\n\r\nok\r\n--XX--\r\n"
#define NOBOUND "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n" \
    "Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n"
#define NUL7 HDR "Content-Type: application/octet-stream\r\n\r\nnul\0byte\r\n"
/* A part header cut by a boundary, its Content-Transfer-Encoding last: the
 * newline before the boundary is the boundary's, so the field that BINARY
 * drops ends without one (found by fuzz_mime: the stored size counted it).
 * Such a header's size is counted, never taken from the tree. */
#define CUTHDR HDR "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-A: 1\r\n" \
    "Content-Transfer-Encoding: base64\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n" \
    "aGk=\r\n--b--\r\n"
#define CUTHDR_BIN HDR "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-A: 1\r\n" \
    BINARY_CTE_FIELD "\r\n--b\r\n" BINARY_CTE_FIELD "\r\nhi\r\n--b--\r\n"

/* A tree stored before 9cd053c counted the newline a boundary took from a
 * cut header into bin_cte_len: the header's size is counted, not trusted. */
static void test_old_cut_header(void)
{
    struct mime_result r;
    mime_parse(CUTHDR, strlen(CUTHDR), NULL, &r);
    CHECK(r.tree.count == 3 && (r.tree.parts[1].flags & MIME_PART_HDR_TRUNCATED));
    r.tree.parts[1].bin_cte_len += 2;
    struct bin_plan p;
    CHECK(bin_plan_build(&r.tree, 0, true, &p) == 0);
    uint64_t size;
    CHECK(!bin_plan_size(&p, &size) || size == strlen(CUTHDR_BIN));
    CHECK(count_plan(&p, CUTHDR) == strlen(CUTHDR_BIN));
    bin_plan_free(&p);
    mime_result_free(&r);
}

int main(void)
{
    static const struct pcase cases[] = {
        { B64, "1", 0, "hello\0world\377hi", 14, true },
        { B64, "", 0, HDR "Content-Type: application/octet-stream\r\n" BINARY_CTE_FIELD "\r\nhello\0world\377hi",
          sizeof(HDR) - 1 + 40 + 35 + 2 + 14, true },
        { QP, "1", 0, "caf\303\251 softbreak= end\r\nline2\r\n", 0, true },
        { MP, "1", 0, "a=b", 0, true },
        { MP, "2", 0, "\0\1\2\377", 4, true },
        { MP, "3", 0, HDR "Content-Type: text/plain\r\n" BINARY_CTE_FIELD "\r\nhi", 0, true },
        { MP, "3.1", 0, "hi", 0, true },
        { MP, "", 0, MP_BIN, sizeof(MP_BIN) - 1, true },
        /* nothing decoded: the raw section, header not rewritten, a string */
        { B64MP, "", 0, B64MP, 0, false },
        { B64MP, "1", 0, "hi", 0, false },
        /* a NUL in an identity part: literal8 */
        { NUL7, "1", 0, "nul\0byte\r\n", 10, true, sizeof(NUL7) - 1 },
        /* a multipart without a boundary has no parts, and is not decoded */
        { NOBOUND, "", 0, NOBOUND, 0, false },
        { UNK, "1", -1, "", 0, false },
        { UNK, "", -1, "", 0, false },
        { MP_UNK, "", -1, "", 0, false },
        { MP_UNK, "2", 0, "ok", 0, false },
        { CUTHDR, "", 0, CUTHDR_BIN, 0, true, 0, true },
        { CUTHDR, "1", 0, "", 0, false },
        { CUTHDR, "2", 0, "hi", 0, true },
    };
    test_sections();
    test_header();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_plan(&cases[i]);
    test_old_cut_header();
    test_tree_roundtrip(MP);
    test_tree_roundtrip(QP);
    return check_report();
}
