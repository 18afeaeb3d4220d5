/* tarn_collect and tarn_stats_print: the heap's manual controls. */
#include "heap/internal.h"

size_t tarn_collect(bool force) {
    tarn__heap_t *h = tarn__tls_heap;
    size_t released = 0;
    if (h != &tarn__empty_heap) {
        if (force) tarn__foreign_flush(h);
        tarn__heap_collect_remote(h);
        if (force) tarn__heap_retire_empty(h);
        released += tarn__purge(h, force);
    }
    return released + tarn__heap_collect_all_abandoned(force);
}

#define MIB(x) ((double)(x) / (1 << 20))

/* Formats into a local buffer first: fprintf may allocate, and must find
 * the heap in a consistent state when it does. */
void tarn_stats_print(FILE *out) {
    tarn__heap_counters_t *c = &tarn__counters;
    tarn__heap_t *h = tarn__tls_heap;
    size_t in_use = 0, pages = 0;
    for (unsigned cls = 0; cls < TARN__CLASSES && h != &tarn__empty_heap; cls++)
        for (tarn__page_t *pg = h->queues[cls].first; pg; pg = pg->next) {
            pages++;
            in_use += (size_t)pg->used * pg->block_size;
        }
    char buf[1024];
    snprintf(buf, sizeof buf,
             "tarn heap: %zu heaps (%zu adopted after their thread exited)\n"
             "  segments: %zu live (%.1f MiB mapped), %zu mapped, %zu unmapped so far\n"
             "  huge blocks: %zu live, %.1f MiB\n"
             "  purged so far: %.1f MiB\n"
             "  this thread: %zu pages with free blocks holding %.1f MiB live, "
             "%.1f MiB unused not yet purged, %u cached segments, "
             "%zu blocks of other threads kept for reuse\n"
             "  process rss: %.1f MiB\n",
             atomic_load(&c->heaps), atomic_load(&c->abandoned_adopted), atomic_load(&c->segments),
             MIB(atomic_load(&c->segment_bytes)), atomic_load(&c->segment_maps),
             atomic_load(&c->segment_unmaps), atomic_load(&c->huge_blocks),
             MIB(atomic_load(&c->huge_bytes)), MIB(atomic_load(&c->purged_bytes)), pages,
             MIB(in_use), MIB(h->dirty_bytes), h->cache_count, tarn__foreign_held(h),
             MIB(tarn__os_rss()));
    fputs(buf, out);
}
