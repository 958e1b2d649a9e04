/* Synthetic but realistic mail for petrel-bench: a transport header block
 * like one that crossed two relays, a text part of words, and past a few
 * KiB a base64 attachment, all deterministic for a given seed so that two
 * servers are filled with exactly the same bytes. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

/* splitmix64: small, fast, and good enough for picking words. */
uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The account name for number n (1-based): cfg.user_pattern with its one
 * %d replaced (and %% as a percent sign), checked by main. */
void user_name(int n, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = cfg.user_pattern; *p && o + 1 < outlen; p++) {
        if (p[0] == '%' && p[1] == 'd') {
            o += (size_t)snprintf(out + o, outlen - o, "%d", n);
            if (o >= outlen)
                o = outlen - 1;
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            out[o++] = '%';
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

static const char *const words[] = {
    "the", "meeting", "report", "budget", "quarter", "project", "deadline", "team",
    "please", "review", "attached", "draft", "schedule", "customer", "update", "status",
    "we", "should", "discuss", "tomorrow", "afternoon", "thanks", "regards", "release",
    "server", "cluster", "latency", "throughput", "migration", "database", "invoice",
    "contract", "proposal", "agenda", "notes", "follow", "up", "on", "this", "and", "a",
    "to", "of", "in", "for", "with", "is", "are", "be", "will", "can", "our", "your",
    "mailbox", "delivery", "weekend", "Monday", "Friday", "version", "feedback", "issue",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static void words_line(struct bbuf *b, uint64_t *s, int width)
{
    int col = 0;
    while (col < width) {
        const char *w = words[rng_next(s) % NWORDS];
        if (col)
            bbuf_add(b, " ", 1), col++;
        bbuf_add(b, w, strlen(w));
        col += (int)strlen(w);
    }
    bbuf_add(b, "\r\n", 2);
}

void msg_make(struct bbuf *b, uint64_t seed, const char *to, long n, int size)
{
    uint64_t s = seed ^ ((uint64_t)n * 0x2545f4914f6cdd1dull);
    for (const char *p = to; *p; p++)
        s = s * 131 + (unsigned char)*p;
    size_t start = b->len;
    int day = (int)(n % 28) + 1, hour = (int)(rng_next(&s) % 24), min = (int)(rng_next(&s) % 60);
    int mon = (int)((n / 28) % 12);
    char date[64];
    snprintf(date, sizeof date, "%s, %d %s 2024 %02d:%02d:%02d +0000", days[(day + mon) % 7], day,
             months[mon], hour, min, (int)(rng_next(&s) % 60));
    unsigned long long id = (unsigned long long)rng_next(&s);
    bbuf_addf(b, "Return-Path: <sender%llu@example.org>\r\n", id % 1000);
    bbuf_addf(b,
              "Received: from mx2.example.org (mx2.example.org [192.0.2.%llu])\r\n"
              "\tby mx.example.com (Postfix) with ESMTPS id %016llX\r\n"
              "\tfor <%s>; %s\r\n",
              id % 250 + 1, id, to, date);
    bbuf_addf(b,
              "Received: from [198.51.100.%llu] (client.example.org [198.51.100.%llu])\r\n"
              "\tby mx2.example.org with ESMTPSA id %llx; %s\r\n",
              id % 200 + 1, id % 200 + 1, id >> 8, date);
    bbuf_addf(b, "%s", "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;\r\n"
                       "\ts=sel1; h=from:to:subject:date:message-id;\r\n\tb=");
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 64; k++)
            bbuf_add(b, &b64[rng_next(&s) % 64], 1);
        bbuf_add(b, i < 2 ? "\r\n\t  " : "\r\n", i < 2 ? 5 : 2);
    }
    bbuf_addf(b, "From: Sender %llu <sender%llu@example.org>\r\n", id % 1000, id % 1000);
    bbuf_addf(b, "To: <%s>\r\n", to);
    bbuf_add(b, "Subject: ", 9);
    {
        struct bbuf line = { 0 };
        words_line(&line, &s, 40);
        bbuf_add(b, line.p, line.len);
        bbuf_free(&line);
    }
    bbuf_addf(b, "Date: %s\r\n", date);
    bbuf_addf(b, "Message-ID: <%016llx.%ld@example.org>\r\n", id, n);
    bbuf_addf(b, "%s", "MIME-Version: 1.0\r\n");
    bool attach = size > 6000;
    if (attach)
        bbuf_addf(b, "Content-Type: multipart/mixed; boundary=\"b-%016llx\"\r\n\r\n"
                     "This is a multi-part message in MIME format.\r\n"
                     "--b-%016llx\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n\r\n",
                  id, id);
    else
        bbuf_addf(b, "%s", "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    /* Text: up to about 3 KB, or all of a small message. */
    long text_target = attach ? 1500 + (long)(rng_next(&s) % 1500) : size;
    while ((long)(b->len - start) < text_target)
        words_line(b, &s, 60 + (int)(rng_next(&s) % 12));
    if (attach) {
        bbuf_addf(b, "\r\n--b-%016llx\r\n"
                     "Content-Type: application/pdf; name=\"report-%ld.pdf\"\r\n"
                     "Content-Disposition: attachment; filename=\"report-%ld.pdf\"\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\n",
                  id, n, n);
        long trailer = 26;  /* "\r\n--b-<16>--\r\n" */
        while ((long)(b->len - start) + 78 + trailer <= size) {
            char line[78];
            for (int k = 0; k < 76; k++)
                line[k] = b64[rng_next(&s) % 64];
            line[76] = '\r', line[77] = '\n';
            bbuf_add(b, line, 78);
        }
        bbuf_addf(b, "\r\n--b-%016llx--\r\n", id);
    }
}
