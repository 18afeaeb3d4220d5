/* Allocators over one buffer the caller owns: first fit, next fit, best fit,
 * buddy and TLSF. All bookkeeping lives inside the buffer; no OS call, no
 * other memory. Single-threaded: one region per thread, or the caller locks.
 * Pointers are 16-byte aligned; alloc(0) returns a minimum block. */
#ifndef TARN_REGION_H
#define TARN_REGION_H

#include "tarn/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TARN_FIRST_FIT, /* address-ordered free list, first block that fits */
    TARN_NEXT_FIT,  /* the same list, searched from where the last search stopped */
    TARN_BEST_FIT,  /* size-ordered free list, smallest block that fits */
    TARN_BUDDY,     /* power-of-two blocks, split and merged with their buddy */
    TARN_TLSF,      /* two-level segregated fit: O(1) alloc and free; the default */
    TARN_REGION_DEFAULT = TARN_TLSF
} tarn_policy_t;

typedef struct tarn_region tarn_region_t;

/* The region in buf[0, len) (any address), or NULL: EINVAL if buf is NULL,
 * len is too small for the policy's bookkeeping, or policy is unknown. */
TARN_API tarn_region_t *tarn_region_init(void *buf, size_t len, tarn_policy_t policy);
/* size bytes, 16-byte aligned; NULL with ENOMEM (region unchanged) if no block fits. */
TARN_API void *tarn_region_alloc(tarn_region_t *r, size_t size);
/* size bytes at a multiple of align; NULL with EINVAL unless align is a power
 * of two (buddy: at most 4 KiB, less in regions under 256 KiB), ENOMEM if no fit. */
TARN_API void *tarn_region_alloc_aligned(tarn_region_t *r, size_t size, size_t align);
/* p resized, in place when it can; NULL with ENOMEM (p untouched) if not.
 * p NULL behaves as alloc; a foreign or freed p is reported, then NULL/EINVAL. */
TARN_API void *tarn_region_realloc(tarn_region_t *r, void *p, size_t size);
/* Frees p (NULL is ignored); a foreign p or a double free goes to the error handler. */
TARN_API void tarn_region_free(tarn_region_t *r, void *p);
/* Gives the region buf[0, len) as well; 0, or -1 with EINVAL if too small or
 * overlapping memory the region already has. Spans are never merged. */
TARN_API int tarn_region_add(tarn_region_t *r, void *buf, size_t len);
/* Walks every block: 0, or -1 after reporting the first broken invariant. */
TARN_API int tarn_region_check(const tarn_region_t *r);

/* A snapshot filled by tarn_region_stats (it walks every block).
 * total == used + free + overhead. */
typedef struct tarn_region_stats {
    size_t total;         /* bytes given by init and add */
    size_t used;          /* bytes in allocated blocks, their headers included */
    size_t free;          /* bytes in free blocks */
    size_t overhead;      /* the rest: region and span headers, padding, buddy control */
    size_t largest_free;  /* bytes in the largest free block */
    size_t free_blocks;   /* number of free blocks */
    size_t allocations;   /* live allocations */
    double fragmentation; /* 1 - largest_free / free; 0 when nothing is free */
} tarn_region_stats_t;

/* Fills *out; a bad region is reported and leaves *out zeroed. */
TARN_API void tarn_region_stats(const tarn_region_t *r, tarn_region_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
