/* Large and huge blocks: one block per mapping.
 *
 * A large block (up to 4 MiB minus the header) fills a whole segment, so it
 * grows in place up to the segment end for free, and its segment is cached
 * and reused like any other. A huge block gets a mapping of its own, with
 * the same header so free() finds it by masking; realloc grows it with
 * mremap, in place when it can, else by moving the pages (never copying).
 * Either kind may be freed by any thread: nothing but the block refers to
 * its segment, so the freeing thread takes it over (large) or unmaps it. */
#include <pthread.h>

#include "heap/internal.h"

/* ---- far-aligned blocks -------------------------------------------------
 * A block aligned to 4 MiB or more starts on a frame boundary, where no
 * header can sit before it, so masking cannot find it. Such blocks are rare
 * (memalign with a huge alignment): they get their own mapping and an entry
 * in this table, consulted only when the segment map does not know a
 * pointer. */
enum { FAR_MAX = 256 };
static pthread_mutex_t far_lock = PTHREAD_MUTEX_INITIALIZER;
typedef struct {
    uint8_t *block, *base;
    size_t size; /* of the mapping at base */
} far_block_t;
static far_block_t far[FAR_MAX];
static int far_count;

void tarn__far_fork_lock(bool lock) {
    if (lock) pthread_mutex_lock(&far_lock);
    else pthread_mutex_unlock(&far_lock);
}

static void *far_alloc(size_t size, size_t align) {
    size_t total = tarn__align_up(align + size, tarn__os_page_size());
    uint8_t *base = tarn__os_map_aligned(total, align);
    if (!base) return NULL;
    pthread_mutex_lock(&far_lock);
    bool room = far_count < FAR_MAX;
    if (room) far[far_count++] = (far_block_t){base + align, base, total};
    pthread_mutex_unlock(&far_lock);
    if (room) return base + align;
    tarn__os_unmap(base, total);
    errno = ENOMEM;
    return NULL;
}

/* Under far_lock: the index of block p, or -1. */
static int far_find_locked(const void *p) {
    for (int i = 0; i < far_count; i++)
        if (far[i].block == p) return i;
    return -1;
}

bool tarn__far_free(void *p) {
    pthread_mutex_lock(&far_lock);
    int i = far_find_locked(p);
    uint8_t *base = i < 0 ? NULL : far[i].base;
    size_t size = i < 0 ? 0 : far[i].size;
    if (i >= 0) far[i] = far[--far_count];
    pthread_mutex_unlock(&far_lock);
    if (base) tarn__os_unmap(base, size);
    return base != NULL;
}

size_t tarn__far_usable(const void *p) {
    pthread_mutex_lock(&far_lock);
    int i = far_find_locked(p);
    size_t usable = i < 0 ? 0 : (size_t)(far[i].base + far[i].size - far[i].block);
    pthread_mutex_unlock(&far_lock);
    return usable;
}

/* A huge mapping: block at `off` (>= the header span and aligned as asked). */
static void *huge_alloc(size_t size, size_t align) {
    size_t off = align > TARN__HEADER_SPAN ? align : TARN__HEADER_SPAN;
    if (off >= TARN__SEG_SIZE) return far_alloc(size, align);
    size_t total = tarn__align_up(off + size, tarn__os_page_size());
    tarn__segment_t *seg = tarn__os_map_aligned(total, TARN__SEG_SIZE);
    if (!seg) return NULL;
    seg->heap = NULL;
    seg->kind = TARN__SEG_HUGE;
    seg->page_shift = 63;
    seg->page_count = 1;
    seg->size = total;
    tarn__page_t *pg = &seg->pages[0];
    pg->flags = TARN__PAGE_LIVE | TARN__PAGE_SINGLE;
    pg->used = 1;
    pg->start = pg->block = (uint8_t *)seg + off;
    pg->block_size = total - off;
    tarn__segment_map_set(seg, true);
    atomic_fetch_add_explicit(&tarn__counters.huge_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.huge_bytes, total, memory_order_relaxed);
    return pg->start;
}

static void huge_free(tarn__segment_t *seg) {
    tarn__segment_map_set(seg, false);
    atomic_fetch_sub_explicit(&tarn__counters.huge_blocks, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&tarn__counters.huge_bytes, seg->size, memory_order_relaxed);
    tarn__os_unmap(seg, seg->size);
}

void *tarn__large_alloc(tarn__heap_t *h, size_t size, size_t align, bool zero) {
    size_t pad = align > TARN__HEADER_SPAN ? align - TARN__HEADER_SPAN : 0;
    if (size > TARN__LARGE_MAX || pad > TARN__LARGE_MAX - size) return huge_alloc(size, align);
    tarn__purge(h, false);
    tarn__segment_t *seg = tarn__segment_alloc(h, TARN__SEG_LARGE);
    if (!seg) return NULL;
    tarn__page_t *pg = tarn__segment_page_setup(seg);
    seg->used_pages = 1;
    pg->flags = TARN__PAGE_LIVE | TARN__PAGE_SINGLE;
    pg->used = 1;
    uint8_t *p = (uint8_t *)tarn__align_up((uintptr_t)pg->start, align);
    pg->block = p;
    pg->block_size = (size_t)(p - pg->start) + size;
    atomic_fetch_add_explicit(&h->live_bytes, pg->block_size, memory_order_relaxed);
    if (zero && !seg->fresh) memset(p, 0, size);
    return p;
}

/* The block's start is kept: with its alignment padding it cannot be told
 * from p, and a free of any other pointer would release the block. */
bool tarn__large_check(tarn__segment_t *seg, tarn__page_t *pg, const void *p, const char *op) {
    const uint8_t *q = p;
    if ((pg->flags & TARN__PAGE_LIVE) && q == pg->block) return true;
    void *h = seg->heap;
    size_t usable = (size_t)(pg->start + pg->block_size - pg->block);
    if (!(pg->flags & TARN__PAGE_LIVE) && !strcmp(op, "free"))
        tarn__report("double free of %p (large block) in heap %p", p, h);
    else if (!(pg->flags & TARN__PAGE_LIVE))
        tarn__report("%s of %p, a large block already freed, in heap %p", op, p, h);
    else if (q > pg->block && q < pg->block + usable)
        tarn__report("%s of %p, an interior pointer %zu bytes into a block of %zu at %p", op, p,
                     (size_t)(q - pg->block), usable, (void *)pg->block);
    else
        tarn__report("%s of %p, which is not a block tarn handed out (a block of %zu at %p)", op,
                     p, usable, (void *)pg->block);
    return false;
}

void tarn__large_free(tarn__segment_t *seg, tarn__page_t *pg, void *p) {
    if (!tarn__large_check(seg, pg, p, "free")) return;
    if (seg->kind == TARN__SEG_HUGE) {
        huge_free(seg);
        return;
    }
    atomic_fetch_sub_explicit(&seg->heap->live_bytes, pg->block_size, memory_order_relaxed);
    pg->touched = (uint32_t)tarn__align_up(pg->block_size, tarn__os_page_size());
    pg->flags = 0;
    pg->used = 0;
    pg->block_size = 0;
    seg->used_pages = 0;
    tarn__heap_t *h = tarn__tls_heap;
    if (h == &tarn__empty_heap) tarn__segment_unmap(seg);
    else tarn__segment_release(h, seg);
}

size_t tarn__large_usable(tarn__page_t *pg, const void *p) {
    return (size_t)(pg->start + pg->block_size - (const uint8_t *)p);
}

/* Resizes a huge block's mapping; NULL (nothing changed) when it cannot. */
static void *huge_resize(tarn__segment_t *seg, tarn__page_t *pg, void *p, size_t size) {
    size_t off = (size_t)((uint8_t *)p - (uint8_t *)seg);
    size_t start_off = (size_t)(pg->start - (uint8_t *)seg);
    size_t total = tarn__align_up(off + size, tarn__os_page_size());
    if (total <= seg->size) {
        if (total < seg->size) tarn__os_unmap((uint8_t *)seg + total, seg->size - total);
    } else {
        tarn__segment_t *moved = tarn__os_remap_aligned(seg, seg->size, total, TARN__SEG_SIZE);
        if (!moved) return NULL;
        if (moved != seg) {
            tarn__segment_map_set(seg, false);
            tarn__segment_map_set(moved, true);
            seg = moved;
            pg = &seg->pages[0];
            pg->start = (uint8_t *)seg + start_off;
            pg->block = (uint8_t *)seg + off;
        }
    }
    atomic_fetch_add_explicit(&tarn__counters.huge_bytes, total - seg->size, memory_order_relaxed);
    pg->block_size = total - start_off;
    seg->size = total;
    return (uint8_t *)seg + off;
}

/* A large block outgrowing its segment: the segment leaves its heap and
 * becomes a huge mapping, so mremap can grow it without a copy. */
static tarn__segment_t *large_to_huge(tarn__segment_t *seg, tarn__page_t *pg) {
    atomic_fetch_sub_explicit(&seg->heap->live_bytes, pg->block_size, memory_order_relaxed);
    atomic_fetch_sub_explicit(&tarn__counters.segments, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.huge_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.huge_bytes, TARN__SEG_SIZE, memory_order_relaxed);
    seg->heap = NULL;
    seg->kind = TARN__SEG_HUGE;
    seg->page_shift = 63;
    seg->size = TARN__SEG_SIZE;
    pg->block_size = TARN__SEG_SIZE - (size_t)(pg->start - (uint8_t *)seg);
    return seg;
}

/* realloc for large and huge blocks when it can be done without a copy;
 * NULL tells the caller to allocate, copy and free. */
void *tarn__large_realloc(tarn__segment_t *seg, tarn__page_t *pg, void *p, size_t size) {
    if (!(pg->flags & TARN__PAGE_LIVE)) return NULL;
    uint8_t *end = (uint8_t *)p + size;
    if (seg->kind == TARN__SEG_LARGE) {
        if (size <= TARN__MEDIUM_MAX / 2) return NULL;
        if (end > (uint8_t *)seg + TARN__SEG_SIZE) return huge_resize(large_to_huge(seg, pg), pg, p, size);
        size_t old = pg->block_size;
        pg->block_size = (size_t)(end - pg->start);
        atomic_fetch_add_explicit(&seg->heap->live_bytes, pg->block_size - old, memory_order_relaxed);
        return p;
    }
    if (size <= TARN__LARGE_MAX / 2) return NULL;
    return huge_resize(seg, pg, p, size);
}
