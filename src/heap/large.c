/* Large and huge blocks: one block per mapping.
 *
 * Every block above MEDIUM_MAX gets a mapping of its own, 4 MiB aligned and
 * sized to the block plus one OS page, which holds the segment header (its
 * fields up to pages[0]: the rest of the struct is never touched), so free()
 * finds it by masking like any segment and the block costs its own size in
 * address space, not a 4 MiB segment (docs/heap.md has the figures). The
 * block starts at the header page's end, or further on for an alignment
 * above a page, and runs to the mapping's end.
 *
 * A large block (up to LARGE_MAX) belongs to a heap: freed, its mapping goes
 * into the freeing thread's segment cache, where a later large request
 * takes it, cut to at most twice the size asked or grown in place
 * (segment.c), so a program that frees and allocates large blocks in turn
 * pays neither mmap nor munmap for most of them. A huge block belongs to no
 * heap and is unmapped when freed.
 * realloc resizes either kind's mapping: in place (mremap) when the
 * addresses after it are free, else by moving its pages, never copying.
 * Either kind may be freed by any thread: nothing but the block refers to
 * its mapping, so the freeing thread takes it over (a large one, if that
 * thread has a heap) or unmaps it. */
#include "heap/internal.h"

/* Offset of a block aligned to `align` in its mapping: past the header. */
static size_t single_offset(size_t align) {
    size_t page = tarn__os_page_size();
    return tarn__align_up(TARN__SINGLE_HEADER, align > page ? align : page);
}

/* Writes the header of a mapping holding one block at `off`, to its end. */
static void *single_setup(tarn__segment_t *seg, tarn__heap_t *h, size_t off) {
    seg->heap = h;
    seg->kind = h ? TARN__SEG_LARGE : TARN__SEG_HUGE;
    seg->page_shift = 63; /* every address in the mapping is in page 0 */
    seg->page_count = 1;
    seg->page_next = 1;
    seg->used_pages = 1;
    seg->in_avail = 0;
    tarn__page_t *pg = &seg->pages[0];
    memset(pg, 0, sizeof *pg);
    pg->flags = TARN__PAGE_LIVE | TARN__PAGE_SINGLE;
    pg->used = 1;
    pg->start = (uint8_t *)seg + off;
    pg->block_size = seg->size - off;
    return pg->start;
}

static void *huge_alloc(size_t size, size_t off) {
    size_t total = tarn__align_up(off + size, tarn__os_page_size());
    tarn__segment_t *seg = tarn__os_map_aligned(total, TARN__SEG_SIZE);
    if (!seg) return NULL;
    seg->size = total;
    void *p = single_setup(seg, NULL, off);
    tarn__segment_map_set(seg, true);
    atomic_fetch_add_explicit(&tarn__counters.huge_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.huge_bytes, total, memory_order_relaxed);
    return p;
}

static void huge_free(tarn__segment_t *seg) {
    tarn__segment_map_set(seg, false);
    atomic_fetch_sub_explicit(&tarn__counters.huge_blocks, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&tarn__counters.huge_bytes, seg->size, memory_order_relaxed);
    tarn__heap_unmap(seg, seg->size);
}

void *tarn__large_alloc(tarn__heap_t *h, size_t size, size_t align, bool zero) {
    size_t off = single_offset(align);
    if (off >= TARN__SEG_SIZE) return tarn__far_alloc(size, align);
    if (size > TARN__LARGE_MAX || size > TARN__SEG_SIZE - off) return huge_alloc(size, off);
    tarn__purge(h, false);
    size_t total = tarn__align_up(off + size, tarn__os_page_size());
    tarn__segment_t *seg = tarn__segment_alloc_large(h, total);
    if (!seg) return NULL;
    uint8_t *p = single_setup(seg, h, off);
    tarn__live_add(h, seg->pages[0].block_size);
    if (zero && !seg->fresh) memset(p, 0, size);
    return p;
}

/* A single block's page starts at the block itself (single_setup), so any
 * other pointer, which a free would take for the block, is refused. */
bool tarn__large_check(tarn__segment_t *seg, tarn__page_t *pg, const void *p, const char *op) {
    const uint8_t *q = p;
    if ((pg->flags & TARN__PAGE_LIVE) && q == pg->start) return true;
    void *h = seg->heap;
    size_t usable = pg->block_size;
    if (!(pg->flags & TARN__PAGE_LIVE) && !strcmp(op, "free"))
        tarn__report("double free of %p (large block) in heap %p", p, h);
    else if (!(pg->flags & TARN__PAGE_LIVE))
        tarn__report("%s of %p, a large block already freed, in heap %p", op, p, h);
    else if (q > pg->start && q < pg->start + usable)
        tarn__report("%s of %p, an interior pointer %zu bytes into a block of %zu at %p", op, p,
                     (size_t)(q - pg->start), usable, (void *)pg->start);
    else
        tarn__report("%s of %p, which is not a block tarn handed out (a block of %zu at %p)", op, p,
                     usable, (void *)pg->start);
    return false;
}

void tarn__large_free(tarn__segment_t *seg, tarn__page_t *pg, void *p) {
    if (!tarn__large_check(seg, pg, p, "free")) return;
    if (seg->kind == TARN__SEG_HUGE) {
        huge_free(seg);
        return;
    }
    tarn__live_sub(seg->heap, pg->block_size);
    pg->touched = (uint32_t)pg->block_size;
    pg->flags = 0;
    pg->used = 0;
    pg->block_size = 0;
    seg->used_pages = 0;
    tarn__heap_t *h = tarn__tls_heap;
    if (h == &tarn__empty_heap)
        tarn__segment_unmap(seg);
    else if (tarn__segment_release(h, seg))
        tarn__purge_enforce(h);
}

size_t tarn__large_usable(tarn__page_t *pg, const void *p) {
    return (size_t)(pg->start + pg->block_size - (const uint8_t *)p);
}

/* A large block outgrowing LARGE_MAX: its mapping leaves its heap and
 * becomes a huge one. */
static void large_to_huge(tarn__segment_t *seg, tarn__page_t *pg) {
    tarn__live_sub(seg->heap, pg->block_size);
    atomic_fetch_sub_explicit(&tarn__counters.segments, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&tarn__counters.segment_bytes, seg->size, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.huge_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.huge_bytes, seg->size, memory_order_relaxed);
    seg->heap = NULL;
    seg->kind = TARN__SEG_HUGE;
}

/* Grows a mapping to `total` bytes: in place, else by moving its pages to a
 * fresh aligned range (the old range is then gone, so its map bit is
 * cleared first). The mapping's new address, or NULL (nothing changed). */
static tarn__segment_t *single_grow(tarn__segment_t *seg, size_t total) {
    if (tarn__os_extend(seg, seg->size, total)) return seg;
    tarn__segment_map_set(seg, false);
    tarn__segment_t *moved = tarn__os_remap_aligned(seg, seg->size, total, TARN__SEG_SIZE);
    tarn__segment_map_set(moved ? moved : seg, true);
    return moved;
}

/* Resizes the mapping of the block at p (at offset off of its own mapping)
 * to hold size bytes: trims a tail of more than an eighth (what a block may
 * keep beyond its size, as the class rounding does; a tail kept spares an
 * munmap each time the block shrinks a little and grows again), grows in
 * place or by moving the pages. NULL, with nothing changed, when the OS
 * refuses. */
static void *single_resize(tarn__segment_t *seg, size_t off, size_t size) {
    size_t total = tarn__align_up(off + size, tarn__os_page_size()), old = seg->size;
    if (total <= old && old - total <= total / 8) return (uint8_t *)seg + off;
    if (total < old)
        tarn__heap_unmap((uint8_t *)seg + total, old - total);
    else if (!(seg = single_grow(seg, total)))
        return NULL;
    seg->size = total;
    tarn__page_t *pg = &seg->pages[0];
    pg->start = (uint8_t *)seg + off;
    pg->block_size = total - off;
    if (seg->kind == TARN__SEG_HUGE) {
        atomic_fetch_add_explicit(&tarn__counters.huge_bytes, total - old, memory_order_relaxed);
    } else {
        if (total > old)
            tarn__live_add(seg->heap, total - old);
        else
            tarn__live_sub(seg->heap, old - total);
        atomic_fetch_add_explicit(&tarn__counters.segment_bytes, total - old, memory_order_relaxed);
    }
    return pg->start;
}

/* realloc for large and huge blocks when it can be done without a copy;
 * NULL tells the caller to allocate, copy and free. */
void *tarn__large_realloc(tarn__segment_t *seg, tarn__page_t *pg, void *p, size_t size) {
    if (!(pg->flags & TARN__PAGE_LIVE)) return NULL;
    size_t off = (size_t)((uint8_t *)p - (uint8_t *)seg);
    if (seg->kind == TARN__SEG_LARGE) {
        if (size <= TARN__MEDIUM_MAX / 2) return NULL;
        if (size > TARN__LARGE_MAX || size > TARN__SEG_SIZE - off) large_to_huge(seg, pg);
    } else if (size <= TARN__LARGE_MAX / 2) {
        return NULL;
    }
    return single_resize(seg, off, size);
}
