/* Run-time options: TARN_OPTIONS, read once, without allocating.
 *
 * TARN_OPTIONS is a comma-separated list of `name` (a flag set to 1) or
 * `name=value`. One table (options.c) holds, for each entry of this enum,
 * its name, kind, default and one line of help; the heap reads the first
 * group, the checking layer (src/debug/, libtarn-debug.so) the second.
 * An unknown name or a bad value gives one warning line on stderr listing
 * the valid names, and the option keeps its default: never a crash. */
#ifndef TARN_OPTIONS_H
#define TARN_OPTIONS_H

#include <stddef.h>

typedef enum tarn__option_id {
    /* the heap's tuning (every library) */
    TARN__OPT_PURGE_DELAY_MS, /* unused memory kept this long before it goes back */
    TARN__OPT_LARGE_DELAY_MS, /* a freed large block's mapping kept this long */
    TARN__OPT_PURGE_BUDGET,   /* unused memory kept at most live bytes >> this */
    TARN__OPT_VERBOSE,        /* say at start-up which options are in force */
    TARN__OPT_STATS,          /* print the heap's statistics at exit */
    /* the checking layer (libtarn-debug.so) */
    TARN__OPT_CHECK,          /* red zones, quarantine, fill patterns */
    TARN__OPT_LEAKS,          /* leak report at exit; 2 (leaks=all) lists reachable ones too */
    TARN__OPT_LEAKS_EXITCODE, /* exit status when leaks are found (0: unchanged) */
    TARN__OPT_CONTINUE,       /* report each problem once and go on */
    TARN__OPT_QUARANTINE,     /* bytes of freed blocks held back before reuse */
    TARN__OPT_FRAMES,         /* stack frames recorded per allocation and free */
    TARN__OPT_LOG,            /* reports to this file (%p: the pid) instead of stderr */
    TARN__OPT_COUNT
} tarn__option_id_t;

/* The value of option id: numbers and flags as numbers (leaks=all is 2).
 * The first call reads TARN_OPTIONS; it is safe before main and from any
 * thread. */
long tarn__option(tarn__option_id_t id);

/* A string option's value (log), or NULL when it is not set. */
const char *tarn__option_str(tarn__option_id_t id);

/* The log option with each %p replaced by the pid, into buf (n bytes, NUL
 * ended); returns its length, or -1 when log is not set or does not fit. */
long tarn__option_log_path(char *buf, size_t n);

/* "name=value,..." for every option in force, into buf (NUL ended, cut to
 * n bytes); returns its length. */
size_t tarn__options_describe(char *buf, size_t n);

/* Resets every option to its default, then applies s (TARN_OPTIONS'
 * syntax; NULL: none), warning about each bad item; returns how many items
 * were bad. The result replaces the options in force, and the environment
 * is no longer read: for the tests and the tarn command, which parse
 * strings of their own (not thread-safe against tarn__option). */
int tarn__options_parse(const char *s);

#endif
