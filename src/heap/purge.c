/* Purge: giving the memory of unused pages back to the OS.
 *
 * An unused page joins its heap's purge queue (oldest first); a free segment
 * may sit in the heap's cache. Both count as the heap's dirty bytes. They
 * are given back (madvise, munmap) once they have waited purge_delay_ms (a
 * freed large block's segment large_delay_ms), checked whenever the heap
 * takes a new page, or at once, oldest first, when the dirty bytes exceed
 * the budget (live bytes >> purge_budget: an eighth by default). The three
 * come from TARN_OPTIONS (src/options.c). The budget is what makes a program
 * that frees nearly all it holds drop to a few MiB right after its last free
 * (test/heap_seed000_test.sh), with no timer thread and no later allocator
 * call, and keeps
 * peak RSS close to what is live; the delay keeps a program that frees and
 * reallocates in waves from paying a page fault per reuse (jemalloc's decay
 * and mimalloc's purge delay make the same trade). */
#include "heap/internal.h"
#include "options.h"

/* The options, read on slow paths only. Relaxed atomics: every thread's
 * heap set-up stores them again, with the same values once the options are
 * read (before that, while the environment is not yet set up, with the
 * defaults). */
static _Atomic uint32_t delay_ms, large_delay_ms;
static _Atomic unsigned budget_shift;

void tarn__purge_configure(void) {
    atomic_store_explicit(&delay_ms, (uint32_t)tarn__option(TARN__OPT_PURGE_DELAY_MS),
                          memory_order_relaxed);
    atomic_store_explicit(&large_delay_ms, (uint32_t)tarn__option(TARN__OPT_LARGE_DELAY_MS),
                          memory_order_relaxed);
    atomic_store_explicit(&budget_shift, (unsigned)tarn__option(TARN__OPT_PURGE_BUDGET),
                          memory_order_relaxed);
}

uint64_t tarn__purge_delay(bool large) {
    return atomic_load_explicit(large ? &large_delay_ms : &delay_ms, memory_order_relaxed);
}

/* Page i of seg may share a purge: set up, unused, and queued or
 * holding nothing committed. */
static bool joinable(const tarn__segment_t *seg, unsigned i) {
    if (i >= seg->page_next) return false;
    const tarn__page_t *pg = &seg->pages[i];
    return !(pg->flags & TARN__PAGE_LIVE) && (pg->on_purge_queue || !pg->touched);
}

/* Decommits the oldest queued page together with the queued pages next to
 * it in its segment, in one madvise: each call costs a TLB flush, which
 * under virtualization costs more than the pages (docs/heap.md,
 * "Measurements behind the source's constants"). Returns the bytes given
 * back. */
static size_t purge_oldest(tarn__heap_t *h) {
    tarn__page_t *pg = h->purge_head;
    tarn__segment_t *seg = tarn__segment_of(pg);
    unsigned first = tarn__segment_first_page(seg), lo = pg->index, hi = pg->index;
    for (unsigned i = lo; i > first && joinable(seg, i - 1); i--)
        if (seg->pages[i - 1].on_purge_queue) lo = i - 1;
    for (unsigned i = hi; joinable(seg, i + 1); i++)
        if (seg->pages[i + 1].on_purge_queue) hi = i + 1;
    uint8_t *start = seg->pages[lo].start;
    uint8_t *end = seg->pages[hi].start + seg->pages[hi].touched;
    size_t bytes = 0;
    for (unsigned i = lo; i <= hi; i++) {
        tarn__page_t *p = &seg->pages[i];
        tarn_assert(!(p->flags & TARN__PAGE_LIVE), "a purge never covers a page in use");
        if (p->on_purge_queue) tarn__segment_dequeue(h, p);
        bytes += p->touched;
        p->touched = 0;
    }
    tarn__os_decommit(start, (size_t)(end - start));
    atomic_fetch_add_explicit(&tarn__counters.purges, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.purged_bytes, bytes, memory_order_relaxed);
    return bytes;
}

/* The budget's floor: TARN__DIRTY_MIN unless mallopt(M_TRIM_THRESHOLD), the
 * nearest thing glibc has (free memory kept at the top of its heap before
 * it trims), set another. */
static _Atomic size_t dirty_floor = TARN__DIRTY_MIN;

void tarn__purge_set_floor(size_t bytes) {
    atomic_store_explicit(&dirty_floor, bytes, memory_order_relaxed);
}

/* An exited thread is often replaced by one that adopts its heap (a thread
 * pool, larson), which would otherwise fault in again all that was given
 * back: the heap keeps the budget it had when its thread exited, while
 * other threads free what that thread left (docs/heap.md, "Thread exit"). */
static size_t dirty_budget(tarn__heap_t *h) {
    size_t live = atomic_load_explicit(&h->live_bytes, memory_order_relaxed);
    if (live < h->exit_live) live = h->exit_live;
    size_t b = live >> atomic_load_explicit(&budget_shift, memory_order_relaxed);
    size_t lo = atomic_load_explicit(&dirty_floor, memory_order_relaxed);
    size_t hi = lo > TARN__DIRTY_MAX ? lo : TARN__DIRTY_MAX;
    return b < lo ? lo : b > hi ? hi : b;
}

/* Bytes of the newest cached segment left out of the budget: a program
 * freeing one large block at a time likely allocates the next one soon, and
 * giving it back each time costs an madvise and a page fault per OS page on
 * reuse (docs/heap.md, "Measurements behind the source's constants"). */
static size_t spared(const tarn__heap_t *h) {
    return h->cache && tarn__segment_spared(h, h->cache) ? h->cache->cached_dirty : 0;
}

/* Over budget: give back down to half of it, cached segments first (their
 * reuse saves least), so purging is amortised over many frees. */
void tarn__purge_enforce(tarn__heap_t *h) {
    size_t budget = dirty_budget(h), spare = spared(h);
    if (h->dirty_bytes - spare <= budget) return;
    while (h->dirty_bytes - spare > budget / 2) {
        if (tarn__segment_cache_decommit(h)) continue;
        if (!h->purge_head) break;
        purge_oldest(h);
    }
}

/* Decommits queued pages and unmaps cached segments that waited the delay
 * (all of them if `all`); returns the bytes given back. */
size_t tarn__purge(tarn__heap_t *h, bool all) {
    if (!h->purge_head && !h->cache) return 0; /* the usual case: skip the clock */
    uint64_t now = tarn__os_now_ms(), delay = tarn__purge_delay(false);
    size_t released = 0;
    while (h->purge_head && (all || now - h->purge_head->freed_ms >= delay))
        released += purge_oldest(h);
    uint64_t large = all ? 0 : tarn__purge_delay(true);
    return released + tarn__segment_cache_trim(h, now, all ? 0 : delay, large);
}
