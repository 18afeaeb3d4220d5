/* Helpers shared by the Criterion suites. */
#ifndef TARN_TEST_COMMON_H
#define TARN_TEST_COMMON_H

#include <criterion/criterion.h>
#include <string.h>

#include "internal.h"

/* A handler that records misuse reports instead of aborting, so a test can
 * check the message and that the operation was abandoned. */
static char test_last_error[512];
static int test_error_count;

static void test_record_error(const char *msg, void *arg) {
    (void)arg;
    test_error_count++;
    strncpy(test_last_error, msg, sizeof test_last_error - 1);
}

static inline void test_capture_errors(void) {
    test_error_count = 0;
    test_last_error[0] = 0;
    tarn_set_error_handler(test_record_error, NULL);
}

/* Asserts exactly one report was made since the last check and that it
 * contains `needle`. */
#define expect_report(needle)                                                                      \
    do {                                                                                           \
        cr_assert_eq(test_error_count, 1, "expected one report, got %d (last: %s)",                \
                     test_error_count, test_last_error);                                           \
        cr_assert(strstr(test_last_error, needle), "report \"%s\" lacks \"%s\"", test_last_error,  \
                  needle);                                                                         \
        test_error_count = 0;                                                                      \
    } while (0)

#endif
