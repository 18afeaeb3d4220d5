/* The buddy system (Knowlton 1965), after the Linux page allocator and
 * sqlite's mem5.c.
 *
 * A span is cut into 16-byte atoms. A block of order k is 16 << k bytes and
 * starts at an atom index that is a multiple of 1 << k; its buddy starts at
 * index ^ (1 << k). alloc() rounds the request up to a power of two, takes
 * the smallest free order that is large enough and splits it in halves,
 * freeing the upper halves; free() merges a block with its buddy while the
 * buddy is free and of the same order. Both are O(orders).
 *
 * Block state lives in one control byte per atom beside the blocks (as mem5
 * does), not in a header inside them, so a 4 KiB request takes a 4 KiB block:
 *
 *   ctrl[i] = START | FREE? | k   (1 byte)  at the first atom of each block
 *   ctrl[i] = 0                             inside a block
 *
 * free() reads one byte: no START means p is not a block, FREE means a double
 * free. A span whose atom count is not a power of two starts as its binary
 * decomposition, largest block first; the buddy of such a block is past the
 * end or smaller, so it is never merged by mistake. Rounding to powers of
 * two costs up to half of each block (internal fragmentation, 25% on average
 * for uniform sizes); the control bytes cost 1/17 of the span. */
#include <errno.h>

#include "region/internal.h"

#define ATOM TARN__REGION_ALIGN
#define ORDERS TARN__BUDDY_ORDERS
#define START 0x80u
#define FREE 0x40u
#define ORDER_MASK 0x3fu
#define MIN_ATOMS 4
/* The largest alignment a span's first atom gets, and the share of a span
 * it may cost. */
#define MAX_BASE_ALIGN ((size_t)4096)
#define ALIGN_COST_SHIFT 6

_Static_assert(ORDERS <= ORDER_MASK + 1, "an order fits the control byte");

typedef struct free_block {
    struct free_block *next, *prev;
} free_block_t;

_Static_assert(sizeof(free_block_t) <= ATOM, "a free atom holds its links");

static inline tarn__buddy_state_t *state(tarn_region_t *r) {
    TARN__PROBE_INDEX(&r->u.buddy.nonempty);
    TARN__PROBE_INDEX(&r->u.buddy.max_align);
    return &r->u.buddy;
}
static inline size_t atoms(const tarn__span_t *s) { return (size_t)(s->end - s->start) / ATOM; }
static inline size_t index_of(const tarn__span_t *s, const void *p) {
    return (size_t)((const char *)p - s->start) / ATOM;
}
static inline free_block_t *block_at(const tarn__span_t *s, size_t i) {
    return (free_block_t *)(s->start + i * ATOM);
}

/* The order of the smallest block holding size bytes; ORDERS if none can. */
static unsigned order_for(size_t size) {
    if (size <= ATOM) return 0;
    if (size > ATOM << (ORDERS - 1)) return ORDERS;
    return 64u - (unsigned)__builtin_clzll((size - 1) / ATOM);
}

static void push(tarn__buddy_state_t *st, tarn__span_t *s, size_t i, unsigned k) {
    TARN__PROBE_INDEX(&st->free[k]);
    free_block_t *b = block_at(s, i), *head = st->free[k];
    TARN__PROBE(&s->ctrl[i]);
    s->ctrl[i] = (unsigned char)(START | FREE | k);
    TARN__PROBE(b);
    b->prev = NULL;
    b->next = head;
    if (head) {
        TARN__PROBE(head);
        head->prev = b;
    }
    st->free[k] = b;
    st->nonempty |= (uint64_t)1 << k;
}

static void unlink_block(tarn__buddy_state_t *st, free_block_t *b, unsigned k) {
    TARN__PROBE(b);
    if (b->next) {
        TARN__PROBE(b->next);
        b->next->prev = b->prev;
    }
    if (b->prev) {
        TARN__PROBE(b->prev);
        b->prev->next = b->next;
    } else {
        TARN__PROBE_INDEX(&st->free[k]);
        st->free[k] = b->next;
        if (!b->next) st->nonempty &= ~((uint64_t)1 << k);
    }
}

static void buddy_init(tarn_region_t *r, size_t len) {
    size_t a = ATOM;
    while (a < MAX_BASE_ALIGN && a << 1 <= len >> ALIGN_COST_SHIFT)
        a <<= 1;
    state(r)->max_align = a;
}

/* Puts the control bytes at the start of the span and aligns the blocks
 * after them; the atom count n satisfies n control bytes + 16 n <= space. */
static int buddy_add(tarn_region_t *r, tarn__span_t *s) {
    uintptr_t lo = (uintptr_t)s->start, hi = (uintptr_t)s->end;
    size_t n = (hi - lo) / (ATOM + 1);
    uintptr_t base = tarn__align_up(lo + n, state(r)->max_align);
    if (base > hi) return -1;
    if (base + n * ATOM > hi) n = (hi - base) / ATOM;
    if (n < MIN_ATOMS) return -1;
    s->ctrl = (unsigned char *)lo;
    s->start = (char *)base;
    s->end = s->start + n * ATOM;
    for (size_t i = 0; i < n; i++)
        s->ctrl[i] = 0;
    for (size_t i = 0; i < n;) {
        unsigned k = 63u - (unsigned)__builtin_clzll(n - i);
        if (k >= ORDERS) k = ORDERS - 1;
        push(state(r), s, i, k);
        i += (size_t)1 << k;
    }
    return 0;
}

static void *buddy_alloc(tarn_region_t *r, size_t size, size_t align) {
    tarn__buddy_state_t *st = state(r);
    if (align > st->max_align) {
        errno = EINVAL;
        return NULL;
    }
    unsigned k = order_for(size < align ? align : size);
    uint64_t fits = k < ORDERS ? st->nonempty >> k << k : 0;
    if (!fits) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned j = (unsigned)__builtin_ctzll(fits);
    TARN__PROBE_INDEX(&st->free[j]);
    free_block_t *b = st->free[j];
    tarn__span_t *s = tarn__region_span_of(r, b);
    size_t i = index_of(s, b);
    unlink_block(st, b, j);
    while (j > k) {
        j--;
        push(st, s, i + ((size_t)1 << j), j);
    }
    TARN__PROBE(&s->ctrl[i]);
    s->ctrl[i] = (unsigned char)(START | k);
    r->used += ATOM << k;
    r->live++;
    return b;
}

/* The order of the allocated block at p (inside span s), or ORDERS after
 * reporting why p is not one. */
static unsigned checked_order(tarn_region_t *r, tarn__span_t *s, void *p, const char *op) {
    size_t i = index_of(s, p);
    TARN__PROBE(&s->ctrl[i]);
    unsigned c = s->ctrl[i];
    if ((uintptr_t)p % ATOM || !(c & START)) {
        tarn__report("%s of %p, which is not a block allocated from region %p (no block starts "
                     "there)",
                     op, p, (void *)r);
        return ORDERS;
    }
    unsigned k = c & ORDER_MASK;
    if (c & FREE) {
        tarn__report("%s of %p (size %zu) in region %p, which is already free",
                     op[0] == 'f' ? "double free" : op, p, ATOM << k, (void *)r);
        return ORDERS;
    }
    if (k >= ORDERS || i & (((size_t)1 << k) - 1) || i + ((size_t)1 << k) > atoms(s)) {
        tarn__report("%s of %p in region %p: control byte overwritten (0x%02x)", op, p, (void *)r,
                     c);
        return ORDERS;
    }
    return k;
}

static size_t buddy_usable(tarn_region_t *r, tarn__span_t *s, void *p, const char *op) {
    unsigned k = checked_order(r, s, p, op);
    return k < ORDERS ? ATOM << k : 0;
}

static void buddy_free(tarn_region_t *r, tarn__span_t *s, void *p) {
    unsigned k = checked_order(r, s, p, "free");
    if (k >= ORDERS) return;
    tarn__buddy_state_t *st = state(r);
    r->used -= ATOM << k;
    r->live--;
    size_t i = index_of(s, p), n = atoms(s);
    for (; k < ORDERS - 1; k++) {
        size_t buddy = i ^ ((size_t)1 << k);
        if (buddy + ((size_t)1 << k) > n) break;
        TARN__PROBE(&s->ctrl[buddy]);
        if (s->ctrl[buddy] != (START | FREE | k)) break;
        unlink_block(st, block_at(s, buddy), k);
        s->ctrl[i > buddy ? i : buddy] = 0;
        i &= buddy;
    }
    push(st, s, i, k);
}

/* Shrinks in place by freeing upper halves (their buddies, the lower halves,
 * stay allocated, so nothing merges); growing goes through alloc and copy. */
static bool buddy_resize(tarn_region_t *r, tarn__span_t *s, void *p, size_t size) {
    size_t i = index_of(s, p);
    unsigned k = s->ctrl[i] & ORDER_MASK, want = order_for(size);
    if (want > k) return false;
    r->used -= (ATOM << k) - (ATOM << want);
    while (k > want) {
        k--;
        push(state(r), s, i + ((size_t)1 << k), k);
    }
    s->ctrl[i] = (unsigned char)(START | k);
    return true;
}

/* Checks one span's control bytes, counting free blocks per order. */
static int check_span(const tarn_region_t *r, const tarn__span_t *s, size_t *used, size_t *live,
                      size_t nfree[ORDERS]) {
    size_t n = atoms(s);
    for (size_t i = 0; i < n;) {
        unsigned c = s->ctrl[i], k = c & ORDER_MASK;
        size_t len = (size_t)1 << k;
        if (!(c & START) || k >= ORDERS || i & (len - 1) || i + len > n)
            return tarn__region_broken("region %p: bad control byte 0x%02x at %p", (void *)r, c,
                                       (void *)block_at(s, i));
        for (size_t j = i + 1; j < i + len; j++)
            if (s->ctrl[j])
                return tarn__region_broken("region %p: control byte inside block %p is set",
                                           (void *)r, (void *)block_at(s, i));
        size_t buddy = i ^ len;
        if ((c & FREE) && buddy + len <= n && s->ctrl[buddy] == c)
            return tarn__region_broken("region %p: buddies %p and %p are both free, unmerged",
                                       (void *)r, (void *)block_at(s, i),
                                       (void *)block_at(s, buddy));
        if (c & FREE) {
            nfree[k]++;
        } else {
            *used += ATOM << k;
            ++*live;
        }
        i += len;
    }
    return 0;
}

/* Checks the free list of order k against the control bytes. */
static int check_list(const tarn_region_t *r, unsigned k, size_t expected) {
    const tarn__buddy_state_t *st = &r->u.buddy;
    size_t count = 0;
    const free_block_t *prev = NULL;
    for (const free_block_t *b = st->free[k]; b; prev = b, b = b->next) {
        const tarn__span_t *s = tarn__region_span_of(r, b);
        if (++count > expected || !s || (uintptr_t)b % ATOM || b->prev != prev ||
            s->ctrl[index_of(s, b)] != (START | FREE | k))
            return tarn__region_broken("region %p: free list of order %u is broken at %p",
                                       (void *)r, k, (const void *)b);
    }
    if (count != expected || !(st->nonempty >> k & 1) != !count)
        return tarn__region_broken("region %p: free list of order %u holds %zu blocks, the "
                                   "spans %zu",
                                   (void *)r, k, count, expected);
    return 0;
}

static int buddy_check(const tarn_region_t *r) {
    size_t used = 0, live = 0, nfree[ORDERS] = {0};
    for (const tarn__span_t *s = r->spans; s; s = s->next)
        if (check_span(r, s, &used, &live, nfree) != 0) return -1;
    if (used != r->used || live != r->live)
        return tarn__region_broken("region %p: counts %zu bytes in %zu blocks, the blocks hold "
                                   "%zu in %zu",
                                   (void *)r, r->used, r->live, used, live);
    for (unsigned k = 0; k < ORDERS; k++)
        if (check_list(r, k, nfree[k]) != 0) return -1;
    return 0;
}

static void buddy_walk(const tarn_region_t *r, tarn_region_stats_t *out) {
    for (const tarn__span_t *s = r->spans; s; s = s->next)
        for (size_t i = 0, n = atoms(s); i < n; i += (size_t)1 << (s->ctrl[i] & ORDER_MASK)) {
            if (s->ctrl[i] & FREE) tarn__region_count_free(out, ATOM << (s->ctrl[i] & ORDER_MASK));
        }
}

const tarn__region_ops_t tarn__buddy_ops = {
    .init = buddy_init,
    .add = buddy_add,
    .alloc = buddy_alloc,
    .usable = buddy_usable,
    .free = buddy_free,
    .resize = buddy_resize,
    .check = buddy_check,
    .walk = buddy_walk,
};
