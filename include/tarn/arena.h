/* Region pool (arena): small allocations are a pointer bump inside large
 * blocks, everything is released by one reset or destroy (nginx ngx_pool_t,
 * APR pools, obstack). See docs/arena.md for the block layout. */
#ifndef TARN_ARENA_H
#define TARN_ARENA_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tarn_arena tarn_arena_t;

/* A position in an arena, returned by value from tarn_arena_mark, so it is
 * complete here (C++ rejects an incomplete return type under C linkage);
 * the fields are private to tarn_arena_rewind. */
typedef struct tarn_arena_mark {
    uint64_t arena_;     /* the arena's process-unique number */
    uint64_t seq_;       /* arena sequence number when taken */
    uint64_t block_seq_; /* the block being bumped then */
    void *last_;         /* its bump pointer */
    size_t count_;       /* its live count */
} tarn_arena_mark_t;

/* New arena whose blocks start at block_size bytes (0: 8 KiB); NULL+EINVAL
 * when block_size is over 64 MiB, NULL+ENOMEM. */
TARN_API tarn_arena_t *tarn_arena_create(size_t block_size);
/* New arena (parent's options) destroyed with parent: at its reset, rewind or
 * destroy; NULL+EINVAL when block_size is over 64 MiB, NULL+ENOMEM. */
TARN_API tarn_arena_t *tarn_arena_create_child(tarn_arena_t *parent, size_t block_size);
/* size bytes aligned to 16, unique even for 0; NULL+ENOMEM. */
TARN_API void *tarn_arena_alloc(tarn_arena_t *a, size_t size);
/* size bytes aligned to align; NULL+EINVAL if align is not a power of two, NULL+ENOMEM. */
TARN_API void *tarn_arena_alloc_aligned(tarn_arena_t *a, size_t size, size_t align);
/* n*size zeroed bytes; NULL+ENOMEM, also when n*size overflows. */
TARN_API void *tarn_arena_calloc(tarn_arena_t *a, size_t n, size_t size);
/* A copy of s; NULL+ENOMEM, NULL+EINVAL for a NULL s. */
TARN_API char *tarn_arena_strdup(tarn_arena_t *a, const char *s);
/* Optional: reclaims a large allocation now and a block once all its pieces
 * are freed. A pointer this arena does not own goes to the error handler. */
TARN_API void tarn_arena_free(tarn_arena_t *a, void *p);
/* Runs fn(arg) at reset/destroy, last registered first; 0, or -1 with errno. */
TARN_API int tarn_arena_on_destroy(tarn_arena_t *a, void (*fn)(void *), void *arg);
/* Runs the callbacks, destroys the children, frees everything; keeps
 * keep_blocks blocks (default 1, the first) for the next cycle. */
TARN_API void tarn_arena_reset(tarn_arena_t *a);
/* reset, then gives every block back (to the shared cache or the OS). */
TARN_API void tarn_arena_destroy(tarn_arena_t *a);
/* The arena's current top, for tarn_arena_rewind. */
TARN_API tarn_arena_mark_t tarn_arena_mark(tarn_arena_t *a);
/* Drops what came after m: allocations, large ones, callbacks (run), children.
 * A mark of another arena or from before the last reset goes to the error handler. */
TARN_API void tarn_arena_rewind(tarn_arena_t *a, tarn_arena_mark_t m);
/* Fills *out; bytes_in_use counts bytes handed out since each block was last reused. */
TARN_API void tarn_arena_stats(const tarn_arena_t *a, tarn_pool_stats_t *out);

typedef enum tarn_arena_growth {
    TARN_ARENA_DOUBLING = 0, /* each new block twice the last, up to max_block_size */
    TARN_ARENA_FIXED = 1,    /* every block block_size bytes */
} tarn_arena_growth_t;

/* Zero-initialised fields take their defaults. */
typedef struct tarn_arena_options {
    size_t block_size;          /* first block, rounded up to a power of two; 0: 8 KiB */
    size_t max_block_size;      /* doubling stops here; 0: 1 MiB; at most 64 MiB */
    tarn_arena_growth_t growth; /* default TARN_ARENA_DOUBLING */
    size_t keep_blocks;         /* blocks reset keeps, the one holding the arena included; 0: 1 */
    bool thread_safe;           /* a mutex around every call (default: one thread) */
} tarn_arena_options_t;

/* tarn_arena_create with options (NULL: defaults); NULL+EINVAL for bad ones, NULL+ENOMEM. */
TARN_API tarn_arena_t *tarn_arena_create_ex(const tarn_arena_options_t *opt);

/* Bytes of empty blocks kept process-wide for the next arena (default 8 MiB);
 * returns the previous limit and gives the excess back to the OS now. */
TARN_API size_t tarn_arena_cache_limit(size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
