/* Purge: giving the memory of unused pages back to the OS.
 *
 * An unused page joins its heap's purge queue (oldest first). Its memory is
 * decommitted (madvise) once it has waited PURGE_DELAY_MS, checked whenever
 * the heap takes a new page, or at once when the heap holds more than
 * DIRTY_MAX bytes of such pages. The threshold is what makes seed 000's
 * program drop to a few MiB right after its last free, with no timer thread
 * and no later allocator call; the delay is what keeps a program that frees
 * and reallocates in waves from paying a page fault per reuse (jemalloc's
 * decay and mimalloc's purge delay make the same trade). */
#include "heap/internal.h"

void tarn__purge_remove(tarn__heap_t *h, tarn__page_t *pg) {
    tarn_assert(pg->dirty, "only a queued page leaves the purge queue");
    if (pg->purge_prev) pg->purge_prev->purge_next = pg->purge_next;
    else h->purge_head = pg->purge_next;
    if (pg->purge_next) pg->purge_next->purge_prev = pg->purge_prev;
    else h->purge_tail = pg->purge_prev;
    pg->purge_next = pg->purge_prev = NULL;
    pg->dirty = 0;
    h->dirty_bytes -= pg->touched;
}

/* Decommits the oldest queued page; returns the bytes given back. */
static size_t purge_oldest(tarn__heap_t *h) {
    tarn__page_t *pg = h->purge_head;
    size_t bytes = pg->touched;
    tarn__purge_remove(h, pg);
    tarn__os_decommit(pg->start, bytes);
    pg->touched = 0;
    atomic_fetch_add_explicit(&tarn__counters.purged_bytes, bytes, memory_order_relaxed);
    return bytes;
}

void tarn__purge_add(tarn__heap_t *h, tarn__page_t *pg) {
    if (!pg->touched) return;
    pg->dirty = 1;
    pg->freed_ms = tarn__os_now_ms();
    pg->purge_next = NULL;
    pg->purge_prev = h->purge_tail;
    if (h->purge_tail) h->purge_tail->purge_next = pg;
    else h->purge_head = pg;
    h->purge_tail = pg;
    h->dirty_bytes += pg->touched;
    bool active = atomic_load_explicit(&h->state, memory_order_relaxed) == TARN__HEAP_ACTIVE;
    size_t limit = active ? TARN__DIRTY_MAX : 0;
    if (h->dirty_bytes > limit)
        while (h->purge_head && h->dirty_bytes > limit / 2) purge_oldest(h);
}

/* Decommits queued pages and unmaps cached segments that waited the delay
 * (all of them if `all`); returns the bytes given back. */
size_t tarn__purge(tarn__heap_t *h, bool all) {
    uint64_t now = tarn__os_now_ms();
    size_t released = 0;
    while (h->purge_head && (all || now - h->purge_head->freed_ms >= TARN__PURGE_DELAY_MS))
        released += purge_oldest(h);
    return released + tarn__segment_cache_trim(h, now, all);
}
