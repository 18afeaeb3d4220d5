/* The region module: allocators over a caller's buffer.
 *
 *   region.c  public API: argument checks, spans, realloc, stats; dispatches
 *             through one table of methods per policy (as sqlite's mem5 does)
 *   tagged.c  blocks with boundary tags, shared by first/next/best fit and
 *             TLSF: split, O(1) merge with both neighbours, aligned carving
 *   fit.c     free-block index of first and next fit: an address-ordered list
 *             (and a roving pointer)
 *   tlsf.c    segregated lists, 32 per power of two, found through two bitmap
 *             levels: TLSF's index, and best fit's with each list sorted
 *   buddy.c   the buddy system, with control bytes beside the blocks
 *   probe.c   counting build only: memory lines each operation touches
 *
 * Types:
 *   tarn_region_t   at the first 64-byte boundary of the first buffer: counters,
 *                   the span list, then the policy's state (sized per policy)
 *   tarn__span_t    at the start of each buffer (after the region header in
 *                   the first one): where that buffer's blocks live
 *   tarn__tblock_t  header of a tagged block (all policies but buddy)
 *
 * Invariants: r->used is the sum of allocated block sizes and r->live their
 * count; r->total == sum of buffer lengths == used + free + overhead. Spans
 * never overlap and are never merged with each other. */
#ifndef TARN_REGION_INTERNAL_H
#define TARN_REGION_INTERNAL_H

#include "../internal.h"

/* Every access an operation makes to the caller's buffer names its address:
 * TARN__PROBE for the memory of blocks (headers, links, buddy control
 * bytes), spread over the whole buffer, TARN__PROBE_INDEX for the region
 * header, the policy's index and the span headers, a few KiB that stay in
 * cache while the region is in use. Normal builds compile both away; the
 * counting build (-DTARN_REGION_PROBES, used by bench_region) records the
 * distinct 64-byte lines each operation touches: the most cache misses it
 * can take, a measure of its work that does not depend on the cache. */
#ifdef TARN_REGION_PROBES
void tarn__region_probe(const volatile void *addr, bool block);
#define TARN__PROBE(addr) tarn__region_probe(addr, true)
#define TARN__PROBE_INDEX(addr) tarn__region_probe(addr, false)
#else
#define TARN__PROBE(addr) ((void)0)
#define TARN__PROBE_INDEX(addr) ((void)0)
#endif

#define TARN__REGION_MAGIC 0x7461726e72656731ull /* "tarnreg1" */
#define TARN__REGION_ALIGN ((size_t)16)          /* of every block and pointer */

typedef struct tarn__span {
    struct tarn__span *next;
    char *start, *end;   /* the blocks: [start, end), both 16-aligned */
    unsigned char *ctrl; /* buddy: one control byte per 16-byte atom; else NULL */
} tarn__span_t;

/* ---- tagged blocks (tagged.c) ------------------------------------------
 * head = size | TARN__TB_FREE | tag << 48, where size counts the header and
 * is a multiple of 16, and tag is a hash of the block's address. */
typedef struct tarn__tblock {
    size_t prev_size; /* size of the block just before; 0 for a span's first */
    size_t head;
    struct tarn__tblock *next_free, *prev_free; /* free blocks only */
} tarn__tblock_t;

#define TARN__TB_HDR (2 * sizeof(size_t))
#define TARN__TB_MIN sizeof(tarn__tblock_t)
#define TARN__TB_FREE ((size_t)1)
#define TARN__TB_TAG_SHIFT 48
#define TARN__TB_SIZE_MASK ((((size_t)1) << TARN__TB_TAG_SHIFT) - TARN__REGION_ALIGN)
/* Blocks stay below 2^40 bytes so TLSF's first level fits a 32-bit map. */
#define TARN__TB_MAX_BLOCK ((size_t)1 << 39)

_Static_assert(TARN__TB_MIN == 32, "a free block holds its header and two links");
_Static_assert(TARN__TB_HDR % TARN__REGION_ALIGN == 0, "payloads stay 16-aligned");

static inline size_t tarn__tb_size(const tarn__tblock_t *b) {
    TARN__PROBE(&b->head);
    return b->head & TARN__TB_SIZE_MASK;
}
static inline bool tarn__tb_is_free(const tarn__tblock_t *b) {
    TARN__PROBE(&b->head);
    return b->head & TARN__TB_FREE;
}
/* The free-list links of b, for probing (both lie in one 16-byte unit). */
#define TARN__PROBE_LINKS(b) TARN__PROBE(&(b)->next_free)
static inline tarn__tblock_t *tarn__tb_next(const tarn__tblock_t *b) {
    return (tarn__tblock_t *)((char *)b + tarn__tb_size(b));
}

/* The methods of a free-block index. moved() is called after `b`'s header is
 * written and while `old`'s links are intact: `b` (which may be `old` with a
 * new size, or a block covering `old`'s place) replaces `old`, which had
 * old_size. insert()'s `after`, if not NULL, is the free block just below b
 * in address order; address-ordered lists use it to skip their walk. */
typedef struct tarn__tindex {
    void (*insert)(tarn_region_t *r, tarn__tblock_t *b, tarn__tblock_t *after);
    void (*remove)(tarn_region_t *r, tarn__tblock_t *b);
    void (*moved)(tarn_region_t *r, tarn__tblock_t *old, size_t old_size, tarn__tblock_t *b);
    tarn__tblock_t *(*find)(tarn_region_t *r, size_t size); /* NULL if none fits */
    long (*check)(const tarn_region_t *r);                  /* entries, or -1 after reporting */
} tarn__tindex_t;

extern const tarn__tindex_t tarn__first_fit_index, tarn__next_fit_index, tarn__best_fit_index,
    tarn__tlsf_index;

/* True when b is the start of a free block of r (index checks use it). */
bool tarn__tb_is_free_block(const tarn_region_t *r, const tarn__tblock_t *b);

/* ---- policy state --------------------------------------------------------- */
typedef struct tarn__fit_state {
    tarn__tblock_t *head;  /* in address order */
    tarn__tblock_t *rover; /* next fit: where the next search starts; NULL = head */
} tarn__fit_state_t;

#define TARN__TLSF_SL_LOG2 5
#define TARN__TLSF_SL 32 /* lists per power of two */
#define TARN__TLSF_FL 32 /* class 0 holds sizes below 512 in steps of 16 */
/* TLSF and best fit. */
typedef struct tarn__tlsf_state {
    uint32_t fl_map;                /* bit f: sl_map[f] != 0 */
    uint32_t sl_map[TARN__TLSF_FL]; /* bit s: heads[f][s] != NULL */
    tarn__tblock_t *heads[TARN__TLSF_FL][TARN__TLSF_SL];
} tarn__tlsf_state_t;

/* Size class of a TLSF block size (16 <= size < 2^40, multiple of 16), and
 * the smallest size in a class; exposed for the round-trip test. */
void tarn__tlsf_class(size_t size, unsigned *fl, unsigned *sl);
size_t tarn__tlsf_class_min(unsigned fl, unsigned sl);

#define TARN__BUDDY_ORDERS 40 /* blocks of 16 << k bytes, k < 40 */
typedef struct tarn__buddy_state {
    uint64_t nonempty; /* bit k: free[k] != NULL */
    size_t max_align;  /* every span's first atom is aligned to this */
    void *free[TARN__BUDDY_ORDERS];
} tarn__buddy_state_t;

struct tarn_region {
    uint64_t magic; /* TARN__REGION_MAGIC: catches a pointer that is no region */
    tarn_policy_t policy;
    size_t total; /* bytes given by init and add */
    size_t used;  /* bytes in allocated blocks */
    size_t live;  /* allocated blocks */
    tarn__span_t *spans;
    union {
        tarn__fit_state_t fit;
        tarn__tlsf_state_t tlsf;
        tarn__buddy_state_t buddy;
    } u;
};

/* ---- the methods of a policy -------------------------------------------
 * add() lays blocks out in a fresh span (s->start, s->end set; it may move
 * start up); -1 if the span is too small, before changing anything.
 * usable() checks p, a pointer inside span s, and returns its usable size,
 * or 0 after reporting misuse (op names the caller in the report). free()
 * does the same checks. resize() changes a checked p in place, or returns
 * false having changed nothing. */
typedef struct tarn__region_ops {
    void (*init)(tarn_region_t *r, size_t len); /* may be NULL */
    int (*add)(tarn_region_t *r, tarn__span_t *s);
    void *(*alloc)(tarn_region_t *r, size_t size, size_t align);
    size_t (*usable)(tarn_region_t *r, tarn__span_t *s, void *p, const char *op);
    void (*free)(tarn_region_t *r, tarn__span_t *s, void *p);
    bool (*resize)(tarn_region_t *r, tarn__span_t *s, void *p, size_t size);
    int (*check)(const tarn_region_t *r);
    /* Adds free, largest_free and free_blocks to *out. */
    void (*walk)(const tarn_region_t *r, tarn_region_stats_t *out);
} tarn__region_ops_t;

extern const tarn__region_ops_t tarn__tagged_ops, tarn__buddy_ops;

/* Adds one free block of `size` bytes to the totals of a walk. */
static inline void tarn__region_count_free(tarn_region_stats_t *out, size_t size) {
    out->free += size;
    out->free_blocks++;
    if (size > out->largest_free) out->largest_free = size;
}

/* The span of r holding address p, or NULL. */
tarn__span_t *tarn__region_span_of(const tarn_region_t *r, const void *p);

/* For checks: reports one broken invariant and evaluates to -1. */
#define tarn__region_broken(...) (tarn__report(__VA_ARGS__), -1)

#endif
