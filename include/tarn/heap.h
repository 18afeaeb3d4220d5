/* The general heap: a thread-caching malloc that gives memory back to the OS.
 * The same functions back malloc & co in build/libtarn-override.so. */
#ifndef TARN_HEAP_H
#define TARN_HEAP_H

#include <stdbool.h>
#include <stdio.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What glibc's <stdlib.h> says of malloc & co, so the compiler's object-size
 * checks and _FORTIFY_SOURCE see tarn's blocks as they see malloc's; as
 * there, an unused result of malloc warns only under _FORTIFY_SOURCE, of
 * realloc always. */
#if defined(__GNUC__) || defined(__clang__)
#if defined(_FORTIFY_SOURCE) && _FORTIFY_SOURCE > 0
#define TARN_MALLOC_(...) __attribute__((malloc, warn_unused_result, __VA_ARGS__))
#else
#define TARN_MALLOC_(...) __attribute__((malloc, __VA_ARGS__))
#endif
#define TARN_RESIZE_(...) __attribute__((warn_unused_result, __VA_ARGS__))
#else
#define TARN_MALLOC_(...)
#define TARN_RESIZE_(...)
#endif

TARN_API void *tarn_malloc(size_t size) TARN_MALLOC_(alloc_size(1)); /* 16-aligned; NULL+ENOMEM */
TARN_API void tarn_free(void *p); /* NULL is fine; reports double, interior, foreign frees */
/* Alignments up to 64 KiB come from a size class that is a multiple of them; larger ones get a
 * mapping of their own. From 4 MiB on, any number of blocks may be live; each free, realloc or
 * usable size of one takes a process-wide lock. */
TARN_API void *tarn_calloc(size_t n,
                           size_t size) /* zeroed; NULL+ENOMEM, also when n * size overflows */
    TARN_MALLOC_(alloc_size(1, 2));
TARN_API void *
tarn_realloc(void *p,
             size_t size) /* contents kept; size 0 frees p and returns NULL; NULL+ENOMEM leaves p */
    TARN_RESIZE_(alloc_size(2));
TARN_API void *tarn_reallocarray(void *p, size_t n,
                                 size_t size) /* realloc(p, n * size); NULL+ENOMEM on overflow */
    TARN_RESIZE_(alloc_size(2, 3));
TARN_API int tarn_posix_memalign(void **out, size_t align,
                                 size_t size) /* 0, or EINVAL (align not a power */
    TARN_RESIZE_(nonnull(1));                 /* of two times sizeof(void *)), ENOMEM */
TARN_API void *
tarn_memalign(size_t align,
              size_t size) /* align rounded up to a power of two; NULL+EINVAL past 2^63 */
    TARN_MALLOC_(alloc_align(1), alloc_size(2));
TARN_API void *tarn_aligned_alloc(size_t align,
                                  size_t size) /* NULL+EINVAL if align is not a power of two */
    TARN_MALLOC_(alloc_align(1), alloc_size(2));
TARN_API size_t tarn_usable_size(const void *p); /* bytes usable at p (>= requested); 0 for NULL */
/* C23's free_sized and free_aligned_sized: free p, which was asked for with
 * `size` (and `align`); a size larger than p's block, or p not aligned to
 * align, is reported as misuse and p is left allocated. */
TARN_API void tarn_free_sized(void *p, size_t size);
TARN_API void tarn_free_aligned_sized(void *p, size_t align, size_t size);
/* Gives free memory back now (force: all of it, and blocks of other threads
 * kept for reuse go back to their owners' pages); returns bytes released. */
TARN_API size_t tarn_collect(bool force);

/* ---- statistics --------------------------------------------------------
 * tarn_heap_stats fills one of these for the whole process: every thread's
 * heap, live or left by an exited thread. It walks the heap's segments (the
 * allocation paths keep no counter for it). With other threads allocating
 * meanwhile the figures are a snapshot of each segment at a slightly
 * different moment; in a process whose other threads are idle they are
 * exact. A block counts as live from malloc until its owner's heap takes
 * back the free: at once for a free by the owning thread or into an exited
 * thread's heap, at the owner's next slow-path call for a free from another
 * thread, and only when that thread reuses it, exits or calls
 * tarn_collect(true) for a block another thread keeps for reuse. */
#define TARN_HEAP_CLASSES 88

typedef struct tarn_heap_class_stats {
    size_t block_size;  /* bytes of each block of the class */
    size_t live_blocks; /* blocks handed out and not yet taken back */
    size_t free_blocks; /* blocks free in the class's pages in use, carved or not */
    size_t pages;       /* pages of the class in use */
} tarn_heap_class_stats_t;

typedef struct tarn_heap_stats {
    size_t allocated;      /* bytes in live blocks (block sizes, not request sizes) */
    size_t in_use;         /* bytes of pages and large or huge blocks holding live blocks */
    size_t peak_in_use;    /* highest in_use so far (>= the peak of allocated): checked when a
                            * page or a large or huge block is taken, not per block */
    size_t committed;      /* bytes tarn wrote or may have, and has not given back (an upper
                            * bound, from its own records) */
    size_t resident;       /* bytes of tarn's mappings in RAM now (mincore) */
    size_t mapped;         /* address space held from the OS, headers and caches included */
    size_t peak_mapped;    /* highest mapped so far, checked where peak_in_use is */
    size_t page_mapped;    /* of which segments of small and medium pages */
    size_t unused;         /* committed in unused pages and cached segments: what
                            * tarn_collect(true) would give back */
    size_t purged_bytes;   /* given back with madvise, so far */
    size_t purges;         /* madvise calls, so far */
    size_t unmapped_bytes; /* given back with munmap, so far */
    size_t unmaps;         /* munmap calls, so far */
    size_t segments;       /* 4 MiB segments of pages and large blocks' mappings, cached ones
                            * included */
    size_t cached_segments;
    size_t large_blocks; /* blocks of a mapping each, above 128 KiB up to huge */
    size_t large_bytes;
    size_t huge_blocks; /* blocks of a mapping each (above 4 MiB - 64 KiB, or aligned to 4 MiB or
                           more) */
    size_t huge_bytes;
    size_t heaps; /* thread heaps made so far (one per thread; exited threads' are reused) */
    tarn_heap_class_stats_t classes[TARN_HEAP_CLASSES]; /* small and medium blocks, by class */
} tarn_heap_stats_t;

TARN_API void tarn_heap_stats(tarn_heap_stats_t *out); /* fills *out; allocates nothing */
TARN_API void tarn_stats_print(FILE *out); /* a short report of tarn_heap_stats' figures */
/* Every TARN_OPTIONS option (read by the heap and by libtarn-debug.so): its
 * name, kind, default, value in force and one line of help. */
TARN_API void tarn_options_print(FILE *out);

#undef TARN_MALLOC_
#undef TARN_RESIZE_

#ifdef __cplusplus
}
#endif
#endif
