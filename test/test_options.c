/* TARN_OPTIONS: parsing of good and bad input, the warnings, the once-only
 * read of the environment (each Criterion test is its own process, so its
 * first tarn__option call reads the environment the test set up), and the
 * printed table. Nothing here calls the heap, so the heap's objects (whose
 * constructor reads the options at load) are not linked in and the first
 * read happens inside each test. How the heap uses its options is tested by
 * test/tarn_options_test.sh, on real programs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "options.h"

/* ---- stderr captured at the file-descriptor level (warnings are written
 * with write(2), not stdio) ---------------------------------------------- */
static int saved_stderr = -1;
static FILE *capture_file;
static char captured[1 << 16];

static void capture_start(void) {
    fflush(stderr);
    capture_file = tmpfile();
    cr_assert(capture_file, "a temporary file for stderr");
    saved_stderr = dup(2);
    dup2(fileno(capture_file), 2);
}

/* What was written to stderr since capture_start, NUL ended. */
static const char *capture_end(void) {
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    rewind(capture_file);
    size_t n = fread(captured, 1, sizeof captured - 1, capture_file);
    captured[n] = 0;
    fclose(capture_file);
    return captured;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Parses s with stderr captured; returns the problems counted. */
static int parse_quiet(const char *s, const char **warnings) {
    capture_start();
    int problems = tarn__options_parse(s);
    *warnings = capture_end();
    return problems;
}

static const char *all_names[] = {
    "purge_delay_ms", "large_delay_ms", "purge_budget", "verbose",    "stats",  "check",
    "leaks",          "leaks_exitcode", "continue",     "quarantine", "frames", "log"};

static void expect_defaults(void) {
    cr_expect_eq(tarn__option(TARN__OPT_PURGE_DELAY_MS), 10);
    cr_expect_eq(tarn__option(TARN__OPT_LARGE_DELAY_MS), 250);
    cr_expect_eq(tarn__option(TARN__OPT_PURGE_BUDGET), 3);
    cr_expect_eq(tarn__option(TARN__OPT_VERBOSE), 0);
    cr_expect_eq(tarn__option(TARN__OPT_STATS), 0);
    cr_expect_eq(tarn__option(TARN__OPT_CHECK), 0);
    cr_expect_eq(tarn__option(TARN__OPT_LEAKS), 0);
    cr_expect_eq(tarn__option(TARN__OPT_LEAKS_EXITCODE), 0);
    cr_expect_eq(tarn__option(TARN__OPT_CONTINUE), 0);
    cr_expect_eq(tarn__option(TARN__OPT_QUARANTINE), 64L << 20);
    cr_expect_eq(tarn__option(TARN__OPT_FRAMES), 16);
    cr_expect_null(tarn__option_str(TARN__OPT_LOG));
}

Test(options, defaults_without_the_variable) {
    unsetenv("TARN_OPTIONS");
    expect_defaults();
}

Test(options, valid_items) {
    const char *w;
    cr_assert_eq(parse_quiet("purge_delay_ms=5,large_delay_ms=0,purge_budget=4,verbose,stats=1,"
                             "check,leaks=all,leaks_exitcode=23,continue,quarantine=4M,frames=32,"
                             "log=/tmp/tarn.%p.log",
                             &w),
                 0, "warnings: %s", w);
    cr_expect_str_empty(w);
    cr_expect_eq(tarn__option(TARN__OPT_PURGE_DELAY_MS), 5);
    cr_expect_eq(tarn__option(TARN__OPT_LARGE_DELAY_MS), 0);
    cr_expect_eq(tarn__option(TARN__OPT_PURGE_BUDGET), 4);
    cr_expect_eq(tarn__option(TARN__OPT_VERBOSE), 1);
    cr_expect_eq(tarn__option(TARN__OPT_STATS), 1);
    cr_expect_eq(tarn__option(TARN__OPT_CHECK), 1);
    cr_expect_eq(tarn__option(TARN__OPT_LEAKS), 2, "leaks=all is 2");
    cr_expect_eq(tarn__option(TARN__OPT_LEAKS_EXITCODE), 23);
    cr_expect_eq(tarn__option(TARN__OPT_CONTINUE), 1);
    cr_expect_eq(tarn__option(TARN__OPT_QUARANTINE), 4L << 20);
    cr_expect_eq(tarn__option(TARN__OPT_FRAMES), 32);
    cr_expect_str_eq(tarn__option_str(TARN__OPT_LOG), "/tmp/tarn.%p.log");
}

Test(options, name_alone_is_one) {
    const char *w;
    cr_assert_eq(parse_quiet("frames,leaks,purge_delay_ms", &w), 0, "%s", w);
    cr_expect_eq(tarn__option(TARN__OPT_FRAMES), 1);
    cr_expect_eq(tarn__option(TARN__OPT_LEAKS), 1);
    cr_expect_eq(tarn__option(TARN__OPT_PURGE_DELAY_MS), 1);
}

Test(options, size_suffixes) {
    static const struct {
        const char *text;
        long value;
    } ok[] = {{"quarantine=0", 0},         {"quarantine=1000", 1000},
              {"quarantine=1k", 1L << 10}, {"quarantine=3K", 3L << 10},
              {"quarantine=5m", 5L << 20}, {"quarantine=64M", 64L << 20},
              {"quarantine=2g", 2L << 30}, {"quarantine=64G", 64L << 30}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *w;
        cr_expect_eq(parse_quiet(ok[i].text, &w), 0, "%s: %s", ok[i].text, w);
        cr_expect_eq(tarn__option(TARN__OPT_QUARANTINE), ok[i].value, "%s", ok[i].text);
    }
    static const char *bad[] = {"quarantine=1T",
                                "quarantine=K",
                                "quarantine=12KB",
                                "quarantine=65G",
                                "quarantine=-1",
                                "quarantine=1.5M",
                                "quarantine=99999999999999999999",
                                "quarantine=9999999999G",
                                "quarantine",
                                "quarantine="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *w;
        cr_expect_eq(parse_quiet(bad[i], &w), 1, "%s is refused", bad[i]);
        cr_expect(strstr(w, "quarantine takes a size"), "%s: %s", bad[i], w);
        cr_expect(strstr(w, "kept 64M"), "%s: %s", bad[i], w);
        cr_expect_eq(tarn__option(TARN__OPT_QUARANTINE), 64L << 20, "%s keeps the default", bad[i]);
    }
    const char *w;
    cr_expect_eq(parse_quiet("purge_delay_ms=1k", &w), 1, "a plain number takes no suffix");
}

Test(options, unknown_name_warns_and_keeps_defaults) {
    const char *w;
    cr_assert_eq(parse_quiet("stats,bogus=3,frames=4", &w), 1);
    cr_expect_eq(count_lines(w), 1, "one line per problem: %s", w);
    cr_expect(strstr(w, "tarn: TARN_OPTIONS: unknown option \"bogus=3\""), "%s", w);
    for (size_t i = 0; i < sizeof all_names / sizeof all_names[0]; i++)
        cr_expect(strstr(w, all_names[i]), "the warning lists %s: %s", all_names[i], w);
    cr_expect_eq(tarn__option(TARN__OPT_STATS), 1, "the good items around it still count");
    cr_expect_eq(tarn__option(TARN__OPT_FRAMES), 4);
    cr_expect_eq(parse_quiet("Stats", &w), 1, "names are case-sensitive");
    cr_expect_eq(parse_quiet("stat", &w), 1, "a prefix is not a name");
    cr_expect_eq(parse_quiet("=1", &w), 1, "an empty name is unknown");
}

Test(options, bad_values_warn_and_keep_defaults) {
    static const struct {
        const char *text, *expected;
    } bad[] = {
        {"purge_delay_ms=abc", "purge_delay_ms takes a number from 0 to 86400000; kept 10"},
        {"purge_delay_ms=86400001", "kept 10"},
        {"purge_delay_ms=-5", "kept 10"},
        {"purge_budget=31", "purge_budget takes a number from 0 to 30; kept 3"},
        {"leaks_exitcode=256", "leaks_exitcode takes a number from 0 to 255; kept 0"},
        {"stats=2", "stats takes 0 or 1; kept 0"},
        {"stats=yes", "stats takes 0 or 1"},
        {"leaks=some", "leaks takes 0, 1 or all; kept 0"},
        {"leaks=3", "leaks takes 0, 1 or all"},
        {"frames=65", "frames takes a number from 0 to 64; kept 16"},
        {"frames=", "frames takes a number"},
        {"frames=4x", "frames takes a number"},
        {"log", "log takes a file name"},
        {"log=", "log takes a file name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *w;
        cr_expect_eq(parse_quiet(bad[i].text, &w), 1, "%s is refused", bad[i].text);
        cr_expect_eq(count_lines(w), 1, "%s: one line: %s", bad[i].text, w);
        cr_expect(strstr(w, "bad value in"), "%s: %s", bad[i].text, w);
        cr_expect(strstr(w, bad[i].expected), "%s: \"%s\" lacks \"%s\"", bad[i].text, w,
                  bad[i].expected);
        cr_expect(strstr(w, "valid: purge_delay_ms,"), "%s lists the names: %s", bad[i].text, w);
        expect_defaults();
    }
}

Test(options, empty_items_and_spaces) {
    const char *w;
    cr_expect_eq(parse_quiet("", &w), 0);
    expect_defaults();
    cr_expect_eq(parse_quiet(",,,", &w), 0);
    expect_defaults();
    cr_expect_eq(parse_quiet(" stats , frames = 4 ,, log= /tmp/x ", &w), 0, "%s", w);
    cr_expect_eq(tarn__option(TARN__OPT_STATS), 1);
    cr_expect_eq(tarn__option(TARN__OPT_FRAMES), 4);
    cr_expect_str_eq(tarn__option_str(TARN__OPT_LOG), "/tmp/x");
}

Test(options, repeated_names_last_wins) {
    const char *w;
    cr_expect_eq(parse_quiet("frames=4,stats,frames=8,stats=0,log=a,log=b", &w), 0, "%s", w);
    cr_expect_eq(tarn__option(TARN__OPT_FRAMES), 8);
    cr_expect_eq(tarn__option(TARN__OPT_STATS), 0);
    cr_expect_str_eq(tarn__option_str(TARN__OPT_LOG), "b");
    cr_expect_eq(parse_quiet("frames=4,frames=x", &w), 1);
    cr_expect_eq(tarn__option(TARN__OPT_FRAMES), 4, "a bad repeat keeps what was set before");
}

Test(options, reparse_resets) {
    const char *w;
    parse_quiet("stats,log=/tmp/a,quarantine=1M", &w);
    parse_quiet("", &w);
    expect_defaults();
}

Test(options, very_long_input) {
    static char big[200000];
    size_t n = 0;
    while (n + 6 < 100000)
        memcpy(big + n, "stats,", 6), n += 6;
    for (int i = 0; i < 10000; i++)
        big[n++] = 'x';
    memcpy(big + n, ",frames=7,log=", 14);
    n += 14;
    for (int i = 0; i < 5000; i++)
        big[n++] = 'p';
    big[n] = 0;
    const char *w;
    cr_assert_eq(parse_quiet(big, &w), 2, "the long name and the long log are refused: %s", w);
    cr_expect_eq(count_lines(w), 2, "one line each");
    cr_expect(strstr(w, "unknown option \"xxxxxxxx"), "%s", w);
    cr_expect(strstr(w, "xxx...\""), "a long item is cut in its warning");
    cr_expect_lt(strlen(w), 2000, "each line stays short");
    cr_expect(strstr(w, "log takes a file name of 1 to 4095 bytes"), "%s", w);
    cr_expect_eq(tarn__option(TARN__OPT_STATS), 1);
    cr_expect_eq(tarn__option(TARN__OPT_FRAMES), 7);
    cr_expect_null(tarn__option_str(TARN__OPT_LOG));
}

Test(options, log_path_pid) {
    const char *w;
    parse_quiet("log=/tmp/t.%p.log", &w);
    char buf[64], want[64];
    snprintf(want, sizeof want, "/tmp/t.%ld.log", (long)getpid());
    cr_expect_eq(tarn__option_log_path(buf, sizeof buf), (long)strlen(want));
    cr_expect_str_eq(buf, want);
    cr_expect_eq(tarn__option_log_path(buf, 8), -1, "too small a buffer");
    parse_quiet("log=%p-%p", &w);
    snprintf(want, sizeof want, "%ld-%ld", (long)getpid(), (long)getpid());
    tarn__option_log_path(buf, sizeof buf);
    cr_expect_str_eq(buf, want);
    parse_quiet("", &w);
    cr_expect_eq(tarn__option_log_path(buf, sizeof buf), -1, "log not set");
}

/* The environment, read on the first call only. */
Test(options, environment_read_once) {
    setenv("TARN_OPTIONS", "purge_delay_ms=7,leaks=all", 1);
    cr_expect_eq(tarn__option(TARN__OPT_PURGE_DELAY_MS), 7);
    cr_expect_eq(tarn__option(TARN__OPT_LEAKS), 2);
    setenv("TARN_OPTIONS", "purge_delay_ms=8", 1);
    cr_expect_eq(tarn__option(TARN__OPT_PURGE_DELAY_MS), 7, "read once");
}

Test(options, environment_warning_once) {
    setenv("TARN_OPTIONS", "nosuch", 1);
    capture_start();
    for (int i = 0; i < 5; i++)
        tarn__option(TARN__OPT_STATS);
    const char *w = capture_end();
    cr_expect_eq(count_lines(w), 1, "one warning, however often options are read: %s", w);
    cr_expect(strstr(w, "unknown option \"nosuch\""), "%s", w);
}

static void *read_frames(void *arg) {
    (void)arg;
    return (void *)(intptr_t)tarn__option(TARN__OPT_FRAMES);
}

Test(options, first_read_from_many_threads) {
    setenv("TARN_OPTIONS", "frames=9", 1);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, read_frames, NULL);
    for (int i = 0; i < 8; i++) {
        void *v;
        pthread_join(t[i], &v);
        cr_expect_eq((intptr_t)v, 9, "every thread sees the parsed value");
    }
}

Test(options, describe_and_print) {
    const char *w;
    parse_quiet("stats,quarantine=1G,log=/tmp/l", &w);
    char buf[512];
    tarn__options_describe(buf, sizeof buf);
    cr_expect(strstr(buf, "purge_delay_ms=10,"), "%s", buf);
    cr_expect(strstr(buf, ",stats=1,"), "%s", buf);
    cr_expect(strstr(buf, ",quarantine=1G,"), "%s", buf);
    cr_expect(strstr(buf, ",log=/tmp/l"), "%s", buf);
    char tiny[8];
    cr_expect_eq(tarn__options_describe(tiny, sizeof tiny), 7, "cut to the buffer");
    cr_expect_eq(strlen(tiny), 7);

    FILE *f = tmpfile();
    tarn_options_print(f);
    rewind(f);
    static char out[8192];
    out[fread(out, 1, sizeof out - 1, f)] = 0;
    fclose(f);
    for (size_t i = 0; i < sizeof all_names / sizeof all_names[0]; i++)
        cr_expect(strstr(out, all_names[i]), "the table has %s", all_names[i]);
    cr_expect(strstr(out, "quarantine        bytes    64M       1G"), "default, then in force: %s",
              out);
    cr_expect(strstr(out, "purge_delay_ms    number   10        10"), "%s", out);
    cr_expect_eq(count_lines(out), 3 + 12, "a header and one line per option");
}
