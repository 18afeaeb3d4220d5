/* The misuse path: one formatted line, then the handler (default: abort). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Atomic(tarn_error_fn) handler;
static void *_Atomic handler_arg;

tarn_error_fn tarn_set_error_handler(tarn_error_fn fn, void *arg) {
    atomic_store(&handler_arg, arg);
    return atomic_exchange(&handler, fn);
}

/* Writes with no allocation, since the heap may be what is broken. */
static void default_handler(const char *msg) {
    char line[600];
    int n = snprintf(line, sizeof line, "tarn: %s\n", msg);
    if (n < 0) return;
    tarn__os_write_stderr(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    abort();
}

void tarn__report(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tarn_error_fn fn = atomic_load(&handler);
    if (fn)
        fn(msg, atomic_load(&handler_arg));
    else
        default_handler(msg);
}

void tarn__assert_fail(const char *cond, const char *why, const char *file, int line) {
    char msg[600];
    int n = snprintf(msg, sizeof msg, "tarn: assertion failed at %s:%d: %s (%s)\n", file, line,
                     cond, why);
    if (n > 0) tarn__os_write_stderr(msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    abort();
}
