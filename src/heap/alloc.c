/* Allocation entry points: the public malloc family on top of the inline
 * fast path, the generic slow path, and aligned allocation.
 *
 * Alignment comes from layout, not from padding: every page starts on a
 * 64 KiB boundary and a class of size m << s holds blocks aligned to 2^s,
 * so an aligned request up to 64 KiB is served by the smallest class that
 * is a multiple of the alignment and free() needs no special case. */
#include <stdint.h>

#include "heap/internal.h"

/* Requests above this fail with ENOMEM before any arithmetic can wrap. */
#define TARN__REQUEST_MAX ((size_t)PTRDIFF_MAX - TARN__SEG_SIZE)

static void *fail_nomem(void) {
    errno = ENOMEM;
    return NULL;
}

/* From class cls's front page, else the class slow path. */
void *tarn__alloc_class(tarn__heap_t *h, unsigned cls, bool exact) {
    tarn__page_t *pg = h->queues[cls].first;
    if (pg && pg->free) return tarn__page_pop(pg);
    return tarn__page_queue_alloc(h, cls, exact);
}

static tarn__heap_t *heap_ready(tarn__heap_t *h) {
    if (tarn__unlikely(h == &tarn__empty_heap)) return tarn__heap_init_thread();
    if (atomic_load_explicit(&h->remote_pages, memory_order_relaxed)) tarn__heap_collect_remote(h);
    return h;
}

void *tarn__malloc_generic(tarn__heap_t *h, size_t size) {
    h = heap_ready(h);
    if (!h) return fail_nomem();
    if (size <= TARN__MEDIUM_MAX) {
        unsigned cls = tarn__size_class(size);
        tarn__foreign_spent(h, cls);
        return tarn__alloc_class(h, cls, false);
    }
    if (size > TARN__REQUEST_MAX) return fail_nomem();
    return tarn__large_alloc(h, size, 16, false);
}

void *tarn_malloc(size_t size) { return tarn__heap_malloc(size); }

void *tarn_calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return fail_nomem();
    if (total > TARN__MEDIUM_MAX) {
        if (total > TARN__REQUEST_MAX) return fail_nomem();
        tarn__heap_t *h = heap_ready(tarn__tls_heap);
        return h ? tarn__large_alloc(h, total, 16, true) : fail_nomem();
    }
    void *p = tarn__heap_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

/* align is a power of two; everything at most 16 is what malloc gives. */
static void *malloc_aligned(size_t align, size_t size) {
    if (align <= 16) return tarn__heap_malloc(size);
    if (size > TARN__REQUEST_MAX || align > TARN__REQUEST_MAX / 2) return fail_nomem();
    tarn__heap_t *h = heap_ready(tarn__tls_heap);
    if (!h) return fail_nomem();
    size_t need = size < align ? align : size;
    if (need <= TARN__MEDIUM_MAX && align <= TARN__HEADER_SPAN) {
        unsigned cls = tarn__size_class(need);
        while (tarn__class_size(cls) & (align - 1)) cls++;
        if (cls < TARN__CLASSES) return tarn__alloc_class(h, cls, true);
    }
    return tarn__large_alloc(h, size, align, false);
}

void *tarn_aligned_alloc(size_t align, size_t size) {
    if (!tarn__is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return malloc_aligned(align, size);
}

void *tarn_memalign(size_t align, size_t size) { return tarn_aligned_alloc(align, size); }

int tarn_posix_memalign(void **out, size_t align, size_t size) {
    if (!tarn__is_pow2(align) || align % sizeof(void *)) return EINVAL;
    int saved = errno;
    void *p = malloc_aligned(align, size);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

size_t tarn_usable_size(const void *p) {
    if (!p) return 0;
    if (!tarn__segment_known((uintptr_t)p)) {
        size_t far = tarn__far_usable(p);
        if (!far) tarn__report("usable size of %p, which tarn did not allocate", p);
        return far;
    }
    tarn__segment_t *seg = tarn__segment_of(p);
    tarn__page_t *pg = tarn__page_of(seg, p);
    if (!tarn__block_check(seg, pg, p, "usable size")) return 0;
    if (seg->kind >= TARN__SEG_LARGE) return tarn__large_usable(pg, p);
    return pg->block_size;
}

/* realloc of a pointer outside the segment map: a far-aligned block (moved,
 * as realloc need not keep alignment) or a foreign pointer. */
static void *realloc_far(void *p, size_t size) {
    size_t usable = tarn__far_usable(p);
    if (!usable) {
        tarn__report("realloc of %p, which tarn did not allocate (or already freed)", p);
        return NULL;
    }
    void *q = tarn__heap_malloc(size);
    if (!q) return NULL;
    memcpy(q, p, size < usable ? size : usable);
    tarn__far_free(p);
    return q;
}

/* A page of the caller's own with at most half of its blocks in use (of
 * eight carved at least, so a page just started is left alone; the first
 * mid page, six or seven blocks of 26-32 KiB, never qualifies), not the
 * one its class allocates from: realloc moves a block out of it even when
 * the block fits, so the page can empty; if that move finds no memory, the
 * block stays where it is. realloc is the one call
 * where the heap may move a block; buffers grown together leave their
 * slowest few behind in pages the rest have left, and this gathers them
 * (measured on bench_heap's realloc-grow, median of 3: peak RSS 19.3 ->
 * 18.0 MiB, page faults 22,000 -> 18,700, time 0.33 -> 0.29 s). */
static bool page_sparse(tarn__segment_t *seg, tarn__page_t *pg) {
    tarn__heap_t *h = tarn__tls_heap;
    return seg->heap == h && pg->capacity >= 8 && pg->used * 2 <= pg->capacity &&
           h->queues[pg->cls].first != pg;
}

void *tarn_realloc(void *p, size_t size) {
    if (!p) return tarn__heap_malloc(size);
    if (size == 0) {
        tarn__heap_free(p);
        return NULL;
    }
    if (size > TARN__REQUEST_MAX) return fail_nomem();
    if (!tarn__segment_known((uintptr_t)p)) return realloc_far(p, size);
    tarn__segment_t *seg = tarn__segment_of(p);
    tarn__page_t *pg = tarn__page_of(seg, p);
    if (!tarn__block_check(seg, pg, p, "realloc")) return NULL;
    size_t usable;
    if (seg->kind >= TARN__SEG_LARGE) {
        void *q = tarn__large_realloc(seg, pg, p, size);
        if (q) return q;
        usable = tarn__large_usable(pg, p);
    } else {
        usable = pg->block_size;
        if (size <= usable && size >= usable / 2 && !page_sparse(seg, pg)) return p;
    }
    /* A block that outgrew its class moves with 1/8 headroom: a buffer grown
     * in small steps then moves every other class, and leaves half as many
     * partly emptied pages behind (measured: peak RSS of 1000 buffers grown
     * round-robin falls from 1.25x to 1.14x glibc's). */
    size_t want = size > usable && size <= TARN__MEDIUM_MAX ? size + size / 8 : size;
    int saved = errno;
    void *q = tarn__heap_malloc(want);
    if (!q && size <= usable) {
        errno = saved; /* it fits: it was only leaving a sparse page */
        return p;
    }
    if (!q) return NULL;
    memcpy(q, p, size < usable ? size : usable);
    tarn__heap_free(p);
    return q;
}

void *tarn_reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return fail_nomem();
    return tarn_realloc(p, total);
}
