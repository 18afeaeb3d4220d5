/* The general heap: types, constants and the inline fast paths.
 *
 * Map of the types (mimalloc's layout: pages inside aligned segments):
 *
 *   tarn__segment_t  4 MiB, aligned to 4 MiB, owned by one heap. Its first
 *                    64 KiB hold this header; the rest is cut into pages of
 *                    one kind: 63 small pages of 64 KiB, 16 mid pages of
 *                    256 KiB or 8 medium pages of 512 KiB (page 0 shortened
 *                    by the header). A large or huge block gets a mapping
 *                    of its own, as long as the block, with the same header
 *                    in its first OS page (large.c), so free(p) always
 *                    finds the header at p & ~(4 MiB - 1).
 *   tarn__page_t     a fixed-size pool for one size class (seed 002): blocks
 *                    are carved lazily from [start, start + reserved * bs).
 *   tarn__heap_t     one per thread: a queue of pages per size class, a
 *                    direct table from small sizes to the page to allocate
 *                    from, the list of pages other threads freed into, the
 *                    purge queue, a small cache of free segments, and the
 *                    foreign cache of other heaps' blocks it freed.
 *
 * Counting identity of a page in use (owner's view):
 *   used + |free| + |local_free| == capacity <= reserved
 * Blocks freed by other threads sit on thread_free and still count in used
 * until the owner collects them; so used == 0 means nobody holds a block.
 *
 * Ownership: only the owning thread touches a page's plain fields, except
 * the ones on its remote line (block_size, cls and the copies for the free
 * checks), which remote freers read. Other threads only push onto
 * thread_free and heap->remote_pages.
 * A block another thread frees may instead wait in that thread's foreign
 * cache (foreign.c) and be handed out again by it: it stays counted in its
 * page's used all along, as if it had never been freed.
 * tarn_heap_stats (stats.c) reads the headers of every thread's segments,
 * each field once with a relaxed atomic load, under the lock that every
 * clear of a segment's map bit takes, and every unmap comes after that
 * clear: so what it reads stays mapped, though it may be changing.
 * A heap whose thread exited is ABANDONED: a thread that wins the CAS to
 * BUSY (a remote freer) or ACTIVE (a new thread adopting it) owns it. */
#ifndef TARN_HEAP_INTERNAL_H
#define TARN_HEAP_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "../internal.h" /* src/internal.h: this file shares its name */
#include "tarn/heap.h"

#define TARN__SEG_SHIFT 22
#define TARN__SEG_SIZE ((size_t)1 << TARN__SEG_SHIFT)
#define TARN__SEG_MASK (TARN__SEG_SIZE - 1)
/* Blocks start at or after this offset; every page start is a multiple of
 * it, which is what gives aligned allocations up to 64 KiB for free. */
#define TARN__HEADER_SPAN ((size_t)64 << 10)
#define TARN__SMALL_PAGE_SHIFT 16
#define TARN__MID_PAGE_SHIFT 18
#define TARN__MEDIUM_PAGE_SHIFT 19
#define TARN__MAX_PAGES (TARN__SEG_SIZE >> TARN__SMALL_PAGE_SHIFT)

#define TARN__SMALL_MAX ((size_t)8 << 10)    /* >= 8 blocks per small page */
/* Classes above SMALL_MAX up to MID_MAX take 256 KiB pages, the rest
 * 512 KiB: a class with few live blocks pins a page of its own, and half
 * as large a page pins half as much. A mid page still holds eight blocks
 * of 32 KiB (six in page 0), so it does not empty and refill much more
 * often. (Measured on bench_heap's alloc-mix, median of 11: peak RSS
 * 13.5 -> 13.0 MiB, time within noise; mid pages up to 64 KiB made it
 * 14.5 MiB and a third slower. realloc-grow: 17.9 -> 17.8 MiB.) */
#define TARN__MID_MAX ((size_t)32 << 10)
#define TARN__MEDIUM_MAX ((size_t)128 << 10) /* >= 3 blocks per medium page */
/* Larger blocks are huge: they belong to no heap and are never cached. */
#define TARN__LARGE_MAX (TARN__SEG_SIZE - TARN__HEADER_SPAN)
#define TARN__DIRECT_MAX 1024
#define TARN__DIRECT_SLOTS (TARN__DIRECT_MAX / 8 + 1)
/* Foreign cache (foreign.c): blocks of other heaps a thread keeps per class,
 * for the classes of the direct table, at most FOREIGN_MAX each and
 * FOREIGN_TOTAL in all (with 128 in all larson held 11.5 MiB); at
 * FOREIGN_FLIP blocks the class's direct slots point at them, so the fast
 * path hands them out first. (bench_heap's larson, median of 11: peak RSS
 * 12.4 -> 10.4 MiB, page faults 5,600 -> 2,400, time 138 -> 130 ms; 16 a
 * class held 11.7 MiB, 64 as 32; switching at the first block instead of the
 * fourth made it a sixth slower than without the cache.) */
#define TARN__FOREIGN_MAX 32
#define TARN__FOREIGN_TOTAL 256
#define TARN__FOREIGN_FLIP 4

/* Purge policy: unused memory (free pages, cached segments) stays committed
 * for purge_delay_ms (a freed large block's segment stays mapped for
 * large_delay_ms) so it can be reused without page faults, unless the
 * heap holds more of it than its budget: its live bytes >> purge_budget
 * (an eighth), clamped to [DIRTY_MIN, DIRTY_MAX]. The three are
 * TARN_OPTIONS options, whose defaults live in src/options.c's table and
 * are read once into purge.c's variables (tarn__purge_configure). Past
 * the budget the oldest goes back at once, so no timer is needed (seed 000) and peak RSS stays within about
 * 1/8 of what the program really uses. (Measured in throwaway builds of
 * this code: 3/32 cut alloc-mix's peak RSS from 0.83-0.85x to 0.78x glibc's
 * but took its time from 0.87-0.89x to 0.97-1.03x, two make bench runs; a
 * sixteenth, 11.9 MiB at 1.11x glibc's time, median of 7. A 1 MiB floor
 * kept a thread's small heap twice its size, and 256 KiB left xmalloc's two
 * producer heaps 190 KiB more than 128 KiB does; 128 KiB costs xmalloc
 * 0.02 s, still half of glibc's time; median of 11.)
 *
 * The delay's default is 10 ms, as mimalloc's default purge_delay: a segment emptied
 * while the program has moved on to other sizes goes back soon instead of
 * waiting in the cache within the budget (bench_heap, median of 7-15
 * interleaved runs against 250 ms: realloc-grow 17.8 -> 17.1 MiB, time
 * within noise; alloc-mix, larson, xmalloc and cache-scratch unchanged
 * within noise, larson with 5% more page faults).
 *
 * A cached large segment (a large block freed) waits longer, 250 ms by
 * default: a program that
 * frees a large block usually allocates another soon, and each segment
 * unmapped costs a TLB flush now and an mmap and page faults on the next
 * block (alloc-mix, median of 21 against 10 ms: munmap calls 137 -> 41
 * (strace), system time 107 -> 98 ms, peak RSS unchanged). The budget may
 * still decommit it sooner. */
#define TARN__DIRTY_MIN ((size_t)128 << 10)
#define TARN__DIRTY_MAX ((size_t)32 << 20)
/* Free segments a heap keeps mapped. A cached large segment counts against
 * the budget by what it holds resident, others by an upper bound of what
 * they touched (segment.c), so the cache can be long; each one kept spares
 * an mmap and an munmap, the munmap a TLB flush (alloc-mix under strace: 133
 * munmap calls with 4, 41 with 8, 39 with 16). Not counted: a cached
 * segment's first OS page, which holds the cache links. */
#define TARN__SEG_CACHE_MAX 8
/* The newest cached segment is not purged for the budget up to this much
 * (see purge.c); the delay still applies to it. */
#define TARN__SPARE_MAX ((size_t)1 << 20)
/* Class slow-path calls an empty front page survives unused (mimalloc's
 * retire cycles): long enough for a malloc/free loop, short enough that a
 * class the program has moved past does not pin a page. */
#define TARN__RETIRE_CALLS 16

/* ---- size classes ------------------------------------------------------
 * Classes 0..7 are multiples of 16 up to 128 (no 8-byte class: a free block
 * carries its freed marker in its second word, see tarn__block_t); above
 * that each doubling has 8 classes (m << s, 9 <= m <= 16), so the rounding
 * waste is below 12.5% past 128 bytes and below 16 bytes under it. */
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

/* tarn__size_class(MEDIUM_MAX) + 1 and tarn__size_class(SMALL_MAX) + 1;
 * test_heap.c checks both against the functions. */
#define TARN__CLASSES 88
#define TARN__SMALL_CLASSES 56
#define TARN__DIRECT_CLASSES 32 /* tarn__size_class(DIRECT_MAX) + 1 */

/* ---- blocks, pages, segments, heaps ------------------------------------ */
/* A block on any free list (a page's free, local_free or thread_free, a
 * foreign cache) or carved but not yet handed out has `freed` ==
 * tarn__block_key(b); tarn__page_pop clears it as it hands the block out.
 * A free that finds the key already there is a double free (glibc's tcache
 * marks its chunks the same way). The key mixes the block's own address
 * with a per-process secret, so data copied out of a free block does not
 * mark its copy as free, and a program cannot forge it by accident. */
typedef struct tarn__block {
    struct tarn__block *next;
    uintptr_t freed;
} tarn__block_t;

/* Set once, before the first heap hands out a block (heap.c). Hidden: the
 * fast free reads it directly, not through the GOT. */
extern uintptr_t tarn__heap_secret __attribute__((visibility("hidden")));

static inline uintptr_t tarn__block_key(const tarn__block_t *b) {
    return tarn__heap_secret ^ (uintptr_t)b;
}

/* A page in use has LIVE set. An unused page has it clear, and so has the
 * all-zero header of a page never set up, so a free of a pointer into
 * either cannot take the fast path (see segment.c). */
enum {
    TARN__PAGE_FULL = 1,   /* no free block: out of its class queue */
    TARN__PAGE_SINGLE = 4, /* one large or huge block */
    TARN__PAGE_LIVE = 0x80,
};

/* The first cache line holds what the fast paths read: malloc pops free;
 * free checks the pointer against start, div_magic and carved_limit (see
 * tarn__block_fits), then pushes onto local_free. */
typedef struct tarn__page {
    tarn__block_t *free;       /* next blocks to hand out */
    tarn__block_t *local_free; /* blocks the owner freed since the last swap */
    uint8_t *start;
    uint64_t div_magic; /* tarn__div_magic(block_size) */
    uint32_t used;
    uint8_t flags; /* anything but LIVE alone sends a same-thread free to the slow path */
    uint8_t index; /* in its segment */
    uint8_t dirty; /* unused but still committed: on the heap's purge queue
                    * (in a foreign cache: the direct slots point at it) */
    uint8_t retire_ttl; /* empty but kept: slow-path calls left before release */
    uint32_t carved_limit; /* capacity * tarn__div_step(block_size) */
    uint32_t capacity;
    uint32_t reserved;
    uint32_t touched; /* bytes of the page that may still be committed */
    struct tarn__page *next, *prev; /* class queue, or segment's unused list */
    struct tarn__page *purge_next, *purge_prev;
    uint64_t freed_ms;
    /* Written by other threads, with what they read (fixed while the page is
     * in use): kept off the line the owner writes on every malloc and free. */
    _Alignas(64) _Atomic(tarn__block_t *) thread_free;
    struct tarn__page *remote_next; /* in heap->remote_pages */
    size_t block_size; /* 0 while unused */
    /* Copies of start, div_magic and carved_limit for the checks of other
     * threads, so they do not read the line the owner writes on every malloc
     * and free. remote_limit only grows while the page is in use; relaxed is
     * enough, as a block a thread holds was carved before it was handed
     * over. */
    uint8_t *remote_start;
    uint64_t remote_div_magic;
    _Atomic uint32_t remote_limit;
    uint8_t cls;
} tarn__page_t;

_Static_assert(offsetof(tarn__page_t, touched) < 64, "the fast paths' fields share one line");
_Static_assert(offsetof(tarn__page_t, cls) < offsetof(tarn__page_t, thread_free) + 64,
               "a remote freer reads one line of the page");

enum { TARN__SEG_SMALL, TARN__SEG_MID, TARN__SEG_MEDIUM, TARN__SEG_LARGE, TARN__SEG_HUGE };

typedef struct tarn__heap tarn__heap_t;

typedef struct tarn__segment {
    tarn__heap_t *heap; /* owner; NULL for huge blocks, which any thread frees */
    uint8_t kind;
    uint8_t page_shift; /* page index = offset >> page_shift */
    uint8_t in_avail;   /* on the heap's list of segments with unused pages */
    uint8_t fresh;      /* every byte past the first OS page (of a segment of pages: of
                         * its pages' areas) reads zero: straight from the OS, or
                         * decommitted while cached */
    uint16_t page_count;
    uint16_t used_pages;
    uint16_t page_next; /* pages from here on have never been set up */
    size_t size;     /* bytes mapped: SEG_SIZE, or a single block's mapping */
    size_t cached_dirty; /* while cached: bytes that may still be committed */
    uint64_t cached_ms;
    struct tarn__segment *next, *prev; /* heap's avail list or cache */
    tarn__page_t *unused_pages;        /* released ones, LIFO: the warmest is reused */
    tarn__page_t pages[TARN__MAX_PAGES];
} tarn__segment_t;

_Static_assert(sizeof(tarn__segment_t) <= TARN__HEADER_SPAN, "header fits its span");
/* The part of the header a large or huge block's mapping holds: all but
 * pages[1..], in its first OS page. */
#define TARN__SINGLE_HEADER (offsetof(tarn__segment_t, pages) + sizeof(tarn__page_t))
_Static_assert(TARN__SINGLE_HEADER <= 4096, "a single block's header fits the smallest page");

typedef struct tarn__page_queue {
    tarn__page_t *first, *last;
} tarn__page_queue_t;

enum { TARN__HEAP_ACTIVE, TARN__HEAP_ABANDONED, TARN__HEAP_BUSY };

struct tarn__heap {
    tarn__page_t *direct[TARN__DIRECT_SLOTS]; /* (size+7)/8 -> queue front */
    tarn__page_queue_t queues[TARN__CLASSES];
    tarn__segment_t *avail[3]; /* small, mid and medium segments with unused pages */
    uint64_t retired[2];       /* classes whose front page is empty but kept */
    tarn__segment_t *cache;    /* free segments kept for reuse, newest first */
    unsigned cache_count;
    tarn__page_t *purge_head, *purge_tail; /* unused dirty pages, oldest first */
    size_t dirty_bytes; /* purge queue's touched bytes + cached segments' */
    /* Bytes of pages and large blocks in use; atomic because a large block
     * may be freed by any thread. Only the purge budget reads it. */
    _Atomic size_t live_bytes;
    struct tarn__heap *next_abandoned; /* under the heaps lock */
    size_t exit_live; /* abandoned: live bytes when its thread exited */
    /* Per class, blocks of other heaps this thread freed, to hand out again:
     * only free, used and capacity (blocks pushed) count; `dirty` says the
     * class's direct slots point here. An array of DIRECT_CLASSES carved
     * right after the heap and never cleared (heaps come from fresh OS
     * pages), so a class never cached costs no memory; the empty heap's is
     * in .bss, not in the library's file. */
    tarn__page_t *foreign;
    uint32_t foreign_held; /* at least the blocks the caches hold */
    _Alignas(64) _Atomic(tarn__page_t *) remote_pages;
    _Atomic int state;
};

/* Global counters, updated on slow paths only. in_use: bytes of pages and
 * large blocks in use (every heap's live_bytes); with huge_bytes and
 * far_bytes it makes tarn_heap_stats' in_use, whose high-water mark
 * peak_in_use is raised where those grow (tarn__peak_note), as is
 * peak_mapped, of segment_bytes + huge_bytes + far_bytes: a segment is
 * mapped only for a page or a large block, both counted in in_use at once. */
typedef struct tarn__heap_counters {
    _Atomic size_t segments, segment_bytes, segment_maps, segment_unmaps;
    _Atomic size_t huge_blocks, huge_bytes, far_blocks, far_bytes;
    _Atomic size_t purged_bytes, purges, unmapped_bytes, unmaps;
    _Atomic size_t in_use, peak_in_use, peak_mapped;
    _Atomic size_t heaps, abandoned_adopted;
} tarn__heap_counters_t;
extern tarn__heap_counters_t tarn__counters;

_Static_assert(TARN_HEAP_CLASSES == TARN__CLASSES, "the public stats have a slot per class");

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

/* stats.c: raises the peak of in_use to what it is now. */
void tarn__peak_note(void);

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
void tarn__segment_release(tarn__heap_t *h, tarn__segment_t *seg);
void tarn__segment_unmap(tarn__segment_t *seg);
void tarn__segment_map_set(tarn__segment_t *seg, bool on);
tarn__page_t *tarn__segment_page_alloc(tarn__heap_t *h, int kind);
tarn__page_t *tarn__segment_page_setup(tarn__segment_t *seg);
void tarn__segment_page_free(tarn__heap_t *h, tarn__page_t *pg);
size_t tarn__segment_cache_trim(tarn__heap_t *h, uint64_t now, bool all);
size_t tarn__segment_cache_decommit(tarn__heap_t *h);

/* page.c */
/* exact: the block must be of class cls (its alignment depends on it). */
void *tarn__page_queue_alloc(tarn__heap_t *h, unsigned cls, bool exact);
void tarn__page_empty(tarn__heap_t *h, tarn__page_t *pg);
void tarn__page_unfull(tarn__heap_t *h, tarn__page_t *pg);
void tarn__direct_update(tarn__heap_t *h, unsigned cls);
size_t tarn__heap_retire_empty(tarn__heap_t *h);

/* heap.c */
tarn__heap_t *tarn__heap_init_thread(void);
size_t tarn__heap_collect_abandoned(tarn__heap_t *h, bool all);
size_t tarn__heap_collect_all_abandoned(bool all);

/* free.c */
void tarn__free_generic(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b);
void tarn__free_unknown(void *p);
void tarn__heap_collect_remote(tarn__heap_t *h);
/* Pushes b, already marked free, onto its page's thread_free: for blocks
 * moved, not freed (the foreign cache giving its blocks back). */
void tarn__remote_push(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b);
/* tarn__block_check's slow path: large and huge blocks, and reports. */
bool tarn__block_check_slow(tarn__segment_t *seg, tarn__page_t *pg, const void *p,
                            const char *op);

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

/* alloc.c */
void *tarn__malloc_generic(tarn__heap_t *h, size_t size);
void *tarn__alloc_class(tarn__heap_t *h, unsigned cls, bool exact);

/* large.c: blocks above MEDIUM_MAX; `align` is a power of two. */
void *tarn__large_alloc(tarn__heap_t *h, size_t size, size_t align, bool zero);
void tarn__large_free(tarn__segment_t *seg, tarn__page_t *pg, void *p);
/* Whether p is the large or huge block of pg; if not, reports as
 * tarn__block_check does. */
bool tarn__large_check(tarn__segment_t *seg, tarn__page_t *pg, const void *p, const char *op);
void *tarn__large_realloc(tarn__segment_t *seg, tarn__page_t *pg, void *p, size_t size);
size_t tarn__large_usable(tarn__page_t *pg, const void *p);

/* far.c: blocks aligned to 4 MiB or more, outside the segment map: free
 * returns false and usable 0 for a pointer that is not one of them. */
void *tarn__far_alloc(size_t size, size_t align);
bool tarn__far_free(void *p);
size_t tarn__far_usable(const void *p);
size_t tarn__far_count(void); /* live far-aligned blocks */
void tarn__far_fork_lock(bool lock);

/* purge.c */
void tarn__purge_add(tarn__heap_t *h, tarn__page_t *pg);
void tarn__purge_remove(tarn__heap_t *h, tarn__page_t *pg);
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
    return tarn__malloc_generic(h, size);
}

/* Same-thread free pushes onto the page's local list; anything unusual
 * (other thread, full or unused page, large block, a pointer that is not a
 * block in use) goes to tarn__free_generic, which reports misuse. */
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
    tarn__free_generic(seg, pg, b);
}

#endif
