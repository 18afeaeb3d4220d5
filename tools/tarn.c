/* tarn: runs a program on tarn's heap, with checks and reports, no rebuild.
 *
 *   tarn run [--check] [--leaks] [--stats] [--log FILE] [-o NAME=VALUE]...
 *            [--help-options] [--] PROGRAM [ARGS...]
 *   tarn --help | --version
 *
 * It preloads libtarn-debug.so (with --check or --leaks) or
 * libtarn-override.so, found beside this command (build/) or in the lib
 * directory of its installation (TARN_LIB_FROM_BIN, relative to the
 * directory of /proc/self/exe), before any LD_PRELOAD already set, appends
 * its options to TARN_OPTIONS, and execs the program: the program's exit
 * status, or the signal that killed it, is what the caller sees, as if it
 * had been started directly (a shell then reports 128 + N). Each process
 * the program starts inherits both variables, so each reports for itself.
 * Exit status of tarn itself: 2 for a usage error, 127 when the program is
 * not found and 126 when it cannot be run (as a shell), 1 when the library
 * is missing. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "tarn/heap.h"
#include "tarn/version.h"

#ifndef TARN_LIB_FROM_BIN
#define TARN_LIB_FROM_BIN "../lib"
#endif

#define LEAKS_EXITCODE "23" /* LeakSanitizer's: CI fails on a leak */

static const char usage_text[] =
    "usage: tarn run [--check] [--leaks] [--stats] [--log FILE] [-o NAME=VALUE]... [--]\n"
    "                PROGRAM [ARGS...]\n"
    "       tarn run --help-options\n"
    "       tarn --help | --version\n";

static const char help_text[] =
    "Runs PROGRAM with tarn as its malloc (LD_PRELOAD), no rebuild needed.\n"
    "  --check          red zones, quarantine and fill patterns (libtarn-debug.so)\n"
    "  --leaks          leak report at exit, exit status " LEAKS_EXITCODE
    " on leaks (libtarn-debug.so)\n"
    "  --stats          the heap's statistics at exit\n"
    "  --log FILE       reports to FILE instead of stderr (%p: the pid)\n"
    "  -o NAME=VALUE    any TARN_OPTIONS option (tarn run --help-options lists them)\n"
    "The program's exit status is tarn's; a program killed by a signal looks killed\n"
    "to the caller. Options already in TARN_OPTIONS are kept (the command line's\n"
    "come last and win), and so is an existing LD_PRELOAD.\n";

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "tarn: %s%s%s\n%s", what, arg ? ": " : "", arg ? arg : "", usage_text);
    return 2;
}

/* The options being built: "existing,ours", bounded. */
typedef struct opts {
    char text[8192];
    size_t len;
    bool overflow;
} opts_t;

static void opts_add(opts_t *o, const char *item) {
    size_t n = strlen(item), sep = o->len > 0;
    if (o->len + sep + n >= sizeof o->text) {
        o->overflow = true;
        return;
    }
    if (sep) o->text[o->len++] = ',';
    memcpy(o->text + o->len, item, n + 1);
    o->len += n;
}

/* Whether the comma-separated list s has an item naming `name`. */
static bool has_option(const char *s, const char *name) {
    size_t n = strlen(name);
    for (const char *p = s; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        while (*p == ' ')
            p++;
        if (strncmp(p, name, n) == 0 && (p[n] == '=' || p[n] == ',' || p[n] == 0 || p[n] == ' '))
            return true;
    }
    return false;
}

/* The directory holding this command, from /proc/self/exe. */
static bool own_dir(char *dir, size_t n) {
    ssize_t len = readlink("/proc/self/exe", dir, n - 1);
    if (len <= 0) return false;
    dir[len] = 0;
    char *slash = strrchr(dir, '/');
    if (!slash) return false;
    *slash = 0;
    return true;
}

/* The library's path: beside the command, else in its installed lib dir. */
static bool find_library(const char *name, char *out, size_t n) {
    char dir[PATH_MAX];
    if (!own_dir(dir, sizeof dir)) return false;
    const char *places[] = {"", "/" TARN_LIB_FROM_BIN};
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        int len = snprintf(out, n, "%s%s/%s", dir, places[i], name);
        if (len > 0 && (size_t)len < n && access(out, R_OK) == 0) return true;
    }
    fprintf(stderr, "tarn: cannot find %s in %s or %s/%s\n", name, dir, dir, TARN_LIB_FROM_BIN);
    return false;
}

/* Sets LD_PRELOAD to lib, then what it held before. */
static bool set_preload(const char *lib) {
    const char *old = getenv("LD_PRELOAD");
    char value[PATH_MAX * 4];
    int n = old && *old ? snprintf(value, sizeof value, "%s:%s", lib, old)
                        : snprintf(value, sizeof value, "%s", lib);
    if (n < 0 || (size_t)n >= sizeof value) {
        fprintf(stderr, "tarn: LD_PRELOAD too long\n");
        return false;
    }
    return setenv("LD_PRELOAD", value, 1) == 0;
}

/* The flags of `tarn run`: what they add to TARN_OPTIONS. */
typedef struct run {
    opts_t ours;
    bool debug_lib, help_options;
    int program; /* argv index of PROGRAM, 0 when none */
} run_t;

/* Parses what the program will get, the environment then the flags, as
 * the options in force. */
static void options_in_force(const run_t *r) {
    opts_t all = {.len = 0};
    const char *env = getenv("TARN_OPTIONS");
    if (env && *env) opts_add(&all, env);
    opts_add(&all, r->ours.text);
    tarn__options_parse(all.text);
}

static int parse_run(int argc, char **argv, run_t *r) {
    bool leaks = false;
    int i = 2;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-') break;
        if (strcmp(a, "--check") == 0) {
            opts_add(&r->ours, "check");
        } else if (strcmp(a, "--leaks") == 0) {
            opts_add(&r->ours, "leaks");
            leaks = true;
        } else if (strcmp(a, "--stats") == 0) {
            opts_add(&r->ours, "stats");
        } else if (strcmp(a, "--help-options") == 0) {
            r->help_options = true;
        } else if (strcmp(a, "--log") == 0 || strcmp(a, "-o") == 0) {
            if (i + 1 >= argc) return usage_error("missing value after", a);
            const char *v = argv[++i];
            bool log = a[1] == '-';
            if (log && strchr(v, ','))
                return usage_error("a --log file name cannot hold a comma", v);
            char item[PATH_MAX + 8];
            snprintf(item, sizeof item, "%s%s", log ? "log=" : "", v);
            opts_add(&r->ours, item);
        } else {
            return usage_error("unknown flag", a);
        }
    }
    const char *env = getenv("TARN_OPTIONS");
    if (leaks && !has_option(r->ours.text, "leaks_exitcode") && !has_option(env, "leaks_exitcode"))
        opts_add(&r->ours, "leaks_exitcode=" LEAKS_EXITCODE);
    if (r->ours.overflow) return usage_error("options too long", NULL);
    /* Each bad item has had its warning line: refuse to run with them. */
    if (tarn__options_parse(r->ours.text) > 0) return usage_error("bad option", r->ours.text);
    /* What the program will see decides the library: check or leaks given
     * with -o or already in TARN_OPTIONS need the checking layer too. */
    options_in_force(r);
    r->debug_lib = tarn__option(TARN__OPT_CHECK) || tarn__option(TARN__OPT_LEAKS);
    r->program = i < argc ? i : 0;
    return 0;
}

/* Execs the program with the environment set up; returns only on failure. */
static int exec_program(run_t *r, char **argv) {
    char lib[PATH_MAX];
    if (!find_library(r->debug_lib ? "libtarn-debug.so" : "libtarn-override.so", lib, sizeof lib))
        return 1;
    opts_t all = {.len = 0};
    const char *env = getenv("TARN_OPTIONS");
    if (env && *env) opts_add(&all, env);
    if (r->ours.len) opts_add(&all, r->ours.text);
    if (all.overflow) return usage_error("TARN_OPTIONS too long", NULL);
    if (!set_preload(lib) || setenv("TARN_OPTIONS", all.text, 1) != 0) return 1;
    const char *program = argv[r->program];
    execvp(program, argv + r->program);
    int err = errno;
    fprintf(stderr, "tarn: %s: %s\n", program, err == ENOENT ? "command not found" : strerror(err));
    return err == ENOENT ? 127 : 126;
}

static int run(int argc, char **argv) {
    run_t r = {.ours.len = 0};
    int rc = parse_run(argc, argv, &r);
    if (rc) return rc;
    if (r.help_options) {
        tarn_options_print(stdout); /* parse_run left the options in force parsed */
        return 0;
    }
    if (!r.program) return usage_error("missing program", NULL);
    return exec_program(&r, argv);
}

int main(int argc, char **argv) {
    if (argc < 2) return usage_error("missing command", NULL);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        printf("%s\n%s", usage_text, help_text);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("tarn %s\n", TARN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "run") == 0) return run(argc, argv);
    return usage_error("unknown command", cmd);
}
