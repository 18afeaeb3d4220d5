/* The general heap's types, limits and invariants (the prototypes, in layer
 * order, and the inline fast paths are in heap/internal.h).
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
 *                    finds the header by masking the address:
 *                    p & ~(4 MiB - 1).
 *   tarn__page_t     a fixed-size pool for one size class: blocks are carved
 *                    lazily from [start, start + reserved * bs).
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
 * BUSY (a remote freer) or ACTIVE (a new thread adopting it) owns it.
 *
 * Each limit below says its reason; the measurements behind it are in
 * docs/heap.md, "Measurements behind the source's constants". */
#ifndef TARN_HEAP_TYPES_H
#define TARN_HEAP_TYPES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../internal.h" /* src/internal.h: heap/internal.h shares its name */
#include "tarn/heap.h"

/* ---- limits ------------------------------------------------------------ */
#define TARN__SEG_SHIFT 22
#define TARN__SEG_SIZE ((size_t)1 << TARN__SEG_SHIFT)
#define TARN__SEG_MASK (TARN__SEG_SIZE - 1)
/* The smallest OS page tarn runs on (x86-64, and arm64 with 4 KiB pages):
 * what a single block's header must fit, and what carving advances by. The
 * real size, which may be larger, comes from tarn__os_page_size(). */
#define TARN__OS_PAGE_MIN ((size_t)4096)
/* Blocks start at or after this offset; every page start is a multiple of
 * it, which is what gives aligned allocations up to 64 KiB for free. */
#define TARN__HEADER_SPAN ((size_t)64 << 10)
#define TARN__SMALL_PAGE_SHIFT 16
#define TARN__MID_PAGE_SHIFT 18
#define TARN__MEDIUM_PAGE_SHIFT 19
#define TARN__MAX_PAGES (TARN__SEG_SIZE >> TARN__SMALL_PAGE_SHIFT)

#define TARN__SMALL_MAX ((size_t)8 << 10) /* >= 8 blocks per small page */
/* Classes above SMALL_MAX up to MID_MAX take 256 KiB pages, the rest
 * 512 KiB: a class with few live blocks pins a page of its own, and half
 * as large a page pins half as much (docs/heap.md, "Segments and pages"). */
#define TARN__MID_MAX ((size_t)32 << 10)
#define TARN__MEDIUM_MAX ((size_t)128 << 10) /* >= 3 blocks per medium page */
/* Larger blocks are huge: they belong to no heap and are never cached. */
#define TARN__LARGE_MAX (TARN__SEG_SIZE - TARN__HEADER_SPAN)
#define TARN__DIRECT_MAX 1024
#define TARN__DIRECT_SLOTS (TARN__DIRECT_MAX / 8 + 1)
/* Foreign cache (foreign.c): blocks of other heaps a thread keeps per class,
 * for the classes of the direct table, at most FOREIGN_MAX each and
 * FOREIGN_TOTAL in all, what bounds the pages an idle thread pins; from
 * FOREIGN_FLIP blocks the class's direct slots point at them, so the fast
 * path hands them out first; switching at the first block cost more time
 * than it saved (docs/heap.md, "The foreign cache"). */
#define TARN__FOREIGN_MAX 32
#define TARN__FOREIGN_TOTAL 256
#define TARN__FOREIGN_FLIP 4

/* Purge policy (purge.c): unused memory (free pages, cached segments) stays
 * committed for purge_delay_ms (a freed large block's segment for
 * large_delay_ms) so it can be reused without page faults, unless the heap
 * holds more of it than its budget: its live bytes >> purge_budget, clamped
 * to [DIRTY_MIN, DIRTY_MAX]; the three are TARN_OPTIONS, whose defaults
 * (10 ms, 250 ms, 3: an eighth) are in src/options.c's table. Past the budget the oldest goes back
 * at once, so no timer thread is needed and peak RSS stays within about 1/8 of what the program
 * really uses. The delay is mimalloc's default purge delay; a large block's segment waits longer,
 * as a program that frees a large block usually allocates another soon (docs/heap.md, "Giving
 * memory back", has the measurements of each value). */
#define TARN__DIRTY_MIN ((size_t)128 << 10)
#define TARN__DIRTY_MAX ((size_t)32 << 20)
/* Free segments a heap keeps mapped: each one kept spares an mmap and an
 * munmap with its TLB flush. A cached large segment counts against the
 * budget by what it holds resident, others by an upper bound of what they
 * touched (segment.c; docs/heap.md, "A cached segment counts what it holds"). Not counted: a cached
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
 * waste is below 12.5% past 128 bytes and below 16 bytes under it.
 * The one definition, as constant expressions, so the limits below are
 * checked when the library compiles; tarn__size_class and tarn__class_size
 * (heap/internal.h) are the same functions written for run-time values, and
 * test_heap.c checks both forms, and the round trip, for every size. */
#define TARN__LOG2_(s) (63u - (unsigned)__builtin_clzll(s))
#define TARN__SIZE_CLASS(size)                                                                     \
    ((size) <= 16    ? 0u                                                                          \
     : (size) <= 128 ? (unsigned)(((size)-1) >> 4)                                                 \
                     : (TARN__LOG2_((size)-1) - 7) * 8 +                                           \
                           (unsigned)(((size)-1) >> (TARN__LOG2_((size)-1) - 3)))
#define TARN__CLASS_SIZE(cls)                                                                      \
    ((cls) < 8 ? (size_t)((cls) + 1) << 4 : (size_t)(9 + ((cls)-8) % 8) << (7 + ((cls)-8) / 8 - 3))

#define TARN__CLASSES 88        /* classes up to MEDIUM_MAX */
#define TARN__SMALL_CLASSES 56  /* classes up to SMALL_MAX: small pages */
#define TARN__DIRECT_CLASSES 32 /* classes up to DIRECT_MAX: the direct table's */
_Static_assert(TARN__CLASSES == TARN__SIZE_CLASS(TARN__MEDIUM_MAX) + 1, "classes to MEDIUM_MAX");
_Static_assert(TARN__SMALL_CLASSES == TARN__SIZE_CLASS(TARN__SMALL_MAX) + 1,
               "classes to SMALL_MAX");
_Static_assert(TARN__DIRECT_CLASSES == TARN__SIZE_CLASS(TARN__DIRECT_MAX) + 1,
               "classes to DIRECT_MAX");
_Static_assert(TARN__CLASS_SIZE(TARN__CLASSES - 1) == TARN__MEDIUM_MAX &&
                   TARN__CLASS_SIZE(TARN__SMALL_CLASSES - 1) == TARN__SMALL_MAX &&
                   TARN__CLASS_SIZE(TARN__DIRECT_CLASSES - 1) == TARN__DIRECT_MAX,
               "each limit is the size of its last class, so no class straddles it");
_Static_assert(TARN_HEAP_CLASSES == TARN__CLASSES, "the public stats have a slot per class");
_Static_assert(TARN__SMALL_MAX * 8 <= ((size_t)1 << TARN__SMALL_PAGE_SHIFT) - 0,
               "a small page holds at least 8 blocks of its largest class");

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
    uint8_t flags;          /* anything but LIVE alone sends a same-thread free to the slow path */
    uint8_t index;          /* in its segment */
    uint8_t on_purge_queue; /* unused, maybe still committed: on the heap's purge queue */
    uint8_t retire_ttl;     /* empty but kept: slow-path calls left before release */
    uint32_t carved_limit;  /* capacity * tarn__div_step(block_size) */
    uint32_t capacity;
    uint32_t reserved;
    uint32_t touched;               /* bytes of the page that may still be committed */
    struct tarn__page *next, *prev; /* class queue, or segment's unused list */
    struct tarn__page *purge_next, *purge_prev;
    uint64_t freed_ms;
    uint32_t pushed; /* a foreign cache's (foreign.c) blocks pushed; `used` counts those popped */
    /* Written by other threads, with what they read (fixed while the page is
     * in use): kept off the line the owner writes on every malloc and free. */
    _Alignas(64) _Atomic(tarn__block_t *) thread_free;
    struct tarn__page *remote_next; /* in heap->remote_pages */
    size_t block_size;              /* 0 while unused */
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
_Static_assert(TARN__MAX_PAGES <= UINT8_MAX + 1, "a page's index fits its uint8_t");
_Static_assert(TARN__CLASSES <= UINT8_MAX + 1, "a page's class fits its uint8_t");
_Static_assert(offsetof(tarn__page_t, cls) < offsetof(tarn__page_t, thread_free) + 64,
               "a remote freer reads one line of the page");

/* Kinds of segment: the first TARN__SEG_PAGE_KINDS hold pages (and index
 * heap->avail); a large or huge one holds one block. */
enum { TARN__SEG_SMALL, TARN__SEG_MID, TARN__SEG_MEDIUM, TARN__SEG_LARGE, TARN__SEG_HUGE };
#define TARN__SEG_PAGE_KINDS (TARN__SEG_MEDIUM + 1)

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
    uint16_t page_next;  /* pages from here on have never been set up */
    size_t size;         /* bytes mapped: SEG_SIZE, or a single block's mapping */
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
_Static_assert(TARN__SINGLE_HEADER <= TARN__OS_PAGE_MIN,
               "a single block's header fits the smallest OS page");
_Static_assert(TARN__SEG_SIZE >> TARN__SMALL_PAGE_SHIFT <= UINT16_MAX,
               "page_count, used_pages and page_next fit their uint16_t");

typedef struct tarn__page_queue {
    tarn__page_t *first, *last;
} tarn__page_queue_t;

/* Bits of heap->retired: two words, as long as there are at most 128 classes. */
#define TARN__RETIRED_WORDS 2
_Static_assert(TARN__CLASSES <= TARN__RETIRED_WORDS * 64, "retired[] has a bit per class");
_Static_assert(TARN__DIRECT_CLASSES <= 32, "direct_pinned has a bit per direct class");

enum { TARN__HEAP_ACTIVE, TARN__HEAP_ABANDONED, TARN__HEAP_BUSY };

struct tarn__heap {
    tarn__page_t *direct[TARN__DIRECT_SLOTS]; /* (size+7)/8 -> queue front */
    tarn__page_queue_t queues[TARN__CLASSES];
    tarn__segment_t *avail[TARN__SEG_PAGE_KINDS]; /* by kind: segments with unused pages */
    uint64_t retired[TARN__RETIRED_WORDS];        /* bit per class: front page empty but kept */
    tarn__segment_t *cache;                       /* free segments kept for reuse, newest first */
    unsigned cache_count;
    tarn__page_t *purge_head, *purge_tail; /* unused pages maybe committed, oldest first */
    size_t dirty_bytes;                    /* purge queue's touched bytes + cached segments' */
    /* Bytes of pages and large blocks in use; atomic because a large block
     * may be freed by any thread. Only the purge budget reads it. */
    _Atomic size_t live_bytes;
    struct tarn__heap *next_abandoned; /* under the heaps lock */
    size_t exit_live;                  /* abandoned: live bytes when its thread exited */
    /* Per class, blocks of other heaps this thread freed, to hand out again:
     * only free, used (blocks popped) and pushed count. An array of DIRECT_CLASSES carved
     * right after the heap and never cleared (heaps come from fresh OS
     * pages), so a class never cached costs no memory; the empty heap's is
     * in .bss, not in the library's file. */
    tarn__page_t *foreign;
    uint32_t foreign_held; /* at least the blocks the caches hold */
    /* Bit per class of the direct table: its slots are pinned to the
     * class's foreign cache, and the page layer leaves them there. */
    uint32_t direct_pinned;
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

#endif
