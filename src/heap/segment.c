/* Segments: 4 MiB aligned mappings cut into pages of one kind, and the
 * mappings of large blocks, which share the header, the map and the cache.
 *
 * Masking a block's address gives its segment header (blocks live in segments
 * aligned to their size), and one bit
 * per 4 MiB of address space says whether that header exists, so free()
 * rejects foreign pointers before reading anything they point near. Free
 * pages go back to their segment (most recent first, so reuse finds them
 * still committed); a segment whose pages are all unused is freed as a whole,
 * into a small per-heap cache or straight back to the OS. That is where
 * adjacent free memory coalesces: no live block elsewhere pins it, as a live
 * block at the top of glibc's heap keeps the free memory below it. */
#include <pthread.h>

#include "heap/internal.h"

#define MAP_WORDS (((size_t)1 << (TARN__ADDRESS_BITS - TARN__SEG_SHIFT)) / 64)
_Atomic uint64_t tarn__segment_map[MAP_WORDS];

/* One bit per 64 words of the segment map (16 GiB of address space), set
 * when a segment there is mapped and never cleared: tarn__segment_each
 * reads these 2 KiB instead of the map's 8 MiB. */
static _Atomic uint64_t map_summary[MAP_WORDS / 64 / 64];
_Static_assert(MAP_WORDS % (64 * 64) == 0, "each summary word covers 64 whole map words");

/* Held to clear a segment's bit and while tarn__segment_each reads headers:
 * a segment is unmapped only after its bit is cleared, so a header the
 * walker finds stays mapped while it reads. Only the unmap paths take it. */
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;

void tarn__segment_map_set(tarn__segment_t *seg, bool on) {
    size_t i = (uintptr_t)seg >> TARN__SEG_SHIFT;
    uint64_t bit = (uint64_t)1 << (i & 63);
    if (on) {
        atomic_fetch_or_explicit(&map_summary[i >> 18], (uint64_t)1 << ((i >> 12) & 63),
                                 memory_order_relaxed);
        atomic_fetch_or_explicit(&tarn__segment_map[i >> 6], bit, memory_order_release);
        return;
    }
    pthread_mutex_lock(&walk_lock);
    atomic_fetch_and_explicit(&tarn__segment_map[i >> 6], ~bit, memory_order_release);
    pthread_mutex_unlock(&walk_lock);
}

void tarn__segment_each(void (*fn)(const tarn__segment_t *seg, void *arg), void *arg) {
    pthread_mutex_lock(&walk_lock);
    for (size_t s = 0; s < sizeof map_summary / sizeof *map_summary; s++)
        for (uint64_t sb = atomic_load_explicit(&map_summary[s], memory_order_relaxed); sb;
             sb &= sb - 1) {
            size_t w0 = (s * 64 + (size_t)__builtin_ctzll(sb)) * 64;
            for (size_t w = w0; w < w0 + 64; w++)
                for (uint64_t b = atomic_load_explicit(&tarn__segment_map[w], memory_order_acquire);
                     b; b &= b - 1) {
                    uintptr_t i = w * 64 + (size_t)__builtin_ctzll(b);
                    fn((const tarn__segment_t *)(i << TARN__SEG_SHIFT), arg);
                }
        }
    pthread_mutex_unlock(&walk_lock);
}

void tarn__segment_fork_lock(bool lock) {
    if (lock)
        pthread_mutex_lock(&walk_lock);
    else
        pthread_mutex_unlock(&walk_lock);
}

void tarn__heap_unmap(void *p, size_t size) {
    atomic_fetch_add_explicit(&tarn__counters.unmaps, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.unmapped_bytes, size, memory_order_relaxed);
    tarn__os_unmap(p, size);
}

void tarn__segment_unmap(tarn__segment_t *seg) {
    tarn__segment_map_set(seg, false);
    atomic_fetch_sub_explicit(&tarn__counters.segments, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&tarn__counters.segment_bytes, seg->size, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.segment_unmaps, 1, memory_order_relaxed);
    tarn__heap_unmap(seg, seg->size);
}

/* A new mapping of `total` bytes, 4 MiB aligned, counted and in the segment
 * map; NULL with ENOMEM. A full segment is reserved (committed page by page
 * as its pages are carved), a large block's mapped. */
static tarn__segment_t *segment_map(size_t total) {
    tarn__segment_t *seg = total == TARN__SEG_SIZE ? tarn__os_reserve(total, TARN__SEG_SIZE)
                                                   : tarn__os_map_aligned(total, TARN__SEG_SIZE);
    if (!seg) return NULL;
    seg->size = total;
    seg->fresh = 1;
    atomic_fetch_add_explicit(&tarn__counters.segments, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.segment_bytes, total, memory_order_relaxed);
    atomic_fetch_add_explicit(&tarn__counters.segment_maps, 1, memory_order_relaxed);
    tarn__segment_map_set(seg, true);
    return seg;
}

/* Takes *link out of h's cache. */
static tarn__segment_t *cache_take(tarn__heap_t *h, tarn__segment_t **link) {
    tarn__segment_t *seg = *link;
    *link = seg->next;
    h->cache_count--;
    h->dirty_bytes -= seg->cached_dirty;
    return seg;
}

/* Bytes of page i: [i << shift, (i + 1) << shift) minus the header span. */
static size_t page_span(const tarn__segment_t *seg, unsigned i, size_t *lo) {
    *lo = (size_t)i << seg->page_shift;
    if (*lo < TARN__HEADER_SPAN) *lo = TARN__HEADER_SPAN;
    size_t hi = (size_t)(i + 1) << seg->page_shift;
    return hi > *lo ? hi - *lo : 0;
}

/* The purge queue (its policy is purge.c's): unused pages that may still
 * hold committed memory, oldest first, counted in the heap's dirty bytes. */
void tarn__segment_dequeue(tarn__heap_t *h, tarn__page_t *pg) {
    tarn_assert(pg->on_purge_queue, "only a queued page leaves the purge queue");
    if (pg->purge_prev)
        pg->purge_prev->purge_next = pg->purge_next;
    else
        h->purge_head = pg->purge_next;
    if (pg->purge_next)
        pg->purge_next->purge_prev = pg->purge_prev;
    else
        h->purge_tail = pg->purge_prev;
    pg->purge_next = pg->purge_prev = NULL;
    pg->on_purge_queue = 0;
    h->dirty_bytes -= pg->touched;
}

/* Queues unused page pg for the purge (oldest first) if it holds anything
 * committed; returns whether it did, the dirty bytes then having grown. */
static bool purge_queue_add(tarn__heap_t *h, tarn__page_t *pg) {
    if (!pg->touched) return false;
    pg->on_purge_queue = 1;
    pg->freed_ms = tarn__os_now_ms();
    pg->purge_next = NULL;
    pg->purge_prev = h->purge_tail;
    if (h->purge_tail)
        h->purge_tail->purge_next = pg;
    else
        h->purge_head = pg;
    h->purge_tail = pg;
    h->dirty_bytes += pg->touched;
    return true;
}

/* Sets up the header of the next page never used in this segment. Headers
 * are set up as pages are first taken, not all with the segment: 64 page
 * headers are three OS pages of the segment that a thread with few classes
 * would otherwise commit for nothing. A header not yet set up is zero, or
 * left unused by the segment's earlier life: never LIVE either way. */
tarn__page_t *tarn__segment_page_setup(tarn__segment_t *seg) {
    tarn_assert(seg->page_next < seg->page_count, "a segment sets up no more pages than it has");
    unsigned i = seg->page_next++;
    tarn__page_t *pg = &seg->pages[i];
    size_t lo, area = page_span(seg, i, &lo);
    memset(pg, 0, sizeof *pg);
    pg->index = (uint8_t)i;
    pg->start = (uint8_t *)seg + lo;
    pg->touched = seg->fresh ? 0 : (uint32_t)area;
    return pg;
}

/* may_be_nonzero: the segment may hold committed, non-zero memory from
 * earlier use. */
static void segment_init(tarn__segment_t *seg, tarn__heap_t *h, int kind, bool may_be_nonzero) {
    static const uint8_t shift[] = {TARN__SMALL_PAGE_SHIFT, TARN__MID_PAGE_SHIFT,
                                    TARN__MEDIUM_PAGE_SHIFT};
    seg->heap = h;
    seg->kind = (uint8_t)kind;
    seg->page_shift = shift[kind];
    seg->page_count = (uint16_t)(TARN__SEG_SIZE >> seg->page_shift);
    seg->used_pages = 0;
    seg->in_avail = 0;
    seg->fresh = !may_be_nonzero;
    seg->size = TARN__SEG_SIZE;
    seg->next = seg->prev = NULL;
    seg->unused_pages = NULL;
    seg->page_next = (uint16_t)tarn__segment_first_page(seg);
}

/* A cached mapping a segment of pages can take: a whole one that never
 * held a large block, which would have written over the headers of pages
 * 1.. (a header not set up must never read LIVE). */
static bool pages_fit(const tarn__segment_t *seg) {
    return seg->size == TARN__SEG_SIZE && seg->kind != TARN__SEG_LARGE;
}

/* A segment of the given kind (small, mid, medium) owned by h: a cached
 * one when h has one that fits, else new from the OS. NULL with ENOMEM. */
tarn__segment_t *tarn__segment_alloc(tarn__heap_t *h, int kind) {
    tarn__segment_t **link = &h->cache;
    while (*link && !pages_fit(*link))
        link = &(*link)->next;
    bool reused = *link != NULL;
    tarn__segment_t *seg = reused ? cache_take(h, link) : segment_map(TARN__SEG_SIZE);
    if (!seg) return NULL;
    segment_init(seg, h, kind, reused && !seg->fresh);
    return seg;
}

/* A mapping of `total` bytes (page aligned, at most SEG_SIZE), or up to
 * twice that, for a large block of h's; its header is set up by the caller.
 * Of h's cached segments, the smallest that is large enough, cut to twice
 * `total` if longer; else the largest smaller one, grown in place; else a
 * new mapping. Reuse keeps what the cached one holds committed (no page
 * faults) and spares the mmap and the two munmap calls of an aligned
 * mapping (os.c). The tail kept up to twice the block is what makes reuse
 * cheap: cut to an eighth, most reuses cost a munmap or an mremap and the
 * pages cut off faulted in again later (docs/heap.md). NULL with ENOMEM. */
tarn__segment_t *tarn__segment_alloc_large(tarn__heap_t *h, size_t total) {
    tarn__segment_t **fit = NULL, **below = NULL;
    for (tarn__segment_t **link = &h->cache; *link; link = &(*link)->next) {
        size_t size = (*link)->size;
        if (size >= total && (!fit || size < (*fit)->size)) fit = link;
        if (size < total && (!below || size > (*below)->size)) below = link;
    }
    if (!fit && below && tarn__os_extend(*below, (*below)->size, total)) {
        atomic_fetch_add_explicit(&tarn__counters.segment_bytes, total - (*below)->size,
                                  memory_order_relaxed);
        (*below)->size = total;
        fit = below;
    }
    if (!fit) return segment_map(total);
    tarn__segment_t *seg = cache_take(h, fit);
    /* A segment of pages may count as fresh with page headers written past
     * its first OS page, where a large block starts. */
    if (seg->kind != TARN__SEG_LARGE) seg->fresh = 0;
    if (seg->size - total > total) {
        size_t keep = 2 * total;
        tarn__heap_unmap((uint8_t *)seg + keep, seg->size - keep);
        atomic_fetch_sub_explicit(&tarn__counters.segment_bytes, seg->size - keep,
                                  memory_order_relaxed);
        seg->size = keep;
    }
    return seg;
}

static size_t page_area(tarn__page_t *pg) {
    size_t lo;
    return page_span(tarn__segment_of(pg), pg->index, &lo);
}

static void avail_push(tarn__heap_t *h, tarn__segment_t *seg) {
    tarn__segment_t **head = &h->avail[seg->kind];
    seg->prev = NULL;
    seg->next = *head;
    if (*head) (*head)->prev = seg;
    *head = seg;
    seg->in_avail = 1;
}

static void avail_remove(tarn__heap_t *h, tarn__segment_t *seg) {
    if (seg->prev)
        seg->prev->next = seg->next;
    else
        h->avail[seg->kind] = seg->next;
    if (seg->next) seg->next->prev = seg->prev;
    seg->next = seg->prev = NULL;
    seg->in_avail = 0;
}

/* Bytes a cached large segment holds committed: what the program touched,
 * not what it asked for. Counted by the block's span (the whole block
 * assumed written), a segment cached after a program that touches a few
 * pages of each large block looked megabytes dirty, and the budget
 * decommitted it (madvise, then a fault per page on reuse) to give back
 * nothing. Counted with mincore, over the whole mapping but its header page
 * (an earlier block at another offset may have left pages there). Where the kernel backs
 * memory with transparent huge pages this counts them whole, which is what
 * they cost; it let the budget keep what it allows (docs/heap.md, "A cached
 * segment counts what it holds"). A swapped-out page
 * does not count, which is why zeroing decisions never rest on this count
 * (see `fresh`). */
static size_t large_committed(tarn__segment_t *seg) {
    size_t page = tarn__os_page_size();
    return tarn__os_resident((uint8_t *)seg + page, seg->size - page);
}

/* A segment with no page in use: cached while the heap's thread lives and
 * the cache has room, otherwise returned to the OS. Returns whether it was
 * cached: the heap's dirty bytes then grew, and the caller enforces the
 * purge budget (tarn__purge_enforce). */
bool tarn__segment_release(tarn__heap_t *h, tarn__segment_t *seg) {
    tarn_assert(seg->used_pages == 0, "only an empty segment is released");
    if (seg->in_avail) avail_remove(h, seg);
    size_t maybe = 0, lo; /* bytes that may be non-zero: an upper bound */
    for (unsigned i = 0; i < seg->page_count; i++) {
        if (i >= seg->page_next) {
            if (!seg->fresh) maybe += page_span(seg, i, &lo); /* from its earlier life */
            continue;
        }
        if (seg->pages[i].on_purge_queue) tarn__segment_dequeue(h, &seg->pages[i]);
        maybe += seg->pages[i].touched;
    }
    bool keep = h != &tarn__empty_heap && h->cache_count < TARN__SEG_CACHE_MAX &&
                atomic_load_explicit(&h->state, memory_order_relaxed) == TARN__HEAP_ACTIVE;
    if (!keep) {
        tarn__segment_unmap(seg);
        return false;
    }
    seg->heap = h;
    seg->fresh = maybe == 0;
    seg->cached_ms = tarn__os_now_ms();
    size_t dirty = seg->kind == TARN__SEG_LARGE ? large_committed(seg) : maybe;
    seg->cached_dirty = dirty;
    seg->next = h->cache;
    h->cache = seg;
    h->cache_count++;
    h->dirty_bytes += dirty;
    return true;
}

static void cache_unmap(tarn__heap_t *h, tarn__segment_t **link) {
    tarn__segment_unmap(cache_take(h, link));
}

/* Decommits the oldest cached segment that still holds memory, keeping
 * its address range for reuse (no mmap, no munmap, faults only where the
 * next user writes). Returns the bytes given back, 0 if none was dirty. The
 * first OS page stays: it holds the cache links. */
size_t tarn__segment_cache_decommit(tarn__heap_t *h) {
    tarn__segment_t *oldest = NULL;
    for (tarn__segment_t *seg = h->cache; seg; seg = seg->next)
        if (seg->cached_dirty && !tarn__segment_spared(h, seg)) oldest = seg;
    if (!oldest) return 0;
    size_t page = tarn__os_page_size();
    tarn__os_decommit((uint8_t *)oldest + page, oldest->size - page);
    atomic_fetch_add_explicit(&tarn__counters.purges, 1, memory_order_relaxed);
    size_t bytes = oldest->cached_dirty;
    h->dirty_bytes -= bytes;
    oldest->cached_dirty = 0;
    oldest->fresh = 1;
    atomic_fetch_add_explicit(&tarn__counters.purged_bytes, bytes, memory_order_relaxed);
    return bytes;
}

/* Unmaps cached segments that have waited their delay (delay ms, or
 * large_delay for a large block's); 0 and 0 unmap them all. Returns the
 * bytes given back. */
size_t tarn__segment_cache_trim(tarn__heap_t *h, uint64_t now, uint64_t delay,
                                uint64_t large_delay) {
    size_t released = 0;
    tarn__segment_t **link = &h->cache;
    while (*link) {
        tarn__segment_t *seg = *link;
        uint64_t wait = seg->kind == TARN__SEG_LARGE ? large_delay : delay;
        if (now - seg->cached_ms < wait) {
            link = &seg->next;
            continue;
        }
        released += seg->cached_dirty;
        cache_unmap(h, link);
    }
    return released;
}

/* An unused page of the given kind from one of h's segments, now counted in
 * use; NULL with ENOMEM when no segment can be had. */
tarn__page_t *tarn__segment_page_alloc(tarn__heap_t *h, int kind) {
    tarn__segment_t *seg = h->avail[kind];
    if (!seg) {
        seg = tarn__segment_alloc(h, kind);
        if (!seg) return NULL;
        avail_push(h, seg);
    }
    tarn__page_t *pg = seg->unused_pages;
    if (pg)
        seg->unused_pages = pg->next;
    else
        pg = tarn__segment_page_setup(seg);
    seg->used_pages++;
    tarn__live_add(h, page_area(pg));
    if (!seg->unused_pages && seg->page_next == seg->page_count) avail_remove(h, seg);
    if (pg->on_purge_queue) tarn__segment_dequeue(h, pg);
    return pg;
}

/* Takes back a page whose blocks are all free. Returns whether the heap's
 * dirty bytes grew (the page queued for the purge, or its segment cached):
 * the caller then enforces the purge budget. */
bool tarn__segment_page_free(tarn__heap_t *h, tarn__page_t *pg) {
    tarn__segment_t *seg = tarn__segment_of(pg);
    tarn__live_sub(h, page_area(pg));
    size_t used_bytes = tarn__align_up((size_t)pg->capacity * pg->block_size, tarn__os_page_size());
    if (used_bytes > pg->touched) pg->touched = (uint32_t)used_bytes;
    pg->flags = 0;
    pg->block_size = 0;
    pg->next = seg->unused_pages;
    seg->unused_pages = pg;
    seg->used_pages--;
    if (seg->used_pages == 0) return tarn__segment_release(h, seg);
    if (!seg->in_avail) avail_push(h, seg);
    return purge_queue_add(h, pg);
}
