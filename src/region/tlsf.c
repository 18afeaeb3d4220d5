/* Segregated free lists: the index of TLSF (Masmano, Ripoll, Crespo, Real:
 * "TLSF: a new dynamic memory allocator for real-time systems", ECRTS 2004),
 * and of best fit, which sorts each list instead.
 *
 * Free blocks sit in segregated lists: the first level splits sizes by
 * power of two, the second splits each power of two into 32 equal ranges
 * (sizes below 512 get exact 16-byte classes in first-level class 0). One bit
 * per list says whether it is empty, one bit per first-level class whether
 * any of its lists is non-empty. find() rounds the request up to the next
 * class boundary, so the head of any list at or above that class fits; two
 * find-first-set instructions locate it. Insert and remove are a push and an
 * unlink. Nothing loops, which is the point: alloc and free are O(1) with a
 * small constant. The price is that a request within one class step (1/32)
 * of the largest free block can fail although that block would fit.
 *
 * Best fit uses the same classes but keeps each list in size order and
 * searches the request's own class first: the first block there that fits,
 * or else the head of the next non-empty class, is the smallest block that
 * fits. Among equal sizes the last freed comes first (LIFO best fit, which
 * Johnstone & Wilson found to fragment about as little as the address-ordered
 * kind), so classes below 512 B, which hold one size each, insert in O(1);
 * above that, inserting walks the blocks of the class that are smaller. */
#include "region/internal.h"

typedef tarn__tblock_t block_t;

#define SL_LOG2 TARN__TLSF_SL_LOG2
#define SMALL ((size_t)TARN__TLSF_SL * TARN__REGION_ALIGN) /* first size with a log class */
#define FL_SHIFT 8                                         /* log2(SMALL) - 1 */

_Static_assert(SMALL == (size_t)1 << (FL_SHIFT + 1), "class 1 starts at SMALL");
_Static_assert(TARN__TB_MAX_BLOCK < (size_t)1 << (TARN__TLSF_FL + FL_SHIFT),
               "every block size has a first-level class");

static inline unsigned log2_floor(size_t x) { return 63u - (unsigned)__builtin_clzll(x); }

/* No branch on size < SMALL: with random sizes it is mispredicted often,
 * which costs more than the class itself. Class 0 has the first level of
 * 256 and the step of 512 (16 B): log2(size | SMALL / 2) gives the first
 * level and log2(size | SMALL) the step for every size, and the mask drops
 * the leading bit that the second level of a log class keeps. */
void tarn__tlsf_class(size_t size, unsigned *fl, unsigned *sl) {
    *fl = log2_floor(size | SMALL / 2) - FL_SHIFT;
    *sl = (unsigned)(size >> (log2_floor(size | SMALL) - SL_LOG2)) & (TARN__TLSF_SL - 1);
}

size_t tarn__tlsf_class_min(unsigned fl, unsigned sl) {
    if (!fl) return sl * TARN__REGION_ALIGN;
    return ((size_t)TARN__TLSF_SL + sl) << (fl + FL_SHIFT - SL_LOG2);
}

static inline tarn__tlsf_state_t *state(tarn_region_t *r) { return &r->u.tlsf; }

/* Links b into list fl.sl after prev (NULL: at the head). */
static void link_after(tarn__tlsf_state_t *t, block_t *b, unsigned fl, unsigned sl, block_t *prev) {
    if (prev) TARN__PROBE_LINKS(prev);
    TARN__PROBE_INDEX(&t->heads[fl][sl]);
    block_t *next = prev ? prev->next_free : t->heads[fl][sl];
    TARN__PROBE_LINKS(b);
    b->next_free = next;
    /* Whether the list was empty is a coin toss: without a branch, an empty
     * one gets the back link written into b itself, then overwritten. */
    if (next) TARN__PROBE_LINKS(next);
    (next ? next : b)->prev_free = b;
    b->prev_free = prev;
    if (prev) {
        prev->next_free = b;
        return;
    }
    t->heads[fl][sl] = b;
    TARN__PROBE_INDEX(&t->sl_map[fl]);
    t->sl_map[fl] |= 1u << sl;
    TARN__PROBE_INDEX(&t->fl_map);
    t->fl_map |= 1u << fl;
}

static void tlsf_insert(tarn_region_t *r, block_t *b, block_t *after) {
    (void)after;
    unsigned fl, sl;
    tarn__tlsf_class(tarn__tb_size(b), &fl, &sl);
    link_after(state(r), b, fl, sl, NULL);
}

/* Unlinks b from the list of its size when it was inserted. The head of a
 * list is known from heads[][], not from its prev_free, which may be stale:
 * popping a head leaves the next block's prev_free alone, so an allocation
 * does not touch that block's memory (a cache miss, often). Every block but
 * a head has an exact prev_free, since a push writes the old head's. */
static void unlink_sized(tarn_region_t *r, block_t *b, size_t size) {
    tarn__tlsf_state_t *t = state(r);
    unsigned fl, sl;
    tarn__tlsf_class(size, &fl, &sl);
    TARN__PROBE_INDEX(&t->heads[fl][sl]);
    TARN__PROBE_LINKS(b);
    block_t *next = b->next_free;
    if (t->heads[fl][sl] != b) {
        TARN__PROBE_LINKS(b->prev_free);
        b->prev_free->next_free = next;
        if (next) {
            TARN__PROBE_LINKS(next);
            next->prev_free = b->prev_free;
        }
        return;
    }
    t->heads[fl][sl] = next;
    /* Whether the list empties is a coin toss: clear its bits without a
     * branch (clearing nothing when it does not). */
    TARN__PROBE_INDEX(&t->sl_map[fl]);
    t->sl_map[fl] &= ~((uint32_t)!next << sl);
    TARN__PROBE_INDEX(&t->fl_map);
    t->fl_map &= ~((uint32_t)!t->sl_map[fl] << fl);
}

static void tlsf_remove(tarn_region_t *r, block_t *b) { unlink_sized(r, b, tarn__tb_size(b)); }

static void tlsf_moved(tarn_region_t *r, block_t *old, size_t old_size, block_t *b) {
    unlink_sized(r, old, old_size);
    tlsf_insert(r, b, NULL);
}

/* The head of the first non-empty list at or above class fl.sl, or NULL. */
static block_t *first_at_or_above(tarn__tlsf_state_t *t, unsigned fl, unsigned sl) {
    if (fl >= TARN__TLSF_FL) return NULL;
    TARN__PROBE_INDEX(&t->sl_map[fl]);
    TARN__PROBE_INDEX(&t->fl_map);
    uint32_t here = sl < TARN__TLSF_SL ? t->sl_map[fl] & (~0u << sl) : 0;
    uint32_t above = t->fl_map & (~1u << fl);
    if (!(here | above)) return NULL;
    /* The first level above fl with a list; 31 (read, unused) if none. */
    unsigned up = (unsigned)__builtin_ctz(above | 1u << (TARN__TLSF_FL - 1));
    TARN__PROBE_INDEX(&t->sl_map[up]);
    uint32_t up_map = t->sl_map[up];
    /* Whether fl itself has a fitting list is a coin toss on random sizes:
     * both answers are computed and one kept with masks (gcc turns a ?:
     * here back into a branch). */
    uint32_t in_here = -(uint32_t)(here != 0);
    fl = up ^ ((fl ^ up) & in_here);
    uint32_t map = here | (up_map & ~in_here);
    TARN__PROBE_INDEX(&t->heads[fl][__builtin_ctz(map)]);
    return t->heads[fl][__builtin_ctz(map)];
}

static block_t *tlsf_find(tarn_region_t *r, size_t size) {
    /* Up by one class step less one; below SMALL the sizes are multiples of
     * the step, so this leaves their class as it is, without a branch. */
    size += ((size_t)1 << (log2_floor(size | SMALL) - SL_LOG2)) - 1;
    unsigned fl, sl;
    tarn__tlsf_class(size, &fl, &sl);
    return first_at_or_above(state(r), fl, sl);
}

/* ---- best fit: the same lists, each in size order ----------------------- */

static bool smaller(const block_t *a, const block_t *b) {
    return tarn__tb_size(a) < tarn__tb_size(b);
}

static void best_insert(tarn_region_t *r, block_t *b, block_t *after) {
    (void)after;
    tarn__tlsf_state_t *t = state(r);
    unsigned fl, sl;
    tarn__tlsf_class(tarn__tb_size(b), &fl, &sl);
    block_t *prev = NULL;
    TARN__PROBE_INDEX(&t->heads[fl][sl]);
    for (block_t *c = t->heads[fl][sl]; c && smaller(c, b); c = c->next_free) {
        TARN__PROBE_LINKS(c);
        prev = c;
    }
    link_after(t, b, fl, sl, prev);
}

static void best_moved(tarn_region_t *r, block_t *old, size_t old_size, block_t *b) {
    unlink_sized(r, old, old_size);
    best_insert(r, b, NULL);
}

static block_t *best_find(tarn_region_t *r, size_t size) {
    tarn__tlsf_state_t *t = state(r);
    unsigned fl, sl;
    tarn__tlsf_class(size, &fl, &sl);
    if (fl >= TARN__TLSF_FL) return NULL;
    TARN__PROBE_INDEX(&t->heads[fl][sl]);
    for (block_t *b = t->heads[fl][sl]; b; b = b->next_free) {
        if (tarn__tb_size(b) >= size) return b;
        TARN__PROBE_LINKS(b);
    }
    return first_at_or_above(t, fl, sl + 1);
}

/* Checks one list: members are free blocks of its class, linked both ways,
 * and in size order if sorted. */
static long check_one(const tarn_region_t *r, unsigned fl, unsigned sl, long limit, bool sorted) {
    long n = 0;
    const block_t *prev = NULL;
    for (const block_t *b = r->u.tlsf.heads[fl][sl]; b; prev = b, b = b->next_free) {
        unsigned f, s;
        if (++n > limit || !tarn__tb_is_free_block(r, b) || (prev && b->prev_free != prev) ||
            (sorted && prev && smaller(b, prev)))
            return tarn__region_broken("region %p: free list %u.%u is broken at %p", (void *)r, fl,
                                       sl, (void *)b);
        tarn__tlsf_class(tarn__tb_size(b), &f, &s);
        if (f != fl || s != sl)
            return tarn__region_broken("region %p: block %p of %zu bytes is on list %u.%u",
                                       (void *)r, (void *)b, tarn__tb_size(b), fl, sl);
    }
    return n;
}

static long check_lists(const tarn_region_t *r, bool sorted) {
    const tarn__tlsf_state_t *t = &r->u.tlsf;
    long total = 0, limit = (long)(r->total / TARN__TB_MIN) + 1;
    for (unsigned fl = 0; fl < TARN__TLSF_FL; fl++) {
        if (!(t->fl_map >> fl & 1) != !t->sl_map[fl])
            return tarn__region_broken("region %p: first-level bit %u is wrong", (void *)r, fl);
        for (unsigned sl = 0; sl < TARN__TLSF_SL; sl++) {
            if (!(t->sl_map[fl] >> sl & 1) != !t->heads[fl][sl])
                return tarn__region_broken("region %p: the bit of list %u.%u is wrong", (void *)r,
                                           fl, sl);
            long n = check_one(r, fl, sl, limit, sorted);
            if (n < 0) return -1;
            total += n;
        }
    }
    return total;
}

static long tlsf_check(const tarn_region_t *r) { return check_lists(r, false); }
static long best_check(const tarn_region_t *r) { return check_lists(r, true); }

const tarn__tindex_t tarn__tlsf_index = {
    tlsf_insert, tlsf_remove, tlsf_moved, tlsf_find, tlsf_check,
};
const tarn__tindex_t tarn__best_fit_index = {
    best_insert, tlsf_remove, best_moved, best_find, best_check,
};
