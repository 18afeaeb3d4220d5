/* tarn fixed pool: equal-size objects, O(1) alloc and free.
 *
 *   tarn_fixed_t *pool = tarn_fixed_create(sizeof(struct conn), 1024, 1024);
 *   struct conn *c = tarn_fixed_alloc(pool);
 *   tarn_fixed_free(pool, c);
 *   tarn_fixed_destroy(pool);
 *
 * Not thread-safe unless created with .thread_safe (then every call locks). */
#ifndef TARN_FIXED_H
#define TARN_FIXED_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tarn_fixed tarn_fixed_t;

typedef struct tarn_fixed_options {
    size_t obj_size;   /* bytes per object, 1 .. 1 GiB */
    size_t init_count; /* objects in the first block, mapped at create (0: none) */
    size_t grow_count; /* objects in each later block; 0: the pool never grows */
    size_t align;      /* power of two; 0 means 16 (the minimum) */
    size_t keep_empty; /* wholly free blocks kept for reuse before the rest go
                          back to the OS; 0: those reused within the last
                          second (TARN_FIXED_KEEP_MS); TARN_FIXED_KEEP_NONE:
                          none */
    bool thread_safe;  /* any thread may call alloc/free (locks) */
} tarn_fixed_options_t;

#define TARN_FIXED_KEEP_NONE ((size_t)-1)
/* With keep_empty 0, a wholly free block not reused for this long goes back
 * to the OS the next time the pool takes its slow path (no timer thread). */
#define TARN_FIXED_KEEP_MS 1000

/* A pool with 16-byte alignment and the default retention; NULL with errno
 * EINVAL (obj_size 0 or > 1 GiB, both counts 0) or ENOMEM (counts overflow,
 * no memory). */
static inline tarn_fixed_t *tarn_fixed_create(size_t obj_size, size_t init_count,
                                              size_t grow_count);
/* Same with every option; NULL with EINVAL also when align is not a power
 * of two or exceeds 1 MiB. */
static inline tarn_fixed_t *tarn_fixed_create_ex(const tarn_fixed_options_t *opt);
/* An object, or NULL with ENOMEM when the OS refuses memory or a pool
 * created with grow_count 0 is full. */
TARN_API inline void *tarn_fixed_alloc(tarn_fixed_t *pool);
/* Returns p to the pool; NULL is a no-op. A pointer that is not a live
 * object of this pool (foreign, interior, freed twice) is reported. */
TARN_API inline void tarn_fixed_free(tarn_fixed_t *pool, void *p);
/* Gives every block back to the OS; live objects become invalid. */
TARN_API void tarn_fixed_destroy(tarn_fixed_t *pool);
/* Fills *out (walks the blocks: O(blocks)). */
TARN_API void tarn_fixed_stats(const tarn_fixed_t *pool, tarn_pool_stats_t *out);
/* 0 if every block's counts and free list agree; otherwise reports the
 * every block it finds inconsistent and returns -1. O(objects). */
TARN_API int tarn_fixed_check(const tarn_fixed_t *pool);

/* ---- below: layout used by the inline fast paths, not part of the API ---
 * A program compiles the layout below into its own code. TARN_FIXED_LAYOUT
 * names it and is raised whenever it changes; the inline create functions
 * hand the program's value to the library, which refuses to create a pool
 * (reported, NULL with EINVAL) for a program built with another layout, so
 * a layout change never corrupts a program built against the old header.
 * The names ending in `_` are internal, kept free of the `__` that C++
 * reserves. */
#define TARN_FIXED_LAYOUT 1
TARN_API tarn_fixed_t *tarn_fixed_create_layout_(const tarn_fixed_options_t *opt, unsigned layout);
static inline tarn_fixed_t *tarn_fixed_create_ex(const tarn_fixed_options_t *opt) {
    return tarn_fixed_create_layout_(opt, TARN_FIXED_LAYOUT);
}
static inline tarn_fixed_t *tarn_fixed_create(size_t obj_size, size_t init_count,
                                              size_t grow_count) {
    tarn_fixed_options_t opt = {obj_size, init_count, grow_count, 0, 0, false};
    return tarn_fixed_create_layout_(&opt, TARN_FIXED_LAYOUT);
}

/* Blocks of every pool are slots of one process-wide slot space, reserved in
 * chunks of 2^TARN_FIXED_CHUNK_SHIFT_ bytes; a chunk holds slots of one
 * power-of-two size 2^shift, aligned to it. The chunk map, one byte per chunk
 * of the 2^47-byte user address space, holds that shift (0: not slot space),
 * so any address can be checked in O(1) before the header it implies is read. */
#define TARN_FIXED_CHUNK_SHIFT_ 26
#define TARN_FIXED_CHUNKS_ ((uintptr_t)1 << (47 - TARN_FIXED_CHUNK_SHIFT_))

/* A block fills one slot: objects from the slot's first byte, this header in
 * the slot's last 64 bytes; offsets count from the slot start. The current
 * block keeps its free list in the pool (hot.free) and counts nothing: it is
 * left only when exhausted, so it then holds exactly end / obj_size live
 * objects. Other blocks count: allocs - frees == live objects, except that a
 * block retired full holds allocs == frees + 1 (true value in aside) so that
 * its next free takes the slow path. */
struct tarn_fixed_block_ {
    void **free;     /* freed objects of this block, LIFO */
    uint32_t bump;   /* offset of the first object never handed out */
    uint32_t end;    /* offset past the last object */
    uint32_t allocs; /* see above */
    uint32_t frees;
    char *base;                            /* the slot's first byte */
    tarn_fixed_t *pool;                    /* owner; the header reads as zeros once released */
    uint32_t full;                         /* retired with nothing free, on the full list */
    uint32_t aside;                        /* retired full: allocs; empty: when it emptied (ms) */
    struct tarn_fixed_block_ *next, *prev; /* the list of its state */
};

/* The first member of every pool; the inline paths read only this. Alloc
 * and free of the current block both reach hot.free through the pool
 * pointer, so the CPU forwards one's store to the other's load at no cost. */
struct tarn_fixed_hot_ {
    void **free;                   /* free list of the current block */
    struct tarn_fixed_block_ *cur; /* the current block */
    const unsigned char *map;      /* the chunk map */
    uintptr_t low_mask;            /* slot size - 1 */
    size_t obj_size;
    uint64_t div_magic;  /* 2^64 / obj_size + 1: divisibility test (Lemire 2019) */
    unsigned char shift; /* log2 slot size; 0xff in thread-safe pools: no chunk matches */
};

TARN_API void *tarn_fixed_alloc_slow_(tarn_fixed_t *pool);
TARN_API void tarn_fixed_free_slow_(tarn_fixed_t *pool, void *p);
TARN_API void tarn_fixed_block_changed_(tarn_fixed_t *pool, struct tarn_fixed_block_ *b);

/* Fast path: pop the current block's free list, else bump. */
TARN_API inline void *tarn_fixed_alloc(tarn_fixed_t *pool) {
    struct tarn_fixed_hot_ *h = (struct tarn_fixed_hot_ *)pool;
    void **o = h->free;
    if (__builtin_expect(o != NULL, 1)) {
        h->free = (void **)o[0];
    } else {
        struct tarn_fixed_block_ *b = h->cur;
        if (__builtin_expect(b->bump >= b->end, 0)) return tarn_fixed_alloc_slow_(pool);
        o = (void **)(b->base + b->bump);
        b->bump += (uint32_t)h->obj_size;
    }
    o[1] = NULL;
    return o;
}

/* Fast path: proves p a live object of this pool (in a chunk of this pool's
 * slot size, in a block this pool owns, below its bump offset, on an object
 * boundary, not carrying the freed tag address ^ pool), then pushes it.
 * Released and never-used slots read pool NULL, so they fail the second
 * test. Anything unusual goes to the slow path, which reports or confirms.
 * The map byte is read atomically: another thread may be adding a chunk. */
TARN_API inline void tarn_fixed_free(tarn_fixed_t *pool, void *p) {
    struct tarn_fixed_hot_ *h = (struct tarn_fixed_hot_ *)pool;
    uintptr_t a = (uintptr_t)p;
    uintptr_t chunk = a >> TARN_FIXED_CHUNK_SHIFT_;
    uintptr_t off = a & h->low_mask;
    struct tarn_fixed_block_ *b =
        (struct tarn_fixed_block_ *)((a | h->low_mask) + 1 - sizeof(struct tarn_fixed_block_));
    void **o = (void **)p;
    uintptr_t tag = a ^ (uintptr_t)pool;
    if (__builtin_expect(chunk >= TARN_FIXED_CHUNKS_ ||
                             __atomic_load_n(&h->map[chunk], __ATOMIC_RELAXED) != h->shift ||
                             b->pool != pool || off >= b->bump ||
                             off * h->div_magic >= h->div_magic || (uintptr_t)o[1] == tag,
                         0)) {
        tarn_fixed_free_slow_(pool, p);
        return;
    }
    o[1] = (void *)tag;
    if (__builtin_expect(b == h->cur, 1)) {
        o[0] = h->free;
        h->free = o;
        return;
    }
    o[0] = b->free;
    b->free = o;
    if (__builtin_expect(++b->frees == b->allocs, 0)) tarn_fixed_block_changed_(pool, b);
}

#ifdef __cplusplus
}
#endif
#endif
