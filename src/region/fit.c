/* The free-block index of first fit and next fit: one doubly linked list in
 * address order. Address-ordered first fit is among the least fragmenting
 * policies measured (Johnstone & Wilson, 1998); its price is the search, a
 * walk over the free blocks. Next fit (Knuth) searches from a roving pointer
 * left where the last search stopped; remove() and moved() carry the rover to
 * a live block, so merges never leave it dangling. Inserting a block with no
 * free neighbour needs its place in address order: the boundary tags give it
 * by walking the physical neighbours to the nearest free block, and only when
 * that is far does insert walk the list. Best fit lives with TLSF in tlsf.c,
 * as it uses the same size classes. */
#include "region/internal.h"

typedef tarn__tblock_t block_t;

/* The list head and the rover share one 16-byte unit: one probe for both. */
static inline tarn__fit_state_t *state(tarn_region_t *r) {
    TARN__PROBE_INDEX(&r->u.fit);
    return &r->u.fit;
}

/* Links b between prev and next (either may be NULL). */
static void link_between(tarn__fit_state_t *f, block_t *b, block_t *prev, block_t *next) {
    TARN__PROBE_LINKS(b);
    b->prev_free = prev;
    b->next_free = next;
    if (prev) {
        TARN__PROBE_LINKS(prev);
        prev->next_free = b;
    } else {
        f->head = b;
    }
    if (next) {
        TARN__PROBE_LINKS(next);
        next->prev_free = b;
    }
}

static void unlink_block(tarn__fit_state_t *f, block_t *b) {
    TARN__PROBE_LINKS(b);
    if (b->prev_free) {
        TARN__PROBE_LINKS(b->prev_free);
        b->prev_free->next_free = b->next_free;
    } else {
        f->head = b->next_free;
    }
    if (b->next_free) {
        TARN__PROBE_LINKS(b->next_free);
        b->next_free->prev_free = b->prev_free;
    }
    if (f->rover == b) f->rover = b->next_free;
}

/* ---- address order: first fit and next fit ------------------------------ */

/* How many physical neighbours on each side insert looks at for a free one. */
#define NEIGHBOUR_WALK 32

/* The nearest free block in b's span, searched outwards from b; *below says
 * on which side it lies. NULL if none lies within NEIGHBOUR_WALK blocks. */
static block_t *nearest_free(block_t *b, bool *below) {
    block_t *down = b, *up = b;
    for (int i = 0; i < NEIGHBOUR_WALK && (down || up); i++) {
        if (down) TARN__PROBE(&down->prev_size);
        down = down && down->prev_size ? (block_t *)((char *)down - down->prev_size) : NULL;
        if (down && tarn__tb_is_free(down)) {
            *below = true;
            return down;
        }
        up = up && tarn__tb_size(up) ? tarn__tb_next(up) : NULL;
        if (up && tarn__tb_size(up) && tarn__tb_is_free(up)) {
            *below = false;
            return up;
        }
    }
    return NULL;
}

static void ao_insert(tarn_region_t *r, block_t *b, block_t *after) {
    tarn__fit_state_t *f = state(r);
    bool below = true;
    block_t *near = after ? after : nearest_free(b, &below);
    if (near) TARN__PROBE_LINKS(near);
    if (near && !below) {
        link_between(f, b, near->prev_free, near);
        return;
    }
    if (!near)
        for (block_t *c = f->head; c && c < b; c = c->next_free) {
            TARN__PROBE_LINKS(c);
            near = c;
        }
    tarn_assert(!near || near < b, "the block below lies below");
    link_between(f, b, near, near ? near->next_free : f->head);
}

static void ao_remove(tarn_region_t *r, block_t *b) { unlink_block(state(r), b); }

/* b takes old's place: nothing lies between them in address order. */
static void ao_moved(tarn_region_t *r, block_t *old, size_t old_size, block_t *b) {
    (void)old_size;
    if (old == b) return;
    tarn__fit_state_t *f = state(r);
    TARN__PROBE_LINKS(old);
    link_between(f, b, old->prev_free, old->next_free);
    if (f->rover == old) f->rover = b;
}

static block_t *first_find(tarn_region_t *r, size_t size) {
    for (block_t *b = state(r)->head; b; b = b->next_free) {
        if (tarn__tb_size(b) >= size) return b;
        TARN__PROBE_LINKS(b);
    }
    return NULL;
}

static block_t *next_find(tarn_region_t *r, size_t size) {
    tarn__fit_state_t *f = state(r);
    block_t *start = f->rover ? f->rover : f->head;
    for (block_t *b = start; b; b = b->next_free) {
        if (tarn__tb_size(b) >= size) return f->rover = b;
        TARN__PROBE_LINKS(b);
    }
    for (block_t *b = f->head; b && b != start; b = b->next_free) {
        if (tarn__tb_size(b) >= size) return f->rover = b;
        TARN__PROBE_LINKS(b);
    }
    return NULL;
}

/* Checks every entry is a free block, in address order, with agreeing back
 * links; entries, or -1 after reporting. The strict order rules out cycles. */
static long ao_check(const tarn_region_t *r) {
    const tarn__fit_state_t *f = &r->u.fit;
    long n = 0;
    bool rover_seen = !f->rover;
    for (const block_t *b = f->head, *prev = NULL; b; prev = b, b = b->next_free, n++) {
        if (!tarn__tb_is_free_block(r, b))
            return tarn__region_broken("region %p: free list entry %p is not a free block",
                                       (void *)r, (void *)b);
        if (b->prev_free != prev || (prev && prev >= b))
            return tarn__region_broken("region %p: free list out of order at %p", (void *)r,
                                       (void *)b);
        rover_seen |= b == f->rover;
    }
    if (!rover_seen)
        return tarn__region_broken("region %p: next-fit rover %p is not on the free list",
                                   (void *)r, (void *)f->rover);
    return n;
}

const tarn__tindex_t tarn__first_fit_index = {
    ao_insert, ao_remove, ao_moved, first_find, ao_check,
};
const tarn__tindex_t tarn__next_fit_index = {
    ao_insert, ao_remove, ao_moved, next_find, ao_check,
};
