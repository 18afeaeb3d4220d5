/* Fixed-size object pool (seed 002), rebuilt for O(1) free and honest errors.
 *
 * Memory layout. A pool reserves address ranges from the OS and cuts them
 * into slots of one power-of-two size S. A block fills one slot: objects of
 * obj_size (rounded up to the alignment) from the slot's first byte, and a
 * 64-byte header in the slot's last bytes.
 *
 *   range:  | slot 0            | slot 1            | slot 2 ...
 *   slot:   | obj obj ... obj |  (never touched)  | header |
 *
 * Because slots are aligned to S, the header of any pointer p is found from
 * p | (S-1) (seed 003's trick) and p & (S-1) is its offset; because every
 * slot lies inside a range the pool owns, that header can always be read,
 * even for a foreign or stale pointer, so free proves p is a live object of
 * this pool before touching anything (see tarn_fixed_free in fixed.h): in
 * range, below the block's bump offset, on an object boundary (one multiply,
 * Lemire's divisibility test), and not carrying the freed tag. A tag match
 * is confirmed by walking the block's free list, so a user value that
 * happens to equal the tag costs time, never correctness.
 *
 * Allocation pops the current block's free list or bumps. When a block
 * becomes wholly free it is reset to bump order, so the next round hands out
 * memory sequentially again instead of in the random order it was freed,
 * and beyond keep_empty such blocks go back to the OS (seed 000).
 *
 * Block states: current (pool->current), partial (on the partial list: has
 * free objects), empty (on the empty list: nothing live, reset), full
 * (retired with nothing free, on no list), dead (pages released, header
 * zero but for the dead-list link). Thread-safe pools route every call
 * through the locked generic path: their hot struct holds a sentinel block
 * and an empty range, so the inline fast paths always miss. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"

typedef struct tarn_fixed_block_ block_t;
_Static_assert(sizeof(block_t) == 64, "the inline free path finds the header 64 bytes before the slot end");

#define MAX_OBJ_SIZE ((size_t)1 << 30)
#define MAX_ALIGN ((size_t)1 << 20)
#define MAX_BLOCK_BYTES ((size_t)1 << 31) /* keeps object offsets below 2^32 */
#define FIRST_RANGE_BYTES ((size_t)1 << 30)
#define MAX_RANGES 40

typedef struct range {
    uintptr_t lo;
    size_t nslots;
} range_t;

struct tarn_fixed {
    struct tarn_fixed_hot_ hot; /* first: the inline paths cast the pool to it */
    block_t *current;           /* == hot.cur unless thread-safe */
    size_t slot_size;
    size_t first_cap, grow_cap; /* objects per block */
    size_t keep_empty;          /* resolved from the options */
    bool keep_auto;             /* keep_empty follows peak capacity */
    bool shared;
    block_t *partial, *empty, *dead;
    size_t nempty, nblocks;
    size_t capacity, peak_capacity; /* objects the live blocks can hold */
    size_t os_maps, os_releases;
    size_t next_slot; /* first never-used slot of the newest range */
    size_t nranges;
    range_t ranges[MAX_RANGES];
    pthread_mutex_t lock;
    block_t sentinel; /* exhausted and outside every range: fast paths miss */
};

/* ---- geometry ----------------------------------------------------------- */

/* Bytes of the slot the objects of a block of cap objects occupy. */
static size_t objects_bytes(const tarn_fixed_t *pool, size_t cap) {
    return tarn__align_up(cap * pool->hot.obj_size, tarn__os_page_size());
}

static size_t block_cap(const tarn_fixed_t *pool, const block_t *b) {
    return b->end / pool->hot.obj_size;
}

static block_t *header_of(const tarn_fixed_t *pool, uintptr_t slot) {
    return (block_t *)(slot + pool->slot_size - sizeof(block_t));
}

/* The range holding address a, or NULL: the pool owns exactly these bytes. */
static const range_t *range_of(const tarn_fixed_t *pool, uintptr_t a) {
    for (size_t i = pool->nranges; i-- > 0;) {
        const range_t *r = &pool->ranges[i];
        if (a - r->lo < r->nslots * pool->slot_size) return r;
    }
    return NULL;
}

/* Where b's free list lives: the current block's is in the hot struct,
 * except in thread-safe pools, whose hot struct must stay empty. */
static void ***list_of(tarn_fixed_t *pool, block_t *b) {
    return b == pool->current && !pool->shared ? &pool->hot.free : &b->free;
}

/* Length of a block's free list, counting at most limit entries so a list
 * corrupted into a cycle cannot hang the caller. */
static size_t list_length(void **o, size_t limit) {
    size_t n = 0;
    for (; o && n < limit; o = (void **)o[0]) n++;
    return n;
}

/* Live objects; the current block counts nothing, so walk its list. */
static size_t block_used(tarn_fixed_t *pool, block_t *b) {
    size_t handed = b->bump / pool->hot.obj_size;
    if (b == pool->current) return handed - list_length(*list_of(pool, b), handed);
    return (b->full ? b->saved_allocs : b->allocs) - b->frees;
}

/* ---- lists: doubly linked so a block leaves its list in O(1) ------------ */

static void list_push(block_t **head, block_t *b) {
    b->prev = NULL;
    b->next = *head;
    if (*head) (*head)->prev = b;
    *head = b;
}

static void list_remove(block_t **head, block_t *b) {
    if (b->prev) b->prev->next = b->next;
    else *head = b->next;
    if (b->next) b->next->prev = b->prev;
    b->next = b->prev = NULL;
}

static block_t *list_pop(block_t **head) {
    block_t *b = *head;
    if (b) list_remove(head, b);
    return b;
}

/* ---- blocks ------------------------------------------------------------- */

/* Puts a wholly free block back in bump order: sequential hand-out again. */
static void block_reset(block_t *b) {
    b->free = NULL;
    b->bump = 0;
    b->allocs = b->frees = 0;
    b->full = 0;
}

static void block_init(tarn_fixed_t *pool, block_t *b, char *base, size_t cap) {
    b->pool = pool;
    b->base = base;
    b->next = b->prev = NULL;
    b->end = (uint32_t)(cap * pool->hot.obj_size);
    block_reset(b);
    pool->nblocks++;
    pool->os_maps++;
    pool->capacity += cap;
    if (pool->capacity > pool->peak_capacity) pool->peak_capacity = pool->capacity;
}

/* Makes room for one more range, twice the size of the last one. */
static int add_range(tarn_fixed_t *pool, size_t min_slots) {
    if (pool->nranges == MAX_RANGES) return errno = ENOMEM, -1;
    size_t n = pool->nranges ? pool->ranges[pool->nranges - 1].nslots * 2
                             : FIRST_RANGE_BYTES / pool->slot_size;
    if (n < min_slots) n = min_slots;
    void *p;
    for (;;) { /* a strict overcommit policy may refuse a large reservation */
        p = n <= SIZE_MAX / pool->slot_size ? tarn__os_reserve(n * pool->slot_size, pool->slot_size) : NULL;
        if (p || n == min_slots) break;
        n = n / 2 > min_slots ? n / 2 : min_slots;
    }
    if (!p) return errno = ENOMEM, -1;
    pool->ranges[pool->nranges++] = (range_t){(uintptr_t)p, n};
    pool->next_slot = 0;
    if (!pool->shared) {
        pool->hot.lo = (uintptr_t)p;
        pool->hot.span = n * pool->slot_size;
    }
    return 0;
}

/* A new block of cap objects from a dead slot or a fresh one; NULL+ENOMEM. */
static block_t *block_new(tarn_fixed_t *pool, size_t cap) {
    block_t *b = pool->dead;
    if (b) {
        pool->dead = b->next;
    } else {
        range_t *r = pool->nranges ? &pool->ranges[pool->nranges - 1] : NULL;
        if (!r || pool->next_slot == r->nslots) {
            if (add_range(pool, 1) < 0) return NULL;
            r = &pool->ranges[pool->nranges - 1];
        }
        b = header_of(pool, r->lo + pool->next_slot++ * pool->slot_size);
    }
    block_init(pool, b, (char *)b + sizeof(block_t) - pool->slot_size, cap);
    return b;
}

/* Gives a wholly free block's pages back; the slot stays reserved and its
 * zeroed header (bump 0, pool NULL) marks later pointers into it as stale. */
static void block_release(tarn_fixed_t *pool, block_t *b) {
    size_t cap = block_cap(pool, b), page = tarn__os_page_size();
    tarn__os_decommit(b->base, objects_bytes(pool, cap));
    tarn__os_decommit((char *)b + sizeof(block_t) - page, page);
    b->next = pool->dead;
    pool->dead = b;
    pool->nblocks--;
    pool->os_releases++;
    pool->capacity -= cap;
}

/* keep_empty in blocks; the automatic value follows 1/8 of peak capacity. */
static size_t keep_limit(tarn_fixed_t *pool) {
    if (!pool->keep_auto) return pool->keep_empty;
    size_t cap = pool->grow_cap ? pool->grow_cap : pool->first_cap;
    size_t keep = pool->peak_capacity / 8 / cap;
    return keep ? keep : 1;
}

/* A non-current block just became wholly free: keep it or give it back. */
static void block_emptied(tarn_fixed_t *pool, block_t *b) {
    list_remove(&pool->partial, b);
    if (pool->nempty < keep_limit(pool)) {
        block_reset(b);
        list_push(&pool->empty, b);
        pool->nempty++;
    } else {
        block_release(pool, b);
    }
}

/* A free made frees == allocs in a non-current block: it is wholly free, or
 * it was retired full and has just got a free object back. */
void tarn__fixed_block_changed(tarn_fixed_t *pool, block_t *b) {
    tarn_assert(b != pool->current, "the current block counts nothing");
    if (b->full) {
        b->allocs = b->saved_allocs;
        b->full = 0;
        list_push(&pool->partial, b);
        if (b->allocs != b->frees) return;
    }
    block_emptied(pool, b);
}

/* ---- allocation --------------------------------------------------------- */

/* Makes b current; its live count is kept implicitly from now on. */
static void set_current(tarn_fixed_t *pool, block_t *b) {
    pool->current = b;
    if (pool->shared) return;
    pool->hot.cur = b;
    pool->hot.free = b->free;
    b->free = NULL;
}

/* The exhausted current block holds exactly its capacity: retire it so
 * that its next free takes the slow path and puts it on the partial list. */
static void retire_current(tarn_fixed_t *pool) {
    block_t *b = pool->current;
    if (b == &pool->sentinel) return;
    tarn_assert(!*list_of(pool, b) && b->bump == b->end, "only an exhausted block is retired");
    b->full = 1;
    b->frees = 0;
    b->saved_allocs = (uint32_t)block_cap(pool, b);
    b->allocs = 1;
}

static block_t *next_current(tarn_fixed_t *pool) {
    block_t *b = list_pop(&pool->partial);
    if (!b && (b = list_pop(&pool->empty))) pool->nempty--;
    if (!b) {
        if (!pool->grow_cap) return errno = ENOMEM, NULL;
        if (!(b = block_new(pool, pool->grow_cap))) return NULL;
    }
    retire_current(pool);
    set_current(pool, b);
    return b;
}

static void *alloc_generic(tarn_fixed_t *pool) {
    block_t *b = pool->current;
    if (!*list_of(pool, b) && b->bump == b->end && !(b = next_current(pool))) return NULL;
    void ***list = list_of(pool, b);
    void **o = *list;
    if (o) {
        *list = (void **)o[0];
    } else {
        o = (void **)(b->base + b->bump);
        b->bump += (uint32_t)pool->hot.obj_size;
    }
    o[1] = NULL;
    return o;
}

void *tarn__fixed_alloc_slow(tarn_fixed_t *pool) {
    if (!pool->shared) return alloc_generic(pool);
    pthread_mutex_lock(&pool->lock);
    void *p = alloc_generic(pool);
    pthread_mutex_unlock(&pool->lock);
    return p;
}

/* ---- free --------------------------------------------------------------- */

/* Whether p is on a free list, looking at no more than limit entries: a
 * list corrupted into a cycle must not hang a free. */
static bool on_list(void **o, const void *p, size_t limit) {
    for (size_t n = 0; o && n < limit; o = (void **)o[0], n++)
        if (o == p) return true;
    return false;
}

static uintptr_t freed_tag(const tarn_fixed_t *pool, uintptr_t a) { return a ^ (uintptr_t)pool; }

/* Why p is not a live object of this pool, or NULL if it is one. */
static const char *invalid_reason(tarn_fixed_t *pool, uintptr_t a) {
    if (!range_of(pool, a)) return "free of foreign pointer";
    uintptr_t off = a & pool->hot.low_mask;
    block_t *b = header_of(pool, a - off);
    if (b->pool != pool) return "free of stale pointer (its block went back to the OS)";
    if (off >= b->end || off % pool->hot.obj_size) return "free of interior pointer";
    bool tagged = ((void **)a)[1] == (void *)freed_tag(pool, a);
    if (off >= b->bump) return tagged ? "double free of" : "free of never-allocated";
    if (tagged && on_list(*list_of(pool, b), (void *)a, b->bump / pool->hot.obj_size)) return "double free of";
    return NULL;
}

static void free_generic(tarn_fixed_t *pool, void *p) {
    const char *why = invalid_reason(pool, (uintptr_t)p);
    if (why) {
        tarn__report("%s %p (size %zu) in fixed pool %p", why, p, pool->hot.obj_size, (void *)pool);
        return;
    }
    block_t *b = header_of(pool, (uintptr_t)p & ~pool->hot.low_mask);
    void ***list = list_of(pool, b);
    void **o = p;
    o[0] = *list;
    o[1] = (void *)freed_tag(pool, (uintptr_t)p);
    *list = o;
    if (b != pool->current && ++b->frees == b->allocs) tarn__fixed_block_changed(pool, b);
}

void tarn__fixed_free_slow(tarn_fixed_t *pool, void *p) {
    if (!p) return;
    if (!pool->shared) return free_generic(pool, p);
    pthread_mutex_lock(&pool->lock);
    free_generic(pool, p);
    pthread_mutex_unlock(&pool->lock);
}

/* The one external definition of each inline fast path (C11 6.7.4). */
extern inline void *tarn_fixed_alloc(tarn_fixed_t *pool);
extern inline void tarn_fixed_free(tarn_fixed_t *pool, void *p);

/* ---- create and destroy ------------------------------------------------- */

/* Object size, slot size and block capacities from validated options. */
static void set_geometry(tarn_fixed_t *pool, const tarn_fixed_options_t *opt, size_t align) {
    size_t size = tarn__align_up(opt->obj_size < 16 ? 16 : opt->obj_size, align);
    size_t max_cap = (MAX_BLOCK_BYTES - tarn__os_page_size()) / size;
    pool->hot.obj_size = size;
    pool->hot.div_magic = UINT64_MAX / size + 1;
    pool->first_cap = opt->init_count < max_cap ? opt->init_count : max_cap;
    pool->grow_cap = opt->grow_count < max_cap ? opt->grow_count : max_cap;
    size_t biggest = pool->first_cap > pool->grow_cap ? pool->first_cap : pool->grow_cap;
    size_t slot = tarn__pow2_ceil(objects_bytes(pool, biggest) + sizeof(block_t));
    pool->slot_size = slot > align ? slot : align;
    pool->hot.low_mask = pool->slot_size - 1;
}

static bool options_valid(const tarn_fixed_options_t *opt, size_t align) {
    return opt->obj_size && opt->obj_size <= MAX_OBJ_SIZE && (opt->init_count || opt->grow_count) &&
           tarn__is_pow2(align) && align <= MAX_ALIGN;
}

/* Maps the init_count objects, in as many blocks as a block's limit needs. */
static int map_initial_blocks(tarn_fixed_t *pool, size_t init_count) {
    size_t cap = pool->first_cap;
    size_t nblocks = cap ? (init_count + cap - 1) / cap : 0;
    if (nblocks && add_range(pool, nblocks) < 0) return -1;
    for (size_t i = 0; i < nblocks; i++) {
        block_t *b = block_new(pool, cap);
        if (i == 0) set_current(pool, b);
        else list_push(&pool->partial, b);
    }
    return 0;
}

static void pool_unmap(tarn_fixed_t *pool) {
    for (size_t i = 0; i < pool->nranges; i++)
        tarn__os_unmap((void *)pool->ranges[i].lo, pool->ranges[i].nslots * pool->slot_size);
    if (pool->shared) pthread_mutex_destroy(&pool->lock);
    tarn__os_unmap(pool, sizeof *pool);
}

tarn_fixed_t *tarn_fixed_create_ex(const tarn_fixed_options_t *opt) {
    size_t align = opt && opt->align > 16 ? opt->align : 16;
    if (!opt || !options_valid(opt, opt->align ? opt->align : 16)) return errno = EINVAL, NULL;
    if (opt->init_count > SIZE_MAX / opt->obj_size || opt->grow_count > SIZE_MAX / opt->obj_size)
        return errno = ENOMEM, NULL;
    tarn_fixed_t *pool = tarn__os_map(sizeof *pool);
    if (!pool) return NULL;
    pool->shared = opt->thread_safe != 0;
    pool->keep_auto = opt->keep_empty == 0;
    pool->keep_empty = opt->keep_empty == TARN_FIXED_KEEP_NONE ? 0 : opt->keep_empty;
    pool->hot.cur = pool->current = &pool->sentinel;
    if (pool->shared) pthread_mutex_init(&pool->lock, NULL);
    set_geometry(pool, opt, align);
    if (map_initial_blocks(pool, opt->init_count) < 0) {
        int e = errno;
        pool_unmap(pool);
        errno = e;
        return NULL;
    }
    return pool;
}

tarn_fixed_t *tarn_fixed_create(size_t obj_size, size_t init_count, size_t grow_count) {
    tarn_fixed_options_t opt = {.obj_size = obj_size, .init_count = init_count, .grow_count = grow_count};
    return tarn_fixed_create_ex(&opt);
}

void tarn_fixed_destroy(tarn_fixed_t *pool) {
    if (pool) pool_unmap(pool);
}

/* ---- introspection ------------------------------------------------------ */

typedef void block_fn(tarn_fixed_t *pool, block_t *b, void *arg);

/* Calls fn on every live block (dead and never-used slots read pool NULL),
 * under the pool's lock if it has one. */
static void for_each_block(const tarn_fixed_t *cpool, block_fn *fn, void *arg) {
    tarn_fixed_t *pool = (tarn_fixed_t *)cpool; /* only the lock changes */
    if (pool->shared) pthread_mutex_lock(&pool->lock);
    for (size_t i = 0; i < pool->nranges; i++) {
        size_t n = i + 1 == pool->nranges ? pool->next_slot : pool->ranges[i].nslots;
        for (size_t s = 0; s < n; s++) {
            block_t *b = header_of(pool, pool->ranges[i].lo + s * pool->slot_size);
            if (b->pool == pool) fn(pool, b, arg);
        }
    }
    if (pool->shared) pthread_mutex_unlock(&pool->lock);
}

static void add_block_stats(tarn_fixed_t *pool, block_t *b, void *arg) {
    tarn_pool_stats_t *st = arg;
    size_t used = block_used(pool, b);
    st->blocks++;
    st->in_use += used;
    st->empty_blocks += used == 0;
    st->bytes_mapped += objects_bytes(pool, block_cap(pool, b)) + tarn__os_page_size();
}

void tarn_fixed_stats(const tarn_fixed_t *pool, tarn_pool_stats_t *out) {
    memset(out, 0, sizeof *out);
    for_each_block(pool, add_block_stats, out);
    out->bytes_in_use = out->in_use * pool->hot.obj_size;
    out->os_maps = pool->os_maps;
    out->os_releases = pool->os_releases;
}

/* The free list stays inside the handed-out part of its block, and live +
 * free == handed out (the current block's live count is derived, so only
 * its list is checked). */
static void check_block(tarn_fixed_t *pool, block_t *b, void *arg) {
    int *bad = arg;
    size_t handed = b->bump / pool->hot.obj_size, nfree = 0;
    for (void **o = *list_of(pool, b); o; o = (void **)o[0]) {
        uintptr_t off = (uintptr_t)o - (uintptr_t)b->base;
        if (off >= b->bump || off % pool->hot.obj_size || ++nfree > handed) {
            tarn__report("fixed pool %p: block %p has a corrupted free list (entry %p)", (void *)pool,
                         (void *)b, (void *)o);
            *bad = 1;
            return;
        }
    }
    if (b->bump > b->end || block_used(pool, b) + nfree != handed) {
        tarn__report("fixed pool %p: block %p counts disagree (live %zu, free %zu, handed out %zu)",
                     (void *)pool, (void *)b, block_used(pool, b), nfree, handed);
        *bad = 1;
    }
}

int tarn_fixed_check(const tarn_fixed_t *pool) {
    int bad = 0;
    for_each_block(pool, check_block, &bad);
    return bad ? -1 : 0;
}
