/* Boundary-tag blocks, shared by first fit, next fit, best fit and TLSF; the
 * policies differ only in their index of free blocks (fit.c, tlsf.c).
 *
 * Every block opens with two words (Knuth's boundary tags, with the footer
 * of a block kept in the header of the next one, so it is always valid):
 *
 *   +-----------+----------------------------+------------------------------+
 *   | prev_size | tag:16 | size:44 | 000 | F | next_free, prev_free (free)  |
 *   +-----------+----------------------------+------------------------------+
 *   0           8                            16 = payload                 32
 *
 * size counts the header; F is the free bit; tag is a hash of the block's
 * address, so free() tells a block header from user data or a stale pointer
 * with one multiply, and F tells a double free. A span is a row of blocks
 * closed by a sentinel (size 0, allocated), so every block has a next one.
 * No two free blocks are neighbours: free() merges with both sides in O(1)
 * (prev through prev_size, next through size) and then tells the index. */
#include <errno.h>

#include "region/internal.h"

#define HDR TARN__TB_HDR
#define MIN_BLOCK TARN__TB_MIN
#define TAG_MASK (~(size_t)0 << TARN__TB_TAG_SHIFT)

typedef tarn__tblock_t block_t;

static const tarn__tindex_t *const indexes[] = {
    [TARN_FIRST_FIT] = &tarn__first_fit_index,
    [TARN_NEXT_FIT] = &tarn__next_fit_index,
    [TARN_BEST_FIT] = &tarn__best_fit_index,
    [TARN_TLSF] = &tarn__tlsf_index,
};

static inline const tarn__tindex_t *index_of(const tarn_region_t *r) { return indexes[r->policy]; }

static inline size_t tag_of(const block_t *b) {
    return (size_t)(((uint64_t)(uintptr_t)b * TARN__FIB_MULT) >> TARN__TB_TAG_SHIFT)
           << TARN__TB_TAG_SHIFT;
}
static inline bool tag_ok(const block_t *b) {
    TARN__PROBE(&b->head);
    return (b->head & TAG_MASK) == tag_of(b);
}
static inline void set_head(block_t *b, size_t size, size_t free_bit) {
    TARN__PROBE(&b->head);
    b->head = size | free_bit | tag_of(b);
}
static inline size_t prev_size(const block_t *b) {
    TARN__PROBE(&b->prev_size);
    return b->prev_size;
}
static inline void set_prev_size(block_t *b, size_t size) {
    TARN__PROBE(&b->prev_size);
    b->prev_size = size;
}
static inline block_t *at(const void *p, size_t off) { return (block_t *)((char *)p + off); }
static inline block_t *prev_of(const block_t *b) { return (block_t *)((char *)b - prev_size(b)); }
static inline block_t *block_of(const void *payload) { return (block_t *)((char *)payload - HDR); }

/* Writes a block of `size` at b and the tag in its successor that points back. */
static inline void put_block(block_t *b, size_t size, size_t free_bit) {
    set_head(b, size, free_bit);
    set_prev_size(at(b, size), size);
}

/* Block size for a request, 0 if none can be that large. */
static inline size_t block_need(size_t size) {
    if (size > TARN__TB_MAX_BLOCK - HDR) return 0;
    size_t n = tarn__align_up(size + HDR, TARN__REGION_ALIGN);
    return n < MIN_BLOCK ? MIN_BLOCK : n;
}

static int tagged_add(tarn_region_t *r, tarn__span_t *s) {
    size_t area = (size_t)(s->end - s->start);
    if (area > TARN__TB_MAX_BLOCK + HDR) area = TARN__TB_MAX_BLOCK + HDR;
    if (area < MIN_BLOCK + HDR) return -1;
    block_t *first = (block_t *)s->start;
    set_prev_size(first, 0);
    put_block(first, area - HDR, TARN__TB_FREE);
    set_head(at(first, area - HDR), 0, 0);
    s->end = s->start + area;
    index_of(r)->insert(r, first, NULL);
    return 0;
}

/* Marks a free block b (in the index) allocated with `need` bytes, leaving
 * the rest free in b's place if it can hold a block. */
static void *take(tarn_region_t *r, block_t *b, size_t need) {
    size_t size = tarn__tb_size(b);
    if (size - need >= MIN_BLOCK) {
        block_t *rest = at(b, need);
        set_prev_size(rest, need);
        put_block(rest, size - need, TARN__TB_FREE);
        index_of(r)->moved(r, b, size, rest);
        size = need;
    } else {
        index_of(r)->remove(r, b);
    }
    set_head(b, size, 0);
    r->used += size;
    r->live++;
    return at(b, HDR);
}

/* Cuts the bytes of b beyond need off as a free block, indexed next to
 * hint, when they can form one; returns the size b keeps. */
static size_t split_tail(tarn_region_t *r, block_t *b, size_t size, size_t need, block_t *hint) {
    if (size - need < MIN_BLOCK) return size;
    block_t *tail = at(b, need);
    set_prev_size(tail, need);
    put_block(tail, size - need, TARN__TB_FREE);
    index_of(r)->insert(r, tail, hint);
    return need;
}

/* Like take(), for a payload at a multiple of align (> 16): the gap before it
 * stays free in b's place; b holds need + align + MIN_BLOCK bytes, enough for
 * any gap. Out of line: inlined, its registers make every plain allocation
 * save and restore six of them. */
static tarn__noinline void *take_aligned(tarn_region_t *r, block_t *b, size_t need, size_t align) {
    uintptr_t p = tarn__align_up((uintptr_t)b + HDR, align);
    size_t lead = p - HDR - (uintptr_t)b;
    if (lead && lead < MIN_BLOCK) lead += align;
    if (!lead) return take(r, b, need);
    size_t size = tarn__tb_size(b);
    block_t *mid = at(b, lead);
    set_head(b, lead, TARN__TB_FREE);
    set_prev_size(mid, lead);
    index_of(r)->moved(r, b, size, b);
    size -= lead;
    size = split_tail(r, mid, size, need, b);
    put_block(mid, size, 0);
    r->used += size;
    r->live++;
    return at(mid, HDR);
}

static void *tagged_alloc(tarn_region_t *r, size_t size, size_t align) {
    size_t need = block_need(size);
    size_t want = align <= TARN__REGION_ALIGN ? need : need + align + MIN_BLOCK;
    block_t *b = NULL;
    if (need && align <= TARN__TB_MAX_BLOCK / 2 && want <= TARN__TB_MAX_BLOCK)
        b = index_of(r)->find(r, want);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    return align <= TARN__REGION_ALIGN ? take(r, b, need) : take_aligned(r, b, need, align);
}

/* The allocated block whose payload is p (inside span s), or NULL after
 * reporting why p is not one. */
static block_t *checked_block(tarn_region_t *r, tarn__span_t *s, void *p, const char *op) {
    block_t *b = block_of(p);
    if ((uintptr_t)p % TARN__REGION_ALIGN || (char *)b < s->start || !tag_ok(b)) {
        tarn__report("%s of %p, which is not a block allocated from region %p (no block header)",
                     op, p, (void *)r);
        return NULL;
    }
    size_t size = tarn__tb_size(b);
    if (tarn__tb_is_free(b)) {
        tarn__report("%s of %p (size %zu) in region %p, which is already free",
                     op[0] == 'f' ? "double free" : op, p, size - HDR, (void *)r);
        return NULL;
    }
    if (size < MIN_BLOCK || size > (size_t)(s->end - (char *)b) - HDR ||
        prev_size(at(b, size)) != size) {
        tarn__report("%s of %p in region %p: block header overwritten (size %zu)", op, p, (void *)r,
                     size);
        return NULL;
    }
    return b;
}

static size_t tagged_usable(tarn_region_t *r, tarn__span_t *s, void *p, const char *op) {
    block_t *b = checked_block(r, s, p, op);
    return b ? tarn__tb_size(b) - HDR : 0;
}

static void tagged_free(tarn_region_t *r, tarn__span_t *s, void *p) {
    block_t *b = checked_block(r, s, p, "free");
    if (!b) return;
    const tarn__tindex_t *ix = index_of(r);
    size_t size = tarn__tb_size(b);
    r->used -= size;
    r->live--;
    block_t *next = at(b, size);
    if (prev_size(b) && tarn__tb_is_free(prev_of(b))) {
        block_t *prev = prev_of(b);
        size_t prev_bytes = tarn__tb_size(prev);
        if (tarn__tb_is_free(next)) {
            ix->remove(r, next);
            size += tarn__tb_size(next);
        }
        set_head(b, size, TARN__TB_FREE); /* a stale header still says free */
        put_block(prev, prev_bytes + size, TARN__TB_FREE);
        ix->moved(r, prev, prev_bytes, prev);
    } else if (tarn__tb_is_free(next)) {
        size_t next_size = tarn__tb_size(next);
        put_block(b, size + next_size, TARN__TB_FREE);
        ix->moved(r, next, next_size, b);
    } else {
        set_head(b, size, TARN__TB_FREE);
        ix->insert(r, b, NULL);
    }
}

/* Shrinks allocated b of `size` to `need`, freeing the tail (merged with a
 * free successor). */
static void shrink(tarn_region_t *r, block_t *b, size_t size, size_t need) {
    block_t *next = at(b, size), *tail = at(b, need);
    set_head(b, need, 0);
    set_prev_size(tail, need);
    if (tarn__tb_is_free(next)) {
        size_t next_size = tarn__tb_size(next);
        put_block(tail, size - need + next_size, TARN__TB_FREE);
        index_of(r)->moved(r, next, next_size, tail);
    } else {
        put_block(tail, size - need, TARN__TB_FREE);
        index_of(r)->insert(r, tail, NULL);
    }
    r->used -= size - need;
}

/* Grows allocated b of `size` to `need` from its free successor, if that is
 * large enough. */
static bool grow(tarn_region_t *r, block_t *b, size_t size, size_t need) {
    block_t *next = at(b, size);
    if (!tarn__tb_is_free(next) || size + tarn__tb_size(next) < need) return false;
    size_t total = size + tarn__tb_size(next);
    TARN__PROBE_LINKS(next);
    block_t *after = next->prev_free;
    index_of(r)->remove(r, next);
    total = split_tail(r, b, total, need, after);
    put_block(b, total, 0);
    r->used += total - size;
    return true;
}

static bool tagged_resize(tarn_region_t *r, tarn__span_t *s, void *p, size_t size) {
    (void)s;
    block_t *b = block_of(p);
    size_t have = tarn__tb_size(b), need = block_need(size);
    if (!need) return false;
    if (need > have) return grow(r, b, have, need);
    if (have - need >= MIN_BLOCK) shrink(r, b, have, need);
    return true;
}

bool tarn__tb_is_free_block(const tarn_region_t *r, const block_t *b) {
    const tarn__span_t *s = tarn__region_span_of(r, b);
    if (!s || (uintptr_t)b % TARN__REGION_ALIGN || !tag_ok(b) || !tarn__tb_is_free(b)) return false;
    size_t size = tarn__tb_size(b);
    if (size < MIN_BLOCK || size > (size_t)(s->end - (char *)b) - HDR) return false;
    if (at(b, size)->prev_size != size) return false;
    if (!b->prev_size) return (char *)b == s->start;
    return b->prev_size <= (size_t)((char *)b - s->start) &&
           tarn__tb_size(prev_of(b)) == b->prev_size;
}

/* Walks one span's blocks, adding allocated bytes and blocks and free blocks
 * to the counters; 0, or -1 after reporting. */
static int check_span(const tarn_region_t *r, const tarn__span_t *s, size_t *used, size_t *live,
                      size_t *nfree) {
    const block_t *b = (const block_t *)s->start;
    size_t prev = 0;
    bool prev_free = false;
    for (;;) {
        if ((const char *)b > s->end - HDR)
            return tarn__region_broken("region %p: block %p runs past its span", (void *)r,
                                       (void *)b);
        if (!tag_ok(b))
            return tarn__region_broken("region %p: block %p has a bad header", (void *)r,
                                       (void *)b);
        if (b->prev_size != prev)
            return tarn__region_broken("region %p: block %p says the block before has %zu bytes, "
                                       "it has %zu",
                                       (void *)r, (void *)b, b->prev_size, prev);
        size_t size = tarn__tb_size(b);
        if (!size)
            return (const char *)b == s->end - HDR && !tarn__tb_is_free(b)
                       ? 0
                       : tarn__region_broken("region %p: span end %p is misplaced", (void *)r,
                                             (void *)b);
        if (size < MIN_BLOCK || size > (size_t)(s->end - (const char *)b) - HDR)
            return tarn__region_broken("region %p: block %p has a bad size %zu", (void *)r,
                                       (void *)b, size);
        bool is_free = tarn__tb_is_free(b);
        if (is_free && prev_free)
            return tarn__region_broken("region %p: free block %p follows a free block unmerged",
                                       (void *)r, (void *)b);
        if (is_free) {
            ++*nfree;
        } else {
            *used += size;
            ++*live;
        }
        prev_free = is_free;
        prev = size;
        b = at(b, size);
    }
}

static int tagged_check(const tarn_region_t *r) {
    size_t used = 0, live = 0, nfree = 0;
    for (const tarn__span_t *s = r->spans; s; s = s->next)
        if (check_span(r, s, &used, &live, &nfree) != 0) return -1;
    if (used != r->used || live != r->live)
        return tarn__region_broken("region %p: counts %zu bytes in %zu blocks, the blocks hold "
                                   "%zu in %zu",
                                   (void *)r, r->used, r->live, used, live);
    long indexed = index_of(r)->check(r);
    if (indexed < 0) return -1;
    if ((size_t)indexed != nfree)
        return tarn__region_broken("region %p: the free index holds %ld blocks, the spans %zu",
                                   (void *)r, indexed, nfree);
    return 0;
}

static void tagged_walk(const tarn_region_t *r, tarn_region_stats_t *out) {
    for (const tarn__span_t *s = r->spans; s; s = s->next)
        for (const block_t *b = (const block_t *)s->start;
             (const char *)b < s->end && tarn__tb_size(b); b = tarn__tb_next(b)) {
            if (tarn__tb_is_free(b)) tarn__region_count_free(out, tarn__tb_size(b));
        }
}

const tarn__region_ops_t tarn__tagged_ops = {
    .add = tagged_add,
    .alloc = tagged_alloc,
    .usable = tagged_usable,
    .free = tagged_free,
    .resize = tagged_resize,
    .check = tagged_check,
    .walk = tagged_walk,
};
