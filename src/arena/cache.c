/* Where arena blocks come from: a process-wide cache of empty blocks, one
 * bin per power-of-two size, in front of the OS.
 *
 * A request-scoped arena maps and unmaps its blocks on every create/destroy
 * unless something keeps them; APR pools are fast because their allocator
 * does. The cache holds at most `limit` bytes (default 8 MiB) and unmaps the
 * rest at once, so memory still goes back to the OS after a peak.
 * Cached blocks stay registered in the page map; their owner is NULL, which
 * is how a free into a cached block is recognised as foreign. */
#include <errno.h>

#include "internal.h"

#define MIN_SHIFT 12
#define BINS 15 /* 4 KiB .. 64 MiB */
_Static_assert(TARN__ARENA_MIN_BLOCK == (size_t)1 << MIN_SHIFT, "bin 0 holds the smallest block");
_Static_assert(TARN__ARENA_MAX_BLOCK == (size_t)1 << (MIN_SHIFT + BINS - 1),
               "the last bin holds the largest");

static struct {
    pthread_mutex_t lock;
    tarn__arena_block_t *bins[BINS];
    size_t bytes; /* sum of the sizes of the cached blocks */
    size_t limit;
} cache = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, (size_t)8 << 20};

static unsigned bin_of(size_t size) {
    tarn_assert(tarn__is_pow2(size) && size >= TARN__ARENA_MIN_BLOCK &&
                    size <= TARN__ARENA_MAX_BLOCK,
                "blocks are powers of two within the bins");
    return (unsigned)__builtin_ctzll(size) - MIN_SHIFT;
}

static tarn__arena_block_t *map_block(size_t size, size_t *os_maps) {
    tarn__arena_block_t *b = tarn__os_map(size);
    if (!b) return NULL;
    if (tarn__pagemap_set(b, size, (uintptr_t)b) != 0) {
        tarn__os_unmap(b, size);
        errno = ENOMEM;
        return NULL;
    }
    b->own.kind = TARN__ARENA_BLOCK;
    b->size = size;
    (*os_maps)++;
    return b;
}

tarn__arena_block_t *tarn__block_get(size_t size, size_t *os_maps) {
    unsigned bin = bin_of(size);
    pthread_mutex_lock(&cache.lock);
    tarn__arena_block_t *b = cache.bins[bin];
    if (b) {
        cache.bins[bin] = b->next;
        cache.bytes -= size;
    }
    pthread_mutex_unlock(&cache.lock);
    return b ? b : map_block(size, os_maps);
}

/* Unregisters and unmaps a chain; the page map entries exist, so clearing
 * them cannot fail. Returns the number of blocks. */
static size_t unmap_chain(tarn__arena_block_t *b) {
    size_t n = 0;
    while (b) {
        tarn__arena_block_t *next = b->next;
        tarn__pagemap_set(b, b->size, 0);
        tarn__os_unmap(b, b->size);
        b = next;
        n++;
    }
    return n;
}

size_t tarn__block_put_chain(tarn__arena_block_t *chain) {
    tarn__arena_block_t *release = NULL;
    pthread_mutex_lock(&cache.lock);
    while (chain) {
        tarn__arena_block_t *b = chain;
        chain = b->next;
        b->own.arena = NULL;
        tarn__arena_block_t **to = &release;
        if (cache.bytes + b->size <= cache.limit) {
            to = &cache.bins[bin_of(b->size)];
            cache.bytes += b->size;
        }
        b->next = *to;
        *to = b;
    }
    pthread_mutex_unlock(&cache.lock);
    return unmap_chain(release);
}

/* Evicts the largest blocks first: they hold the most memory per entry. */
size_t tarn_arena_cache_limit(size_t bytes) {
    tarn__arena_block_t *release = NULL;
    pthread_mutex_lock(&cache.lock);
    size_t old = cache.limit;
    cache.limit = bytes;
    for (int bin = BINS - 1; bin >= 0 && cache.bytes > cache.limit; bin--) {
        while (cache.bins[bin] && cache.bytes > cache.limit) {
            tarn__arena_block_t *b = cache.bins[bin];
            cache.bins[bin] = b->next;
            cache.bytes -= b->size;
            b->next = release;
            release = b;
        }
    }
    pthread_mutex_unlock(&cache.lock);
    unmap_chain(release);
    return old;
}
