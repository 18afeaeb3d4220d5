/* The free-block indexes of the three classic list policies.
 *
 * First fit and next fit share one doubly linked list in address order:
 * address-ordered first fit is among the least fragmenting policies measured
 * (Johnstone & Wilson, 1998), at the price of an O(free blocks) walk to insert
 * a block with no free neighbour. Next fit (Knuth) searches from a roving
 * pointer, left where the last search stopped; remove() and moved() carry the
 * rover to a live block, so merges never leave it dangling. Best fit keeps the
 * list ordered by (size, address): the first block that fits is the smallest,
 * the lowest one among equals. Every operation here is O(free blocks) at worst;
 * TLSF (tlsf.c) is the O(1) alternative. */
#include "region/internal.h"

typedef tarn__tblock_t block_t;

static inline tarn__fit_state_t *state(tarn_region_t *r) { return &r->u.fit; }

/* Links b between prev and next (either may be NULL). */
static void link_between(tarn__fit_state_t *f, block_t *b, block_t *prev, block_t *next) {
    b->prev_free = prev;
    b->next_free = next;
    if (prev) prev->next_free = b;
    else f->head = b;
    if (next) next->prev_free = b;
}

static void unlink_block(tarn__fit_state_t *f, block_t *b) {
    if (b->prev_free) b->prev_free->next_free = b->next_free;
    else f->head = b->next_free;
    if (b->next_free) b->next_free->prev_free = b->prev_free;
    if (f->rover == b) f->rover = b->next_free;
}

/* ---- address order: first fit and next fit ------------------------------ */

static void ao_insert(tarn_region_t *r, block_t *b, block_t *after) {
    tarn__fit_state_t *f = state(r);
    if (!after)
        for (block_t *c = f->head; c && c < b; c = c->next_free) after = c;
    tarn_assert(!after || after < b, "the hint lies below the block");
    link_between(f, b, after, after ? after->next_free : f->head);
}

static void ao_remove(tarn_region_t *r, block_t *b) { unlink_block(state(r), b); }

/* b takes old's place: nothing lies between them in address order. */
static void ao_moved(tarn_region_t *r, block_t *old, size_t old_size, block_t *b) {
    (void)old_size;
    if (old == b) return;
    tarn__fit_state_t *f = state(r);
    link_between(f, b, old->prev_free, old->next_free);
    if (f->rover == old) f->rover = b;
}

static block_t *first_find(tarn_region_t *r, size_t size) {
    for (block_t *b = state(r)->head; b; b = b->next_free)
        if (tarn__tb_size(b) >= size) return b;
    return NULL;
}

static block_t *next_find(tarn_region_t *r, size_t size) {
    tarn__fit_state_t *f = state(r);
    block_t *start = f->rover ? f->rover : f->head;
    for (block_t *b = start; b; b = b->next_free)
        if (tarn__tb_size(b) >= size) return f->rover = b;
    for (block_t *b = f->head; b && b != start; b = b->next_free)
        if (tarn__tb_size(b) >= size) return f->rover = b;
    return NULL;
}

/* Walks a list whose order is given by `before`, checking every entry is a
 * free block and the back links agree; entries, or -1 after reporting. The
 * strict order also rules out cycles. */
static long check_list(const tarn_region_t *r, bool (*before)(const block_t *, const block_t *)) {
    const tarn__fit_state_t *f = &r->u.fit;
    long n = 0;
    bool rover_seen = !f->rover;
    for (const block_t *b = f->head, *prev = NULL; b; prev = b, b = b->next_free, n++) {
        if (!tarn__tb_is_free_block(r, b))
            return tarn__region_broken("region %p: free list entry %p is not a free block",
                                       (void *)r, (void *)b);
        if (b->prev_free != prev || (prev && !before(prev, b)))
            return tarn__region_broken("region %p: free list out of order at %p", (void *)r,
                                       (void *)b);
        rover_seen |= b == f->rover;
    }
    if (!rover_seen)
        return tarn__region_broken("region %p: next-fit rover %p is not on the free list",
                                   (void *)r, (void *)f->rover);
    return n;
}

static bool below(const block_t *a, const block_t *b) { return a < b; }
static long ao_check(const tarn_region_t *r) { return check_list(r, below); }

const tarn__tindex_t tarn__first_fit_index = {
    ao_insert, ao_remove, ao_moved, first_find, ao_check,
};
const tarn__tindex_t tarn__next_fit_index = {
    ao_insert, ao_remove, ao_moved, next_find, ao_check,
};

/* ---- (size, address) order: best fit ------------------------------------ */

static bool smaller(const block_t *a, const block_t *b) {
    size_t sa = tarn__tb_size(a), sb = tarn__tb_size(b);
    return sa < sb || (sa == sb && a < b);
}

/* Links b in order, searching outwards from the gap between prev and next
 * (a block leaving that gap usually lands near it). */
static void best_link_near(tarn__fit_state_t *f, block_t *b, block_t *prev, block_t *next) {
    while (prev && smaller(b, prev)) {
        next = prev;
        prev = prev->prev_free;
    }
    while (next && smaller(next, b)) {
        prev = next;
        next = next->next_free;
    }
    link_between(f, b, prev, next);
}

static void best_insert(tarn_region_t *r, block_t *b, block_t *after) {
    (void)after;
    best_link_near(state(r), b, NULL, state(r)->head);
}

static void best_moved(tarn_region_t *r, block_t *old, size_t old_size, block_t *b) {
    (void)old_size;
    tarn__fit_state_t *f = state(r);
    block_t *prev = old->prev_free, *next = old->next_free;
    unlink_block(f, old);
    best_link_near(f, b, prev, next);
}

static block_t *best_find(tarn_region_t *r, size_t size) { return first_find(r, size); }

static long best_check(const tarn_region_t *r) { return check_list(r, smaller); }

const tarn__tindex_t tarn__best_fit_index = {
    best_insert, ao_remove, best_moved, best_find, best_check,
};
