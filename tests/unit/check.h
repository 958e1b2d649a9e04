/* Minimal table-test support for Petrel's C unit tests.
 *
 * Each test binary prints one line per failed check and, at the end, a line
 * "unit: N passed, N failed" that tests/run adds up; it exits non-zero when
 * anything failed. A check counts once: CHECK(cond) records a pass or a failure
 * with file:line and the expression. */
#ifndef PETREL_CHECK_H
#define PETREL_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
    if (cond) check_passed++; \
    else { check_failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_MSG(cond, ...) do { \
    if (cond) check_passed++; \
    else { check_failed++; fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
           fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

#define CHECK_STREQ(a, b) CHECK_MSG(strcmp((a), (b)) == 0, "got \"%s\", want \"%s\"", (a), (b))

static inline int check_report(void)
{
    printf("unit: %d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
