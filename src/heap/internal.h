/* The general heap's internal interface: its layers, their prototypes in
 * layer order, and the inline fast paths (the types, limits and invariants
 * are in heap/types.h).
 *
 * Layers, lowest first; a file calls only into its own layer or the ones
 * below (test/heap_layers_test.sh prints the call graph and fails on a
 * cycle):
 *
 *   os        src/os.c: mmap, madvise, the clock (outside this directory)
 *   counters  counters.c: global counters and their high-water marks
 *   segment   segment.c: 4 MiB segments, the segment map, page slots, the
 *             segment cache, the purge queue's list
 *   purge     purge.c: when unused memory goes back to the OS
 *   page      page.c: pages, class queues, the direct table, retiring
 *   remote    remote.c: frees from other threads (thread_free lists)
 *   caches    foreign.c (other heaps' blocks, kept for reuse), beside
 *             large.c and far.c (blocks with a mapping of their own)
 *   heap      heap.c: a heap per thread, thread exit, adoption, fork
 *   alloc     alloc.c, free.c: malloc's and free's slow paths, which order
 *             the policies of the layers below
 *   stats     stats.c: tarn_heap_stats, tarn_collect (over everything)
 *
 * The fast paths at the end of this file are inlined into alloc.c and
 * free.c (and src/override.c): they belong to the alloc/free layer. */
#ifndef TARN_HEAP_INTERNAL_H
#define TARN_HEAP_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "heap/types.h"

extern tarn__heap_counters_t tarn__counters;

/* Set once, before the first heap hands out a block (heap.c). Hidden: the
 * fast free reads it directly, not through the GOT. */
extern uintptr_t tarn__heap_secret __attribute__((visibility("hidden")));

static inline uintptr_t tarn__block_key(const tarn__block_t *b) {
    return tarn__heap_secret ^ (uintptr_t)b;
}

/* The size classes of heap/types.h (TARN__SIZE_CLASS, TARN__CLASS_SIZE)
 * for a run-time value, written so that gcc computes the logarithm once:
 * realloc, which maps a size to its class and back on every call, took
 * 0.7% more instructions on bench_heap's realloc-grow with the macros
 * (callgrind).
 * test_heap.c checks that both forms agree for every size. */
static inline unsigned tarn__size_class(size_t size) {
    if (size <= 16) return 0;
    if (size <= 128) return (unsigned)((size - 1) >> 4);
    size_t s = size - 1;
    unsigned w = 63u - (unsigned)__builtin_clzll(s);
    return (w - 7) * 8 + (unsigned)(s >> (w - 3));
}

static inline size_t tarn__class_size(unsigned cls) {
    if (cls < 8) return (size_t)(cls + 1) << 4;
    unsigned k = cls - 8;
    return (size_t)(9 + k % 8) << (7 + k / 8 - 3);
}

extern tarn__page_t tarn__empty_page;
extern tarn__heap_t tarn__empty_heap;
extern __thread tarn__heap_t *tarn__tls_heap __attribute__((tls_model("initial-exec")));

/* ---- segment map: one bit per 4 MiB of a 48-bit address space ---------- */
#define TARN__ADDRESS_BITS 48
extern _Atomic uint64_t tarn__segment_map[];

/* True when a segment header starts at a & ~SEG_MASK (checked on every free). */
static inline bool tarn__segment_known(uintptr_t a) {
    if (a >> TARN__ADDRESS_BITS) return false;
    size_t i = a >> TARN__SEG_SHIFT;
    uint64_t w = atomic_load_explicit(&tarn__segment_map[i >> 6], memory_order_relaxed);
    return (w >> (i & 63)) & 1;
}

static inline tarn__segment_t *tarn__segment_of(const void *p) {
    return (tarn__segment_t *)((uintptr_t)p & ~(uintptr_t)TARN__SEG_MASK);
}

/* Index of a segment's first page: small page 0 lies inside the header. */
static inline unsigned tarn__segment_first_page(const tarn__segment_t *seg) {
    return (unsigned)(TARN__HEADER_SPAN >> seg->page_shift);
}

/* The newest cached segment is left out of the purge budget while it holds
 * at most TARN__SPARE_MAX (see purge.c). */
static inline bool tarn__segment_spared(const tarn__heap_t *h, const tarn__segment_t *seg) {
    return seg == h->cache && seg->cached_dirty <= TARN__SPARE_MAX;
}

/* Hands out pg's next free block; pg->free is not empty. */
static inline tarn__block_t *tarn__page_pop(tarn__page_t *pg) {
    tarn__block_t *b = pg->free;
    pg->free = b->next;
    b->freed = 0;
    pg->used++;
    return b;
}

/* ---- block starts: one multiply, one compare ---------------------------
 * For blocks of size d and the offset n of a pointer from the page start,
 * let M = div_magic(d) and q = n * M mod 2^64. Lemire, Kaser and Kurz
 * ("Faster remainder by direct computation", 2019) show that with
 * c = UINT64_MAX / d + 1, d divides a 32-bit n iff n * c mod 2^64 < c. We
 * use more of it: for n = k * d, q = k * e with e = d * M mod 2^64 (the
 * step, 1 <= e <= d), while any other n < 2^32 gives q >= 2^64 / d (at
 * least 2^47 here), far above any k * e (below 2^32). (M = c + 1 when d is
 * a power of two, whose c gives e = 0; then q = n for a block start.) So
 * q < capacity * e says at once that p is a block start and that its block
 * was carved. A pointer below the page start (in the header span before a
 * mid or medium page 0) wraps to a huge n, which also lands above:
 * test_heap_misuse.c checks every offset of every class, from 64 KiB before
 * the page to its end. */
static inline uint64_t tarn__div_magic(size_t d) {
    uint64_t c = UINT64_MAX / d + 1;
    return c + tarn__is_pow2(d);
}

static inline uint64_t tarn__div_step(size_t d) { return (uint64_t)d * tarn__div_magic(d); }

/* Whether b may be freed into a page whose blocks start at `start`: the
 * start of a block carved (q below `limit`) and not already free. */
static inline bool tarn__block_fits(const uint8_t *start, uint64_t div_magic, uint64_t limit,
                                    const tarn__block_t *b) {
    uint64_t n = (uintptr_t)b - (uintptr_t)start;
    return n * div_magic < limit && b->freed != tarn__block_key(b);
}

/* tarn__block_fits for pg's owner, from the fields on its first line. */
static inline bool tarn__block_freeable(const tarn__page_t *pg, const tarn__block_t *b) {
    return tarn__block_fits(pg->start, pg->div_magic, pg->carved_limit, b);
}

/* tarn__block_fits for any thread, from the copies on the remote line; exact
 * unless another thread frees b at the same moment. */
static inline bool tarn__block_freeable_remote(const tarn__page_t *pg, const tarn__block_t *b) {
    return tarn__block_fits(pg->remote_start, pg->remote_div_magic,
                            atomic_load_explicit(&pg->remote_limit, memory_order_relaxed), b);
}

static inline tarn__page_t *tarn__page_of(tarn__segment_t *seg, const void *p) {
    return &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift];
}

/* counters.c: raises the peaks of in_use and mapped to what they are now. */
void tarn__peak_note(void);
/* Bytes in use now: pages and large blocks, huge and far-aligned blocks. */
size_t tarn__in_use_now(void);

/* h took (add) or gave back (sub) n bytes of pages or large blocks. */
static inline void tarn__live_add(tarn__heap_t *h, size_t n) {
    atomic_fetch_add_explicit(&h->live_bytes, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.in_use, n, memory_order_relaxed);
    tarn__peak_note();
}
static inline void tarn__live_sub(tarn__heap_t *h, size_t n) {
    atomic_fetch_sub_explicit(&h->live_bytes, n, memory_order_relaxed);
    atomic_fetch_sub_explicit(&tarn__counters.in_use, n, memory_order_relaxed);
}

/* ---- prototypes, lowest layer first ------------------------------------ */

/* segment.c */
/* Calls fn for every segment mapped (a huge block's mapping included), with
 * none unmapped meanwhile; fn reads headers other threads may be writing,
 * so with relaxed atomic loads, and follows no pointer in them. */
void tarn__segment_each(void (*fn)(const tarn__segment_t *seg, void *arg), void *arg);
void tarn__segment_fork_lock(bool lock);
/* munmap of heap memory, counted in the stats. */
void tarn__heap_unmap(void *p, size_t size);
tarn__segment_t *tarn__segment_alloc(tarn__heap_t *h, int kind);
tarn__segment_t *tarn__segment_alloc_large(tarn__heap_t *h, size_t total);
/* true: cached, the caller enforces the purge budget. */
bool tarn__segment_release(tarn__heap_t *h, tarn__segment_t *seg);
void tarn__segment_unmap(tarn__segment_t *seg);
void tarn__segment_map_set(tarn__segment_t *seg, bool on);
tarn__page_t *tarn__segment_page_alloc(tarn__heap_t *h, int kind);
tarn__page_t *tarn__segment_page_setup(tarn__segment_t *seg);
/* true: the dirty bytes grew, the caller enforces the purge budget. */
bool tarn__segment_page_free(tarn__heap_t *h, tarn__page_t *pg);
/* Takes pg (on_purge_queue) off its heap's purge queue. */
void tarn__segment_dequeue(tarn__heap_t *h, tarn__page_t *pg);
size_t tarn__segment_cache_trim(tarn__heap_t *h, uint64_t now, uint64_t delay,
                                uint64_t large_delay);
size_t tarn__segment_cache_decommit(tarn__heap_t *h);

/* purge.c */
size_t tarn__purge(tarn__heap_t *h, bool all);
void tarn__purge_enforce(tarn__heap_t *h);
/* Sets the floor of every heap's budget (TARN__DIRTY_MIN by default). */
void tarn__purge_set_floor(size_t bytes);
/* Reads purge_delay_ms, large_delay_ms and purge_budget from the options;
 * called before a thread's heap is first used, so no purge runs before. */
void tarn__purge_configure(void);
/* How long unused memory waits before it goes back: a cached large
 * segment's (large) or a page's and any other segment's, in ms. */
uint64_t tarn__purge_delay(bool large);

/* page.c: what the slow path of malloc chooses from (alloc.c orders them). */
/* Ages the empty pages kept at queue fronts (all released if `all`);
 * returns how many were released. */
size_t tarn__page_age_retired(tarn__heap_t *h, bool all);
tarn__page_t *tarn__page_grow(tarn__heap_t *h, tarn__page_t *pg);
tarn__page_t *tarn__page_new(tarn__heap_t *h, unsigned cls);
/* Takes pg out of its class queue (the direct slots follow its front). */
void tarn__page_queue_remove(tarn__heap_t *h, tarn__page_t *pg);
/* Moves pg to the front of its class queue. */
void tarn__page_to_front(tarn__heap_t *h, tarn__page_t *pg);
void tarn__page_empty(tarn__heap_t *h, tarn__page_t *pg);
void tarn__page_unfull(tarn__heap_t *h, tarn__page_t *pg);
void tarn__direct_point(tarn__heap_t *h, unsigned cls, tarn__page_t *target);
void tarn__direct_update(tarn__heap_t *h, unsigned cls);

/* remote.c */
/* Pushes b, already marked free, onto its page's thread_free (and collects
 * the page's heap if its thread has exited). */
void tarn__remote_push(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b);
void tarn__heap_collect_remote(tarn__heap_t *h);
size_t tarn__heap_collect_abandoned(tarn__heap_t *h, bool all);

/* foreign.c: blocks of other heaps a thread freed, kept for its reuse. */
/* Keeps b (of another heap's page pg) in h's cache; false: free it as usual. */
bool tarn__foreign_keep(tarn__heap_t *h, tarn__page_t *pg, tarn__block_t *b);
void *tarn__foreign_take(tarn__heap_t *h, unsigned cls);
void tarn__foreign_spent(tarn__heap_t *h, unsigned cls);
/* Blocks h's foreign caches hold now. */
size_t tarn__foreign_held(const tarn__heap_t *h);
/* Re-points class cls's direct slots after its foreign cache changed:
 * at the cache if `on` and it holds blocks, else at the front page. */
void tarn__foreign_switch(tarn__heap_t *h, unsigned cls, bool on);
/* Gives every cached block back to its owner. */
void tarn__foreign_flush(tarn__heap_t *h);

/* far.c: blocks aligned to 4 MiB or more, outside the segment map: free
 * returns false and usable 0 for a pointer that is not one of them. */
void *tarn__far_alloc(size_t size, size_t align);
bool tarn__far_free(void *p);
size_t tarn__far_usable(const void *p);
size_t tarn__far_count(void); /* live far-aligned blocks */
void tarn__far_fork_lock(bool lock);

/* large.c: blocks above MEDIUM_MAX; `align` is a power of two. */
void *tarn__large_alloc(tarn__heap_t *h, size_t size, size_t align, bool zero);
void tarn__large_free(tarn__segment_t *seg, tarn__page_t *pg, void *p);
/* Whether p is the large or huge block of pg; if not, reports as
 * tarn__block_check does. */
bool tarn__large_check(tarn__segment_t *seg, tarn__page_t *pg, const void *p, const char *op);
void *tarn__large_realloc(tarn__segment_t *seg, tarn__page_t *pg, void *p, size_t size);
size_t tarn__large_usable(tarn__page_t *pg, const void *p);

/* heap.c */
tarn__heap_t *tarn__heap_init_thread(void);
size_t tarn__heap_collect_all_abandoned(bool all);

/* free.c */
void tarn__free_slow(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b);
void tarn__free_unknown(void *p);
/* tarn__block_check's slow path: large and huge blocks, and reports. */
bool tarn__block_check_slow(tarn__segment_t *seg, tarn__page_t *pg, const void *p, const char *op);

/* alloc.c */
void *tarn__malloc_slow(tarn__heap_t *h, size_t size);
void *tarn__alloc_class(tarn__heap_t *h, unsigned cls, bool exact);

/* stats.c: tarn_heap_stats without `resident` (left 0), for mallinfo & co,
 * which do not report it: their walk makes no mincore call. */
void tarn__heap_stats_quick(tarn_heap_stats_t *out);

/* ---- the page layer's search, inline for malloc's slow path (alloc.c) ----
 * Defined here, not in page.c, so that the slow path, which orders the
 * policies in alloc.c, costs what it did as one function in page.c (out of
 * line, the calls cost 1% of alloc-mix's instructions: docs/heap.md,
 * "Layout: where things are"). */

/* Makes pg->free non-empty from blocks already freed (warm in cache, and
 * committed); false if it has none. */
static inline bool tarn__page_reuse(tarn__page_t *pg) {
    if (pg->free) return true;
    if (!pg->local_free) return false;
    pg->free = pg->local_free;
    pg->local_free = NULL;
    return true;
}

/* A page of class cls with a free block, moved to the front of its queue:
 * one whose blocks were freed (warm, and committed) before any carving.
 * Pages with nothing left to carve and nothing free leave the queue as
 * FULL on the way; *carvable is set to the first page that can still carve
 * (NULL if none). NULL if no page has a free block. */
static inline tarn__page_t *tarn__page_find_free(tarn__heap_t *h, unsigned cls,
                                                 tarn__page_t **carvable) {
    tarn__page_t *pg = h->queues[cls].first;
    *carvable = NULL;
    while (pg && !tarn__page_reuse(pg)) {
        tarn__page_t *next = pg->next;
        if (pg->capacity < pg->reserved) {
            if (!*carvable) *carvable = pg;
        } else {
            tarn__page_queue_remove(h, pg);
            pg->flags |= TARN__PAGE_FULL;
        }
        pg = next;
    }
    if (pg && pg != h->queues[cls].first) tarn__page_to_front(h, pg);
    return pg;
}

/* A block already freed in a class up to a quarter larger, found in one of
 * the first two pages of the next class up or, past the direct table's
 * sizes, of the one after. Classes rarely peak together, so lending a
 * neighbour's spare block, instead of carving new memory, keeps each class
 * from committing memory for its own peak; lending further up, or two
 * classes up for small blocks, cost more time than it saved memory
 * (docs/heap.md, "Borrowing"). */
static inline void *tarn__page_borrow(tarn__heap_t *h, unsigned cls) {
    unsigned last = cls < TARN__DIRECT_CLASSES ? cls + 1 : cls + 2;
    for (unsigned up = cls + 1; up <= last && up < TARN__CLASSES; up++) {
        if (tarn__class_size(up) * 4 > tarn__class_size(cls) * 5) break;
        tarn__page_t *pg = h->queues[up].first;
        for (int tries = 0; pg && tries < 2; pg = pg->next, tries++)
            if (tarn__page_reuse(pg)) return tarn__page_pop(pg);
    }
    return NULL;
}

/* Whether p is a block in use (of any kind); if not, reports "<op> of p,
 * ..." and returns false. Inline, as realloc and usable_size check on every
 * call (out of line, the call cost more than the check: docs/heap.md). */
static inline bool tarn__block_check(tarn__segment_t *seg, tarn__page_t *pg, const void *p,
                                     const char *op) {
    if (tarn__likely(seg->kind < TARN__SEG_LARGE && pg->block_size &&
                     (seg->heap == tarn__tls_heap ? tarn__block_freeable(pg, p)
                                                  : tarn__block_freeable_remote(pg, p))))
        return true;
    return tarn__block_check_slow(seg, pg, p, op);
}

/* ---- fast paths (inlined into tarn_malloc/tarn_free and malloc/free) ---- */

/* One load of the direct table, one of the page: no lock, no atomic. */
static inline void *tarn__heap_malloc(size_t size) {
    tarn__heap_t *h = tarn__tls_heap;
    if (tarn__likely(size <= TARN__DIRECT_MAX)) {
        tarn__page_t *pg = h->direct[(size + 7) >> 3];
        if (tarn__likely(pg->free != NULL)) return tarn__page_pop(pg);
    }
    return tarn__malloc_slow(h, size);
}

/* Same-thread free pushes onto the page's local list; anything unusual
 * (other thread, full or unused page, large block, a pointer that is not a
 * block in use) goes to tarn__free_slow, which reports misuse. */
static inline void tarn__heap_free(void *p) {
    uintptr_t a = (uintptr_t)p;
    if (tarn__unlikely(!tarn__segment_known(a))) {
        tarn__free_unknown(p);
        return;
    }
    tarn__segment_t *seg = tarn__segment_of(p);
    tarn__page_t *pg = tarn__page_of(seg, p);
    tarn__block_t *b = p;
    if (tarn__likely(seg->heap == tarn__tls_heap && pg->flags == TARN__PAGE_LIVE &&
                     tarn__block_freeable(pg, b))) {
        b->next = pg->local_free;
        b->freed = tarn__block_key(b);
        pg->local_free = b;
        if (tarn__unlikely(--pg->used == 0)) tarn__page_empty(seg->heap, pg);
        return;
    }
    tarn__free_slow(seg, pg, b);
}

#endif
