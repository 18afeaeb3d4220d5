/* Reports: one short block of text per problem, on stderr or in the log
 * file (log=FILE, %p the pid), then abort, or with `continue` go on.
 *
 * A report is written under one lock, so reports from several threads do
 * not interleave, and with the thread on scratch memory, so what formatting
 * and symbolizing allocate never comes from the heap being reported on.
 * With `continue`, a problem is reported once: a small set remembers the
 * keys (kind, address, stacks) seen, and a count per kind feeds the
 * summary at exit. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debug/internal.h"
#include "options.h"

#define SEEN_SLOTS 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tarn__out_t out;
static int log_fd = -1;
static uint64_t seen[SEEN_SLOTS];
static unsigned long counts[TARN__BUG_COUNT];

static const char *const names[TARN__BUG_COUNT] = {
    [TARN__BUG_OVERFLOW] = "heap buffer overflow",
    [TARN__BUG_UNDERFLOW] = "heap buffer underflow",
    [TARN__BUG_AFTER_FREE] = "write after free",
    [TARN__BUG_DOUBLE_FREE] = "double free",
    [TARN__BUG_INVALID_FREE] = "invalid free",
    [TARN__BUG_FREED_REALLOC] = "realloc of a freed block",
    [TARN__BUG_FREED_USABLE] = "malloc_usable_size of a freed block",
    [TARN__BUG_INVALID_REALLOC] = "realloc of a pointer not allocated",
    [TARN__BUG_INVALID_USABLE] = "malloc_usable_size of a pointer not allocated",
    [TARN__BUG_HEADER] = "block header overwritten",
};

const char *tarn__bug_name(tarn__bug_t kind) { return names[kind]; }

void tarn__out_flush(tarn__out_t *o) {
    size_t done = 0;
    while (done < o->len) {
        ssize_t n = write(o->fd, o->buf + done, o->len - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    o->len = 0;
}

void tarn__out_printf(tarn__out_t *o, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (o->len + len > sizeof o->buf) tarn__out_flush(o);
    memcpy(o->buf + o->len, line, len);
    o->len += len;
}

/* The log file named by the log option, %p replaced by the pid, opened at
 * the first report (so a child of fork writes to its own); stderr when
 * unset or when it cannot be opened. */
static int report_fd(void) {
    if (log_fd >= 0) return log_fd;
    char path[4096];
    if (tarn__option_log_path(path, sizeof path) <= 0) return 2;
    log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return log_fd >= 0 ? log_fd : 2;
}

/* True the first time key is seen; a full set reports again rather than
 * stay silent. */
static bool first_time(uint64_t key) {
    key |= 1;
    for (size_t i = 0, at = key % SEEN_SLOTS; i < SEEN_SLOTS; i++, at = (at + 1) % SEEN_SLOTS) {
        if (seen[at] == key) return false;
        if (seen[at] == 0) {
            seen[at] = key;
            return true;
        }
    }
    return true;
}

tarn__out_t *tarn__report_open(void) {
    pthread_mutex_lock(&lock);
    tarn__scratch_enter();
    out.fd = report_fd();
    out.len = 0;
    return &out;
}

void tarn__report_close(tarn__out_t *o) {
    tarn__out_flush(o);
    tarn__symbolize_end();
    tarn__scratch_leave();
    pthread_mutex_unlock(&lock);
}

tarn__out_t *tarn__report_begin(tarn__bug_t kind, uint64_t key) {
    tarn__out_t *o = tarn__report_open();
    bool go_on = tarn__option(TARN__OPT_CONTINUE) != 0;
    if (go_on && !first_time(key * 31 + kind)) {
        tarn__report_close(o);
        return NULL;
    }
    counts[kind]++;
    return o;
}

void tarn__report_end(tarn__out_t *o) {
    bool go_on = tarn__option(TARN__OPT_CONTINUE) != 0;
    tarn__report_close(o);
    if (!go_on) abort();
}

unsigned long tarn__report_summary(tarn__out_t *o) {
    unsigned long total = 0;
    for (unsigned k = 0; k < TARN__BUG_COUNT; k++)
        total += counts[k];
    if (!total) return 0;
    tarn__out_printf(o, "tarn: %lu problem%s found:", total, total == 1 ? "" : "s");
    const char *sep = " ";
    for (unsigned k = 0; k < TARN__BUG_COUNT; k++) {
        if (!counts[k]) continue;
        tarn__out_printf(o, "%s%lu %s", sep, counts[k], names[k]);
        sep = ", ";
    }
    tarn__out_printf(o, "\n");
    return total;
}

void tarn__report_fork_lock(bool on) {
    if (on)
        pthread_mutex_lock(&lock);
    else
        pthread_mutex_unlock(&lock);
}

/* In a child of fork: its reports go to a file of its own and count its
 * own problems, not the parent's. */
void tarn__report_fork_child(void) {
    if (log_fd >= 0) close(log_fd);
    log_fd = -1;
    memset(seen, 0, sizeof seen);
    memset(counts, 0, sizeof counts);
    pthread_mutex_unlock(&lock);
}
