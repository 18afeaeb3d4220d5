/* Allocation entry points: the public malloc family on top of the inline
 * fast path, the slow path, and aligned allocation.
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

/* A large or huge block; a huge one (its own mapping) raises the peak of
 * in_use here, as nothing in large.c does (pages and large blocks raise it
 * as they are counted in). */
static void *large_alloc(tarn__heap_t *h, size_t size, size_t align, bool zero) {
    void *p = tarn__large_alloc(h, size, align, zero);
    if (p) tarn__peak_note();
    return p;
}

/* The slow path of class cls, and the one place that orders its policies:
 * age the empty pages kept at queue fronts; take a block already freed
 * into a page of the class (retiring exhausted pages to FULL on the way);
 * else one this thread kept from another heap (foreign.c); else, unless
 * `exact` (the block's alignment depends on its class), a spare block of a
 * class up to a quarter larger; else carve more of a page; else purge what
 * waited its delay and start a new page. Freed blocks come before carving:
 * carving touches new memory while the freed blocks sit committed
 * (docs/heap.md, "Reuse before carving"). */
_Static_assert(TARN__RETIRED_WORDS == 2, "one test below covers every word of retired[]");
static tarn__noinline void *alloc_class_slow(tarn__heap_t *h, unsigned cls, bool exact) {
    if (h->retired[0] | h->retired[1]) tarn__page_age_retired(h, false);
    tarn__page_t *carvable;
    tarn__page_t *pg = tarn__page_find_free(h, cls, &carvable);
    if (pg) return tarn__page_pop(pg);
    void *b = tarn__foreign_take(h, cls);
    if (b) return b;
    if (!exact && (b = tarn__page_borrow(h, cls))) return b;
    if (carvable) return tarn__page_pop(tarn__page_grow(h, carvable));
    tarn__purge(h, false);
    pg = tarn__page_new(h, cls);
    return pg ? tarn__page_pop(pg) : fail_nomem();
}

/* From class cls's front page, else the class slow path. */
void *tarn__alloc_class(tarn__heap_t *h, unsigned cls, bool exact) {
    tarn__page_t *pg = h->queues[cls].first;
    if (pg && pg->free) return tarn__page_pop(pg);
    return alloc_class_slow(h, cls, exact);
}

static tarn__heap_t *heap_ready(tarn__heap_t *h) {
    if (tarn__unlikely(h == &tarn__empty_heap)) return tarn__heap_init_thread();
    if (atomic_load_explicit(&h->remote_pages, memory_order_relaxed)) tarn__heap_collect_remote(h);
    return h;
}

void *tarn__malloc_slow(tarn__heap_t *h, size_t size) {
    h = heap_ready(h);
    if (!h) return fail_nomem();
    if (size <= TARN__MEDIUM_MAX) {
        unsigned cls = tarn__size_class(size);
        tarn__foreign_spent(h, cls);
        return tarn__alloc_class(h, cls, false);
    }
    if (size > TARN__REQUEST_MAX) return fail_nomem();
    return large_alloc(h, size, 16, false);
}

void *tarn_malloc(size_t size) { return tarn__heap_malloc(size); }

void *tarn_calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return fail_nomem();
    if (total > TARN__MEDIUM_MAX) {
        if (total > TARN__REQUEST_MAX) return fail_nomem();
        tarn__heap_t *h = heap_ready(tarn__tls_heap);
        return h ? large_alloc(h, total, 16, true) : fail_nomem();
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
        while (tarn__class_size(cls) & (align - 1))
            cls++;
        if (cls < TARN__CLASSES) return tarn__alloc_class(h, cls, true);
    }
    return large_alloc(h, size, align, false);
}

/* glibc 2.36's memalign: an alignment that is not a power of two is
 * rounded up to one, 0 is malloc, and only one past 2^63 fails with EINVAL
 * (docs/heap.md). */
void *tarn_memalign(size_t align, size_t size) {
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    return malloc_aligned(tarn__pow2_ceil(align), size);
}

/* C17 and the Linux manual: the alignment must be a power of two (glibc
 * 2.36 alone still treats it as memalign; docs/heap.md). */
void *tarn_aligned_alloc(size_t align, size_t size) {
    if (!tarn__is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return malloc_aligned(align, size);
}

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

/* Bytes usable at p with no report: 0 when p is in no live page and is no
 * far-aligned block (what free itself then reports). */
static size_t usable_quiet(const void *p) {
    if (!tarn__segment_known((uintptr_t)p)) return tarn__far_usable(p);
    tarn__segment_t *seg = tarn__segment_of(p);
    tarn__page_t *pg = tarn__page_of(seg, p);
    if (!(pg->flags & TARN__PAGE_LIVE)) return 0;
    return seg->kind >= TARN__SEG_LARGE ? tarn__large_usable(pg, p) : pg->block_size;
}

/* C23's sized frees. The claim costs one lookup, so it is checked: a size
 * larger than the block means the caller's idea of the block is wrong (a
 * smaller one is what realloc's in-place shrink leaves, and is fine). */
void tarn_free_sized(void *p, size_t size) {
    size_t usable = p ? usable_quiet(p) : 0;
    if (usable && size > usable) {
        tarn__report("free_sized of %p with size %zu, larger than its block (%zu)", p, size,
                     usable);
        return;
    }
    tarn__heap_free(p);
}

/* align as tarn_memalign takes it: rounded up to a power of two. */
void tarn_free_aligned_sized(void *p, size_t align, size_t size) {
    if (p && (align > SIZE_MAX / 2 + 1 || (uintptr_t)p % tarn__pow2_ceil(align))) {
        tarn__report("free_aligned_sized of %p with alignment %zu, which it does not have", p,
                     align);
        return;
    }
    tarn_free_sized(p, size);
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
 * one its class allocates from. Buffers grown together leave their slowest
 * few behind in pages the rest have left; moving those out lets the pages
 * empty (docs/heap.md has what it saved, and what it saves since it is
 * limited to blocks that shrink into a smaller class). */
static bool page_sparse(tarn__segment_t *seg, tarn__page_t *pg) {
    tarn__heap_t *h = tarn__tls_heap;
    return seg->heap == h && pg->capacity >= 8 && pg->used * 2 <= pg->capacity &&
           h->queues[pg->cls].first != pg;
}

/* Whether a small or medium block keeps a request of `size` (which fits):
 * always when malloc(size) could have returned this block (its class, or
 * one at most a quarter larger, which a dry class borrows from: page.c),
 * so a same-size realloc never moves; for a smaller request, while the
 * block stays at least half used and its page is not sparse. */
static bool realloc_stays(tarn__segment_t *seg, tarn__page_t *pg, size_t size) {
    if (pg->block_size * 4 <= tarn__class_size(tarn__size_class(size)) * 5) return true;
    return size >= pg->block_size / 2 && !page_sparse(seg, pg);
}

/* realloc of a block the segment map knows; may leave errno changed by an
 * OS call that failed on the way, even when it succeeds. */
static void *realloc_known(void *p, size_t size) {
    tarn__segment_t *seg = tarn__segment_of(p);
    tarn__page_t *pg = tarn__page_of(seg, p);
    if (!tarn__block_check(seg, pg, p, "realloc")) return NULL;
    size_t usable;
    if (seg->kind >= TARN__SEG_LARGE) {
        void *q = tarn__large_realloc(seg, pg, p, size);
        if (q) {
            tarn__peak_note();
            return q;
        }
        usable = tarn__large_usable(pg, p);
    } else {
        usable = pg->block_size;
        if (size <= usable && realloc_stays(seg, pg, size)) return p;
    }
    /* A block that outgrew its class moves with 1/8 headroom: a buffer grown
     * in small steps then moves every other class, and leaves half as many
     * partly emptied pages behind (docs/heap.md, "Measurements behind the
     * source's constants"). */
    size_t want = size > usable && size <= TARN__MEDIUM_MAX ? size + size / 8 : size;
    void *q = tarn__heap_malloc(want);
    if (!q && size <= usable) return p; /* it fits: it was only moving to save memory */
    if (!q) return NULL;
    memcpy(q, p, size < usable ? size : usable);
    tarn__heap_free(p);
    return q;
}

/* errno is left as it was on success: a huge block's mremap may fail in
 * place before it moves the pages, or fail altogether before a copy
 * succeeds. */
void *tarn_realloc(void *p, size_t size) {
    if (!p) return tarn__heap_malloc(size);
    if (size == 0) {
        tarn__heap_free(p);
        return NULL;
    }
    if (size > TARN__REQUEST_MAX) return fail_nomem();
    int saved = errno;
    void *q = tarn__segment_known((uintptr_t)p) ? realloc_known(p, size) : realloc_far(p, size);
    if (q) errno = saved;
    return q;
}

void *tarn_reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return fail_nomem();
    return tarn_realloc(p, total);
}
