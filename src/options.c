/* TARN_OPTIONS: one table, parsed once, without allocating.
 *
 * The table below is the one place each option's default lives (docs/
 * options.md repeats it for readers; `tarn run --help-options` prints it
 * from here). The first tarn__option() call reads the environment: the heap
 * makes that call when it sets up its first thread heap, which may be
 * before main, inside another library's constructor, or from any thread.
 * So the parse touches only static storage and the stack (a string value
 * is copied into a static buffer, warnings are formatted on the stack and
 * written with one write call), and a once-flag makes every thread wait
 * for the one that parses. The environment may not be set up yet when the
 * dynamic loader allocates before libc's initialisers ran (environ is then
 * NULL): the defaults are returned and the read is retried on the next
 * call. */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* environ */

#include "internal.h"
#include "options.h"

typedef enum { KIND_FLAG, KIND_NUMBER, KIND_BYTES, KIND_STRING } kind_t;

typedef struct option_def {
    const char *name;
    kind_t kind;
    long def, min, max; /* a flag's max is 1, or 2 when `word2` names that value */
    const char *word2;
    const char *help;
} option_def_t;

#define GIB (1L << 30)

/* Why each heap default is what it is: src/heap/internal.h (purge policy)
 * and docs/heap.md; the checking layer's: docs/options.md. */
static const option_def_t table[TARN__OPT_COUNT] = {
    [TARN__OPT_PURGE_DELAY_MS] =
        {"purge_delay_ms", KIND_NUMBER, 10, 0, 86400000, NULL,
         "ms an unused page or segment stays committed before it goes back"},
    [TARN__OPT_LARGE_DELAY_MS] = {"large_delay_ms", KIND_NUMBER, 250, 0, 86400000, NULL,
                                  "ms a freed large block's mapping is kept for reuse"},
    [TARN__OPT_PURGE_BUDGET] = {"purge_budget", KIND_NUMBER, 3, 0, 30, NULL,
                                "unused memory kept is at most live bytes >> this (3: 1/8)"},
    [TARN__OPT_VERBOSE] = {"verbose", KIND_FLAG, 0, 0, 1, NULL,
                           "print the options in force at start-up"},
    [TARN__OPT_STATS] = {"stats", KIND_FLAG, 0, 0, 1, NULL, "print the heap's statistics at exit"},
    [TARN__OPT_CHECK] = {"check", KIND_FLAG, 0, 0, 1, NULL,
                         "debug library: red zones, quarantine, fill patterns"},
    [TARN__OPT_LEAKS] = {"leaks", KIND_FLAG, 0, 0, 2, "all",
                         "debug library: leak report at exit (all: list reachable blocks too)"},
    [TARN__OPT_LEAKS_EXITCODE] = {"leaks_exitcode", KIND_NUMBER, 0, 0, 255, NULL,
                                  "exit status when leaks are found (0: the program's own)"},
    [TARN__OPT_CONTINUE] = {"continue", KIND_FLAG, 0, 0, 1, NULL,
                            "debug library: report each problem once and go on"},
    [TARN__OPT_QUARANTINE] = {"quarantine", KIND_BYTES, 64L << 20, 0, 64 * GIB, NULL,
                              "debug library: bytes of freed blocks held back before reuse"},
    [TARN__OPT_FRAMES] = {"frames", KIND_NUMBER, 16, 0, 64, NULL,
                          "debug library: stack frames recorded per allocation and free"},
    [TARN__OPT_LOG] = {"log", KIND_STRING, 0, 0, 0, NULL,
                       "debug library: reports to this file (%p: the pid) instead of stderr"},
};

#define PATH_BYTES 4096

static long values[TARN__OPT_COUNT];
static char strings[TARN__OPT_COUNT][PATH_BYTES];
static bool string_set[TARN__OPT_COUNT];

enum { UNREAD, READING, READ };
static _Atomic int state = UNREAD;

/* ---- a bounded string builder on the caller's buffer --------------------
 * Appends never overflow; a line that does not fit is cut, still ending in
 * a newline (the warning lists are long, but a line stays one write). */
typedef struct line {
    char *buf;
    size_t cap, len;
} line_t;

static void put(line_t *l, const char *s, size_t n) {
    size_t room = l->cap - 1 - l->len; /* the last byte is kept for '\n' */
    if (n > room) n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s) { put(l, s, strlen(s)); }

static void put_long(line_t *l, long v) {
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%ld", v);
    put(l, digits, (size_t)n);
}

/* A bytes value with the largest suffix that divides it (64M, not 67108864). */
static void put_bytes(line_t *l, long v) {
    static const char suffix[] = "GMK";
    for (int i = 0; i < 3; i++) {
        long unit = 1L << (10 * (3 - i));
        if (v && v % unit == 0) {
            put_long(l, v / unit);
            put(l, &suffix[i], 1);
            return;
        }
    }
    put_long(l, v);
}

static void put_value(line_t *l, tarn__option_id_t id, long v) {
    if (table[id].kind == KIND_BYTES)
        put_bytes(l, v);
    else if (table[id].word2 && v == 2)
        puts_(l, table[id].word2);
    else
        put_long(l, v);
}

static void line_end(line_t *l) { l->buf[l->len++] = '\n'; }

/* ---- parsing ------------------------------------------------------------ */

static bool name_is(const char *name, const char *s, size_t n) {
    return strlen(name) == n && memcmp(name, s, n) == 0;
}

static int find(const char *s, size_t n) {
    for (int id = 0; id < TARN__OPT_COUNT; id++)
        if (name_is(table[id].name, s, n)) return id;
    return -1;
}

/* Decimal digits, with an optional K, M or G (powers of 1024) when `bytes`;
 * false on anything else or past LONG_MAX. */
static bool parse_long(const char *s, size_t n, bool bytes, long *out) {
    if (n == 0) return false;
    long shift = 0;
    if (bytes) {
        const char *units = "kKmMgG", *u = memchr(units, s[n - 1], 6);
        if (u) {
            shift = 10 * (1 + (u - units) / 2);
            n--;
        }
    }
    if (n == 0) return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        if (v > ((unsigned long)LONG_MAX - (unsigned long)(s[i] - '0')) / 10) return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > ((unsigned long)LONG_MAX >> shift)) return false;
    *out = (long)(v << shift);
    return true;
}

/* Sets option id from the value text (has_value false: `name` alone);
 * false when the value is not one the option takes. */
static bool set_value(tarn__option_id_t id, bool has_value, const char *v, size_t n) {
    const option_def_t *d = &table[id];
    if (d->kind == KIND_STRING) {
        if (!has_value || n == 0 || n >= PATH_BYTES) return false;
        memcpy(strings[id], v, n);
        strings[id][n] = 0;
        string_set[id] = true;
        return true;
    }
    long x = 1;
    if (!has_value) {
        if (d->kind == KIND_BYTES) return false; /* a size needs a value */
    } else if (d->word2 && name_is(d->word2, v, n)) {
        x = 2;
    } else if (!parse_long(v, n, d->kind == KIND_BYTES, &x) || x < d->min || x > d->max) {
        return false;
    }
    values[id] = x;
    return true;
}

static void put_valid_names(line_t *l) {
    puts_(l, "; valid: ");
    for (int id = 0; id < TARN__OPT_COUNT; id++) {
        if (id) puts_(l, ", ");
        puts_(l, table[id].name);
    }
}

/* What a value of option id must look like, for the warning. */
static void put_expected(line_t *l, tarn__option_id_t id) {
    const option_def_t *d = &table[id];
    switch (d->kind) {
    case KIND_FLAG:
        puts_(l, d->word2 ? "0, 1 or " : "0 or 1");
        if (d->word2) puts_(l, d->word2);
        break;
    case KIND_STRING:
        puts_(l, "a file name of 1 to 4095 bytes");
        break;
    default:
        puts_(l,
              d->kind == KIND_BYTES ? "a size (K, M, G: powers of 1024) from " : "a number from ");
        put_value(l, id, d->min);
        puts_(l, " to ");
        put_value(l, id, d->max);
    }
}

#define QUOTED_MAX 64 /* of a bad item, quoted in its warning */

/* One warning line: the item, what is wrong with it, the valid names. */
static void warn(const char *item, size_t n, int id) {
    char buf[1024];
    line_t l = {buf, sizeof buf, 0};
    puts_(&l, "tarn: TARN_OPTIONS: ");
    puts_(&l, id < 0 ? "unknown option \"" : "bad value in \"");
    put(&l, item, n < QUOTED_MAX ? n : QUOTED_MAX);
    puts_(&l, n < QUOTED_MAX ? "\"" : "...\"");
    if (id >= 0) {
        puts_(&l, " (");
        puts_(&l, table[id].name);
        puts_(&l, " takes ");
        put_expected(&l, (tarn__option_id_t)id);
        if (table[id].kind != KIND_STRING) {
            puts_(&l, "; kept ");
            put_value(&l, (tarn__option_id_t)id, values[id]);
        }
        puts_(&l, ")");
    }
    put_valid_names(&l);
    line_end(&l);
    tarn__os_write_stderr(buf, l.len);
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* One comma-free item, spaces around it ignored; an empty item is skipped.
 * Returns whether it was understood. */
static bool parse_item(const char *s, size_t n) {
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    if (n == 0) return true;
    const char *eq = memchr(s, '=', n);
    size_t name_len = eq ? (size_t)(eq - s) : n;
    while (name_len && is_space(s[name_len - 1]))
        name_len--;
    int id = find(s, name_len);
    if (id < 0) {
        warn(s, n, -1);
        return false;
    }
    const char *v = eq ? eq + 1 : NULL;
    size_t vn = eq ? n - (size_t)(v - s) : 0;
    while (vn && is_space(*v))
        v++, vn--;
    if (!set_value((tarn__option_id_t)id, eq != NULL, v, vn)) {
        warn(s, n, id);
        return false;
    }
    return true;
}

static int parse_string(const char *s) {
    for (int id = 0; id < TARN__OPT_COUNT; id++) {
        values[id] = table[id].def;
        string_set[id] = false;
    }
    int problems = 0;
    while (s && *s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        problems += !parse_item(s, n);
        s += n + (comma != NULL);
    }
    return problems;
}

int tarn__options_parse(const char *s) {
    int problems = parse_string(s);
    atomic_store_explicit(&state, READ, memory_order_release);
    return problems;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Parses TARN_OPTIONS once; threads arriving meanwhile wait for it (the
 * parse is a few microseconds of string work: a spin, no lock to set up). */
static tarn__noinline void options_read(void) {
    int expect = UNREAD;
    if (atomic_compare_exchange_strong_explicit(&state, &expect, READING, memory_order_acquire,
                                                memory_order_acquire)) {
        bool env_ready = environ != NULL;
        parse_string(env_ready ? getenv("TARN_OPTIONS") : NULL);
        atomic_store_explicit(&state, env_ready ? READ : UNREAD, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&state, memory_order_acquire) == READING)
        cpu_relax();
}

long tarn__option(tarn__option_id_t id) {
    tarn_assert(id >= 0 && id < TARN__OPT_COUNT, "an option of the enum");
    if (atomic_load_explicit(&state, memory_order_acquire) != READ) options_read();
    return values[id];
}

const char *tarn__option_str(tarn__option_id_t id) {
    tarn_assert(id >= 0 && id < TARN__OPT_COUNT, "an option of the enum");
    if (atomic_load_explicit(&state, memory_order_acquire) != READ) options_read();
    return string_set[id] ? strings[id] : NULL;
}

long tarn__option_log_path(char *buf, size_t n) {
    const char *p = tarn__option_str(TARN__OPT_LOG);
    if (!p || n == 0) return -1;
    char pid[24];
    int pid_len = snprintf(pid, sizeof pid, "%ld", (long)tarn__os_pid());
    size_t len = 0;
    for (; *p; p++) {
        bool is_pid = p[0] == '%' && p[1] == 'p';
        const char *piece = is_pid ? pid : p;
        size_t k = is_pid ? (size_t)pid_len : 1;
        if (len + k >= n) return -1;
        memcpy(buf + len, piece, k);
        len += k;
        p += is_pid;
    }
    buf[len] = 0;
    return (long)len;
}

/* ---- descriptions ------------------------------------------------------- */

size_t tarn__options_describe(char *buf, size_t n) {
    if (n < 2) return 0;
    line_t l = {buf, n, 0};
    for (int id = 0; id < TARN__OPT_COUNT; id++) {
        if (id) puts_(&l, ",");
        puts_(&l, table[id].name);
        puts_(&l, "=");
        if (table[id].kind == KIND_STRING) {
            const char *s = tarn__option_str((tarn__option_id_t)id);
            puts_(&l, s ? s : "");
        } else {
            put_value(&l, (tarn__option_id_t)id, tarn__option((tarn__option_id_t)id));
        }
    }
    l.buf[l.len] = 0;
    return l.len;
}

static const char *kind_name(kind_t k) {
    return k == KIND_FLAG     ? "flag"
           : k == KIND_NUMBER ? "number"
           : k == KIND_BYTES  ? "bytes"
                              : "file";
}

TARN_API void tarn_options_print(FILE *out) {
    fputs("TARN_OPTIONS: comma-separated `name` (sets a flag or number to 1) or `name=value`;\n"
          "sizes take K, M or G (powers of 1024); the last of a repeated name wins.\n"
          "  name              kind     default   in force  meaning\n",
          out);
    for (int id = 0; id < TARN__OPT_COUNT; id++) {
        tarn__option_id_t o = (tarn__option_id_t)id;
        char def[32], now[PATH_BYTES + 32], buf[sizeof now + 256];
        line_t d = {def, sizeof def, 0}, c = {now, sizeof now, 0};
        if (table[id].kind == KIND_STRING) {
            const char *s = tarn__option_str(o);
            puts_(&d, "-");
            puts_(&c, s ? s : "-");
        } else {
            put_value(&d, o, table[id].def);
            put_value(&c, o, tarn__option(o));
        }
        def[d.len] = now[c.len] = 0;
        snprintf(buf, sizeof buf, "  %-16s  %-7s  %-8s  %-8s  %s\n", table[id].name,
                 kind_name(table[id].kind), def, now, table[id].help);
        fputs(buf, out);
    }
}
