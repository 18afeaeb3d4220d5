/* The heap's own run-time reports: the options in force at start-up
 * (TARN_OPTIONS=verbose) and a table of its statistics at exit (stats).
 *
 * The table is in the spirit of glibc's malloc_stats and mimalloc's
 * MIMALLOC_SHOW_STATS: one row per size class holding anything, then the
 * totals. Everything comes from tarn_heap_stats, which walks the segment
 * headers; the fast paths keep no counter, so the number of malloc and free
 * calls is not known and the table says so. Printing runs in a destructor,
 * after the program's atexit handlers, and allocates nothing: each line is
 * formatted on the stack and written with one write call, so a heap the
 * program broke is not used to report on it. */
#include <stdarg.h>
#include <stdio.h>

#include "heap/internal.h"
#include "options.h"

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...) {
    char line[1280];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) tarn__os_write_stderr(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* A byte count as the shortest readable figure: "512 B", "3.5 KiB". */
static const char *human(char buf[16], size_t bytes) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    if (u == 0)
        snprintf(buf, 16, "%zu B", bytes);
    else
        snprintf(buf, 16, "%.1f %s", v, unit[u]);
    return buf;
}

static void class_rows(const tarn_heap_stats_t *s, size_t *blocks, size_t *bytes, size_t *pages) {
    char a[16];
    emit("  %5s %10s %12s %12s %12s %8s\n", "class", "block", "live blocks", "live bytes",
         "free blocks", "pages");
    for (unsigned cls = 0; cls < TARN_HEAP_CLASSES; cls++) {
        const tarn_heap_class_stats_t *c = &s->classes[cls];
        if (!c->pages && !c->live_blocks) continue;
        size_t live = c->live_blocks * c->block_size;
        emit("  %5u %10zu %12zu %12s %12zu %8zu\n", cls, c->block_size, c->live_blocks,
             human(a, live), c->free_blocks, c->pages);
        *blocks += c->live_blocks;
        *bytes += live;
        *pages += c->pages;
    }
}

static void totals(const tarn_heap_stats_t *s, size_t blocks, size_t bytes, size_t pages) {
    char a[16], b[16], c[16], d[16], e[16];
    emit("  %5s %10s %12zu %12s %12s %8zu\n", "total", "", blocks, human(a, bytes), "", pages);
    emit("  large blocks (own segment): %zu live, %s; huge (own mapping): %zu live, %s\n",
         s->large_blocks, human(a, s->large_bytes), s->huge_blocks, human(b, s->huge_bytes));
    emit("  live: %s in blocks; in use: %s of pages and blocks (peak %s)\n", human(a, s->allocated),
         human(b, s->in_use), human(c, s->peak_in_use));
    emit("  mapped: %s (peak %s); committed: %s (%s unused, not yet purged); resident: %s\n",
         human(a, s->mapped), human(b, s->peak_mapped), human(c, s->committed), human(d, s->unused),
         human(e, s->resident));
    emit("  given back: %s purged in %zu madvise calls, %s unmapped in %zu munmap calls\n",
         human(a, s->purged_bytes), s->purges, human(b, s->unmapped_bytes), s->unmaps);
    emit("  segments: %zu live (%zu cached), %zu mapped and %zu unmapped so far; "
         "%zu thread heaps made\n",
         s->segments, s->cached_segments,
         atomic_load_explicit(&tarn__counters.segment_maps, memory_order_relaxed),
         atomic_load_explicit(&tarn__counters.segment_unmaps, memory_order_relaxed), s->heaps);
    emit("  calls: not counted (malloc and free keep no counter on their fast paths)\n");
}

/* The table, on stderr. */
static void stats_table(void) {
    tarn_heap_stats_t s;
    tarn_heap_stats(&s);
    emit("tarn: heap statistics at exit (pid %ld)\n", tarn__os_pid());
    size_t blocks = 0, bytes = 0, pages = 0;
    class_rows(&s, &blocks, &bytes, &pages);
    totals(&s, blocks, bytes, pages);
}

__attribute__((constructor)) static void report_start(void) {
    if (!tarn__option(TARN__OPT_VERBOSE)) return;
    char buf[1024];
    size_t n = tarn__options_describe(buf, sizeof buf);
    emit("tarn: options in force (pid %ld): %.*s\n", tarn__os_pid(), (int)n, buf);
}

__attribute__((destructor)) static void report_exit(void) {
    if (tarn__option(TARN__OPT_STATS)) stats_table();
}
