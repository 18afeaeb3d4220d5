/* Pages: fixed-size pools, one size class each, queued per class in a heap.
 *
 * The front page of a class queue is the one the fast path allocates from;
 * heap->direct maps every small size to that page so tarn_malloc needs no
 * class computation. A page whose blocks are all handed out leaves the queue
 * (flag FULL) until a block comes back, so the slow path never walks full
 * pages. Blocks are carved lazily, about one OS page at a time, so a page
 * costs resident memory only for what was used. */
#include "heap/internal.h"

tarn__page_t tarn__empty_page; /* not LIVE: holds nothing */

/* Points the direct slots of class cls at its foreign cache while that is
 * switched on, else at the front page of its queue. */
void tarn__direct_update(tarn__heap_t *h, unsigned cls) {
    size_t lo = cls == 0 ? 0 : tarn__class_size(cls - 1) / 8 + 1;
    size_t hi = tarn__class_size(cls) / 8;
    if (lo >= TARN__DIRECT_SLOTS) return;
    if (hi >= TARN__DIRECT_SLOTS) hi = TARN__DIRECT_SLOTS - 1;
    tarn__page_t *first = h->queues[cls].first ? h->queues[cls].first : &tarn__empty_page;
    if (h->foreign[cls].dirty) first = &h->foreign[cls];
    for (size_t g = lo; g <= hi; g++) h->direct[g] = first;
}

static void queue_remove(tarn__heap_t *h, tarn__page_t *pg) {
    tarn__page_queue_t *q = &h->queues[pg->cls];
    bool was_first = q->first == pg;
    if (pg->prev) pg->prev->next = pg->next;
    else q->first = pg->next;
    if (pg->next) pg->next->prev = pg->prev;
    else q->last = pg->prev;
    pg->next = pg->prev = NULL;
    if (was_first) tarn__direct_update(h, pg->cls);
}

static void queue_push(tarn__heap_t *h, tarn__page_t *pg, bool front) {
    tarn__page_queue_t *q = &h->queues[pg->cls];
    if (!q->first) {
        pg->next = pg->prev = NULL;
        q->first = q->last = pg;
    } else if (front) {
        pg->prev = NULL;
        pg->next = q->first;
        q->first->prev = pg;
        q->first = pg;
    } else {
        pg->next = NULL;
        pg->prev = q->last;
        q->last->next = pg;
        q->last = pg;
    }
    if (q->first == pg) tarn__direct_update(h, pg->cls);
}

static void page_init(tarn__page_t *pg, unsigned cls) {
    tarn__segment_t *seg = tarn__segment_of(pg);
    size_t end = (size_t)(pg->index + 1) << seg->page_shift;
    size_t bs = tarn__class_size(cls);
    pg->block_size = bs;
    pg->cls = (uint8_t)cls;
    pg->flags = TARN__PAGE_LIVE;
    pg->div_magic = pg->remote_div_magic = tarn__div_magic(bs);
    pg->remote_start = pg->start;
    pg->used = pg->capacity = pg->carved_limit = 0;
    atomic_store_explicit(&pg->remote_limit, 0, memory_order_relaxed);
    pg->free = pg->local_free = NULL;
    pg->reserved = (uint32_t)((end - (size_t)(pg->start - (uint8_t *)seg)) / bs);
}

/* Threads the next OS page worth of blocks (at least one) onto free, each
 * marked free: a free of one before it is handed out is refused. */
static void page_extend(tarn__page_t *pg) {
    size_t bs = pg->block_size;
    uint32_t n = bs >= 4096 ? 1 : (uint32_t)(4096 / bs);
    if (n > pg->reserved - pg->capacity) n = pg->reserved - pg->capacity;
    uint8_t *first = pg->start + (size_t)pg->capacity * bs;
    uint8_t *last = first + (size_t)(n - 1) * bs;
    for (uint8_t *p = first; p <= last; p += bs) {
        tarn__block_t *b = (tarn__block_t *)p;
        b->next = p < last ? (tarn__block_t *)(p + bs) : NULL;
        b->freed = tarn__block_key(b);
    }
    pg->free = (tarn__block_t *)first;
    pg->capacity += n;
    pg->carved_limit = (uint32_t)(pg->capacity * tarn__div_step(bs));
    atomic_store_explicit(&pg->remote_limit, pg->carved_limit, memory_order_relaxed);
}

static tarn__page_t *page_new(tarn__heap_t *h, unsigned cls) {
    int kind = cls < TARN__SMALL_CLASSES               ? TARN__SEG_SMALL
               : tarn__class_size(cls) <= TARN__MID_MAX ? TARN__SEG_MID
                                                        : TARN__SEG_MEDIUM;
    tarn__page_t *pg = tarn__segment_page_alloc(h, kind);
    if (!pg) return NULL;
    page_init(pg, cls);
    queue_push(h, pg, true);
    return pg;
}

/* Makes pg->free non-empty from blocks already freed (warm in cache, and
 * committed); false if it has none. */
static bool page_reuse(tarn__page_t *pg) {
    if (pg->free) return true;
    if (!pg->local_free) return false;
    pg->free = pg->local_free;
    pg->local_free = NULL;
    return true;
}

static void page_release(tarn__heap_t *h, tarn__page_t *pg) {
    queue_remove(h, pg);
    tarn__segment_page_free(h, pg);
}

/* Ages the empty pages kept at queue fronts; releases those whose time is
 * up, or all of them if `all`. Returns how many were released. */
static size_t retired_collect(tarn__heap_t *h, bool all) {
    size_t n = 0;
    for (unsigned w = 0; w < 2; w++)
        for (uint64_t bits = h->retired[w]; bits; bits &= bits - 1) {
            unsigned cls = w * 64 + (unsigned)__builtin_ctzll(bits);
            tarn__page_t *pg = h->queues[cls].first;
            bool release = pg && pg->used == 0 && (all || --pg->retire_ttl == 0);
            if (pg && pg->used == 0 && !release) continue;
            h->retired[w] &= ~((uint64_t)1 << (cls % 64));
            if (release) {
                page_release(h, pg);
                n++;
            }
        }
    return n;
}

/* A block already freed in a class up to a quarter larger, found in one of
 * the first two pages of the next class up or, past the direct table's
 * sizes, of the one after. Classes rarely peak together, so lending a
 * neighbour's spare block, instead of carving new memory, keeps each class
 * from committing memory for its own peak (measured, median of 5: alloc-mix
 * peak RSS 13.9 -> 12.0 MiB, larson 13.1 -> 12.5, xmalloc 3.6 -> 3.5). The
 * larger the blocks, the fewer a class holds and the more its own peak costs:
 * lending two classes up above 1 KiB took alloc-mix from 13.0 to 12.5 MiB
 * with 6% fewer page faults; done for every class, it made larson's churn
 * of small blocks 15% slower (medians of 11, 2026-12-02). */
static void *borrow(tarn__heap_t *h, unsigned cls) {
    unsigned last = cls < TARN__DIRECT_CLASSES ? cls + 1 : cls + 2;
    for (unsigned up = cls + 1; up <= last && up < TARN__CLASSES; up++) {
        if (tarn__class_size(up) * 4 > tarn__class_size(cls) * 5) break;
        tarn__page_t *pg = h->queues[up].first;
        for (int tries = 0; pg && tries < 2; pg = pg->next, tries++)
            if (page_reuse(pg)) return tarn__page_pop(pg);
    }
    return NULL;
}

/* The slow path of allocating from class cls: find a page with a free
 * block, retiring exhausted ones to FULL, or start a new page. Blocks freed
 * into any page of the queue come before carving more of one: carving
 * touches new memory while the freed blocks sit committed (measured: larson's
 * peak RSS about 1.2x -> 1.1x glibc's, alloc-mix's 1.04x -> 0.93x). */
void *tarn__page_queue_alloc(tarn__heap_t *h, unsigned cls, bool exact) {
    if (h->retired[0] | h->retired[1]) retired_collect(h, false);
    tarn__page_queue_t *q = &h->queues[cls];
    tarn__page_t *pg = q->first, *carvable = NULL;
    while (pg && !page_reuse(pg)) {
        tarn__page_t *next = pg->next;
        if (pg->capacity < pg->reserved) {
            if (!carvable) carvable = pg;
        } else {
            queue_remove(h, pg);
            pg->flags |= TARN__PAGE_FULL;
        }
        pg = next;
    }
    if (!pg) {
        void *b = tarn__foreign_take(h, cls); /* before lending or carving */
        if (b) return b;
    }
    if (!pg && !exact) {
        void *b = borrow(h, cls);
        if (b) return b;
    }
    if (!pg && carvable) {
        pg = carvable;
        page_extend(pg);
    }
    if (!pg) {
        tarn__purge(h, false);
        pg = page_new(h, cls);
        if (!pg) {
            errno = ENOMEM;
            return NULL;
        }
        page_extend(pg);
    } else if (pg != q->first) {
        queue_remove(h, pg);
        queue_push(h, pg, true);
    }
    return tarn__page_pop(pg);
}

/* A full page got a block back: it rejoins its queue behind the front. */
void tarn__page_unfull(tarn__heap_t *h, tarn__page_t *pg) {
    pg->flags &= (uint8_t)~TARN__PAGE_FULL;
    queue_push(h, pg, false);
}

/* Every block of pg is free. The page goes back to its segment, except the
 * only page of an active heap's class, kept for TARN__RETIRE_CALLS slow-path
 * calls: that spares a malloc/free loop from setting up a page per call. */
void tarn__page_empty(tarn__heap_t *h, tarn__page_t *pg) {
    tarn_assert(!(pg->flags & TARN__PAGE_FULL), "a full page has no free block");
    tarn__page_queue_t *q = &h->queues[pg->cls];
    bool active = atomic_load_explicit(&h->state, memory_order_relaxed) == TARN__HEAP_ACTIVE;
    if (active && q->first == pg && !pg->next) {
        pg->retire_ttl = TARN__RETIRE_CALLS;
        h->retired[pg->cls / 64] |= (uint64_t)1 << (pg->cls % 64);
        return;
    }
    page_release(h, pg);
}

/* Releases every empty page kept at a queue front; returns how many. */
size_t tarn__heap_retire_empty(tarn__heap_t *h) { return retired_collect(h, true); }
