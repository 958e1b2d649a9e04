/* libFuzzer target for backend/mime.
 *
 * Input: one step byte (feed piece size), one limits byte, then the message.
 * The message is parsed whole and in pieces of the step size; the trees and
 * the BODYSTRUCTURE/BODY/ENVELOPE strings must agree. Every part must lie
 * inside its parent and after its previous sibling, the stored form must
 * decode to a tree that writes the same BODYSTRUCTURE, and sections resolve
 * to ranges inside the message, and the decoded sizes stored for IMAP
 * BINARY equal those of decoding the parts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Ibackend \
 *       tests/fuzz/fuzz_mime.c backend/mime/ *.c common/buf.c -o build/fuzz_mime
 *   build/fuzz_mime -max_total_time=120 tests/fuzz/corpus/mime */
#include "binary_part.h"
#include "buf.h"
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

static void parse(const uint8_t *d, size_t n, size_t step, const struct mime_limits *lim, struct mime_result *r)
{
    struct mime_parser *p = mime_parser_new(lim);
    if (step == 0)
        step = n ? n : 1;
    for (size_t i = 0; i < n; i += step)
        mime_parser_feed(p, d + i, n - i < step ? n - i : step);
    mime_parser_finish(p, r);
}

static void check_tree(const struct mime_tree *t, uint64_t size)
{
    check(t->count >= 1);
    check(t->parts[0].hdr_off == 0 && t->parts[0].end_off == size);
    for (unsigned i = 0; i < t->count; i++) {
        const struct mime_part *p = &t->parts[i];
        check(p->hdr_off <= p->body_off && p->body_off <= p->end_off && p->end_off <= size);
        check(p->hdr_vsize >= p->body_off - p->hdr_off && p->body_vsize >= p->end_off - p->body_off);
        check(p->body_lines <= p->end_off - p->body_off);
        if (i == 0) {
            check(p->parent == -1);
            continue;
        }
        check(p->parent >= 0 && (unsigned)p->parent < i);
        const struct mime_part *par = &t->parts[p->parent];
        check(par->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE));
        check(p->hdr_off >= par->body_off && p->end_off <= par->end_off);
        check(p->depth == par->depth + 1);
        if (p->next >= 0)
            check(t->parts[p->next].hdr_off >= p->end_off);
    }
}

/* IMAP BINARY of every part: the sizes the parser stored must equal what
 * decoding the raw bytes gives, or a FETCH BINARY literal would be wrong. */
static void check_binary_sizes(const struct mime_tree *t, const uint8_t *msg)
{
    for (unsigned i = 0; i < t->count; i++) {
        for (int hdr = 0; hdr <= (i == 0); hdr++) {
            struct bin_plan p;
            if (bin_plan_build(t, i, hdr, &p) < 0)
                continue;
            uint64_t stored, counted = 0;
            bool sized = bin_plan_size(&p, &stored);
            for (size_t k = 0; k < p.n; k++) {
                struct bin_transform x;
                bin_transform_begin(&x, &p.segs[k]);
                counted += bin_transform_feed(&x, (const char *)msg + p.segs[k].start,
                                              (size_t)(p.segs[k].end - p.segs[k].start), NULL);
                counted += bin_transform_end(&x, NULL);
            }
            check(!sized || stored == counted);
            bin_plan_free(&p);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = data[0] % 16 + 1;
    uint8_t lb = data[1];
    struct mime_limits lim = {
        .max_depth = (lb & 1) ? 3 : 0,
        .max_parts = (lb & 2) ? 5 : 0,
        .max_header_bytes = (lb & 4) ? 64 : 0,
        .max_header_lines = (lb & 8) ? 3 : 0,
        .max_text = (lb & 16) ? 17 : 0,
    };
    data += 2;
    size -= 2;

    struct mime_result a, b;
    parse(data, size, 0, &lim, &a);
    parse(data, size, step, &lim, &b);
    check(a.size == size && b.size == size);
    check(a.tree.count == b.tree.count);
    for (unsigned i = 0; i < a.tree.count; i++) {
        const struct mime_part *x = &a.tree.parts[i], *y = &b.tree.parts[i];
        check(x->hdr_off == y->hdr_off && x->body_off == y->body_off && x->end_off == y->end_off);
        check(x->body_lines == y->body_lines && x->hdr_lines == y->hdr_lines && x->flags == y->flags);
        check(x->body_vsize == y->body_vsize && x->hdr_vsize == y->hdr_vsize);
    }
    check(strcmp(buf_head(&a.bodystructure), buf_head(&b.bodystructure)) == 0);
    check(strcmp(buf_head(&a.body), buf_head(&b.body)) == 0);
    check(strcmp(buf_head(&a.envelope), buf_head(&b.envelope)) == 0);
    check(buf_len(&a.text) == buf_len(&b.text) && memcmp(buf_head(&a.text), buf_head(&b.text), buf_len(&a.text)) == 0);
    check(a.header_size <= size);
    check_tree(&a.tree, size);
    check_binary_sizes(&a.tree, data);

    struct buf enc = {0};
    mime_tree_encode(&a.tree, &enc);
    struct mime_tree d;
    check(mime_tree_decode(buf_head(&enc), buf_len(&enc), &d) == 0);
    struct buf w = {0};
    mime_write_bodystructure(&w, &d, 0, 1, 0);
    buf_append(&w, "", 1);
    check(strcmp(buf_head(&w), buf_head(&a.bodystructure)) == 0);
    static const char *const specs[] = { "", "1", "2", "1.1", "1.2", "2.1", "1.MIME", "2.HEADER", "TEXT",
                                         "HEADER", "1.1.1", "3.TEXT", "1.2.MIME" };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct mime_range rg;
        if (mime_find_section(&d, specs[i], &rg) == 0)
            check(rg.start <= rg.end && rg.end <= size);
    }
    mime_tree_free(&d);
    /* decoding arbitrary bytes never crashes */
    if (mime_tree_decode(data, size, &d) == 0) {
        struct buf w2 = {0};
        mime_write_bodystructure(&w2, &d, 0, 1, 1);
        buf_free(&w2);
        struct mime_range rg;
        (void)mime_find_section(&d, "1.2.3.HEADER", &rg);
        mime_tree_free(&d);
    } else {
        mime_tree_free(&d);
    }
    buf_free(&w);
    buf_free(&enc);
    mime_result_free(&a);
    mime_result_free(&b);
    return 0;
}
