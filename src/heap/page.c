/* Pages: fixed-size pools, one size class each, queued per class in a heap.
 *
 * The front page of a class queue is the one the fast path allocates from;
 * heap->direct maps every small size to that page so tarn_malloc needs no
 * class computation. A page whose blocks are all handed out leaves the queue
 * (flag FULL) until a block comes back, so the slow path never walks full
 * pages. Blocks are carved lazily, about one OS page at a time, so a page
 * costs resident memory only for what was used.
 *
 * This layer offers malloc's slow path what it chooses from (finding a page
 * with a free block and borrowing, inline in heap/internal.h; growing a page,
 * a new page, ageing retired ones); alloc.c decides their order. */
#include "heap/internal.h"

tarn__page_t tarn__empty_page; /* not LIVE: holds nothing */

/* Points the direct slots of class cls (the sizes it serves, up to
 * DIRECT_MAX) at target. */
static inline void direct_set(tarn__heap_t *h, unsigned cls, tarn__page_t *target) {
    size_t lo = cls == 0 ? 0 : tarn__class_size(cls - 1) / 8 + 1;
    size_t hi = tarn__class_size(cls) / 8;
    if (lo >= TARN__DIRECT_SLOTS) return;
    if (hi >= TARN__DIRECT_SLOTS) hi = TARN__DIRECT_SLOTS - 1;
    for (size_t g = lo; g <= hi; g++)
        h->direct[g] = target;
}

void tarn__direct_point(tarn__heap_t *h, unsigned cls, tarn__page_t *target) {
    direct_set(h, cls, target);
}

/* Points the direct slots of class cls at the front page of its queue,
 * unless a cache above this layer has pinned them to itself
 * (h->direct_pinned: the foreign cache, foreign.c). */
void tarn__direct_update(tarn__heap_t *h, unsigned cls) {
    if (cls < TARN__DIRECT_CLASSES && (h->direct_pinned >> cls & 1)) return;
    tarn__page_t *first = h->queues[cls].first;
    direct_set(h, cls, first ? first : &tarn__empty_page);
}

void tarn__page_queue_remove(tarn__heap_t *h, tarn__page_t *pg) {
    tarn__page_queue_t *q = &h->queues[pg->cls];
    bool was_first = q->first == pg;
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        q->first = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    else
        q->last = pg->prev;
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
    uint32_t n = bs >= TARN__OS_PAGE_MIN ? 1 : (uint32_t)(TARN__OS_PAGE_MIN / bs);
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

static void page_release(tarn__heap_t *h, tarn__page_t *pg) {
    tarn__page_queue_remove(h, pg);
    if (tarn__segment_page_free(h, pg)) tarn__purge_enforce(h);
}

/* Ages the empty pages kept at queue fronts; releases those whose time is
 * up, or all of them if `all`. Returns how many were released. */
size_t tarn__page_age_retired(tarn__heap_t *h, bool all) {
    size_t n = 0;
    for (unsigned w = 0; w < TARN__RETIRED_WORDS; w++)
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

void tarn__page_to_front(tarn__heap_t *h, tarn__page_t *pg) {
    if (pg == h->queues[pg->cls].first) return;
    tarn__page_queue_remove(h, pg);
    queue_push(h, pg, true);
}

/* Carves the next blocks of pg (which can still carve) and moves it to the
 * front of its queue; returns pg, now with a free block. */
tarn__page_t *tarn__page_grow(tarn__heap_t *h, tarn__page_t *pg) {
    page_extend(pg);
    tarn__page_to_front(h, pg);
    return pg;
}

/* A new page of class cls from h's segments, at the front of its queue with
 * its first blocks carved; NULL with ENOMEM. */
tarn__page_t *tarn__page_new(tarn__heap_t *h, unsigned cls) {
    int kind = cls < TARN__SMALL_CLASSES                ? TARN__SEG_SMALL
               : tarn__class_size(cls) <= TARN__MID_MAX ? TARN__SEG_MID
                                                        : TARN__SEG_MEDIUM;
    tarn__page_t *pg = tarn__segment_page_alloc(h, kind);
    if (!pg) return NULL;
    page_init(pg, cls);
    page_extend(pg);
    queue_push(h, pg, true);
    return pg;
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
