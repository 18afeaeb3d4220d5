/* Fixed-size object pool: O(1) alloc and a checked O(1) free.
 *
 * Memory layout. Every block is one slot of the process-wide slot space
 * (fixed_space.c): 2^shift bytes at a multiple of their size, in a chunk
 * holding only slots of that size. Objects of obj_size (rounded up to the
 * alignment) start at the slot's first byte; a 64-byte header fills the
 * slot's last bytes and names the pool that holds the block.
 *
 *   chunk:  | slot (pool A) | slot (pool B) | slot (free) | slot (pool A) ...
 *   slot:   | obj obj ... obj |  (never touched)  | header |
 *
 * Because slots are aligned to their size, the header of any pointer p is
 * found from p | (S-1) and p & (S-1) is its offset; because the chunk map
 * says which chunks hold slots of this pool's size, that header can always
 * be read, even for a foreign or stale pointer, so free proves p is a live
 * object of this pool before touching anything (see tarn_fixed_free in
 * fixed.h): in such a chunk, in a block whose header names this pool, below
 * the block's bump offset, on an object boundary (one multiply, Lemire's
 * divisibility test), and not carrying the freed tag. A tag match is
 * confirmed by walking the block's free list, so a user value that happens
 * to equal the tag costs time, never correctness.
 *
 * Allocation pops the current block's free list or bumps. When a block
 * becomes wholly free it is reset to bump order, so the next round hands
 * out memory sequentially again instead of in the random order it was
 * freed. By default an empty block is kept while it is reused: one left
 * unused for TARN_FIXED_KEEP_MS goes back to the OS the next time the pool
 * takes its slow path (a block fills or empties), as the heap's purge delay
 * does, without a timer thread; its slot goes back to the slot space.
 *
 * Block states: current (pool->current), partial (has free objects), empty
 * (nothing live, reset; newest first), full (retired with nothing free),
 * each but the current on its own list, so destroy, stats and check reach
 * every block; a released block belongs to no pool. Thread-safe pools route
 * every call through the locked slow path: their hot struct holds a
 * sentinel block and a slot shift no chunk has, so the inline fast paths
 * always miss. Pool structs are objects of one thread-safe pool of pools. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "fixed_space.h"

typedef struct tarn_fixed_block_ block_t;
_Static_assert(sizeof(block_t) == 64,
               "the inline free path finds the header 64 bytes before the slot end");

#define MAX_OBJ_SIZE ((size_t)1 << 30)
#define MAX_ALIGN ((size_t)1 << 20)
#define MAX_BLOCK_BYTES ((size_t)1 << 31) /* keeps object offsets below 2^32 */
#define SHARED_SHIFT 0xff                 /* the hot shift of thread-safe pools */
#define POOLS_BLOCK_BYTES ((size_t)64 << 10)

/* A doubly linked list, so a block leaves it in O(1) from either end. */
typedef struct block_list {
    block_t *head, *tail;
} block_list_t;

struct tarn_fixed {
    struct tarn_fixed_hot_ hot; /* first: the inline paths cast the pool to it */
    block_t *current;           /* == hot.cur unless thread-safe */
    size_t slot_size;
    unsigned shift;             /* log2 slot_size */
    size_t first_cap, grow_cap; /* objects per block */
    size_t keep_empty;          /* empty blocks kept, unless keep_timed */
    bool keep_timed;            /* keep what was reused in the last TARN_FIXED_KEEP_MS */
    bool shared;
    block_list_t partial, empty, full; /* empty: newest first */
    size_t nempty;
    size_t os_maps, os_releases;
    pthread_mutex_t lock;
    block_t sentinel; /* exhausted and owned by no pool: fast paths miss */
};

/* How the pool of pools holds a pool: the pool pointer is one cache line
 * in. The first object of every block starts at a large power-of-two
 * boundary; a pool struct there and an object at another such boundary
 * agree in their low address bits, and the CPU then took the load of
 * hot.free after a store to the object as depending on it: the seed loop
 * ran several times slower (docs/fixed.md). */
typedef struct pool_holder {
    char apart[64];
    struct tarn_fixed pool;
} pool_holder_t;

/* Holds every other pool: 100,000 pools then cost 100,000 objects, not
 * 100,000 mappings. */
static tarn_fixed_t pool_of_pools = {.lock = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t pools_once = PTHREAD_ONCE_INIT;

/* A child process has only the forking thread: the locks every pool's
 * create and growth take (the pool of pools', then the slot space's) must
 * not come to it held by a thread it does not have. Registered when the
 * library loads, before main can start a thread. */
static void fork_prepare(void) {
    pthread_mutex_lock(&pool_of_pools.lock);
    tarn__fixed_space_fork_lock(true);
}
static void fork_resume(void) {
    tarn__fixed_space_fork_lock(false);
    pthread_mutex_unlock(&pool_of_pools.lock);
}
__attribute__((constructor)) static void fixed_load(void) {
    pthread_atfork(fork_prepare, fork_resume, fork_resume);
}

/* ---- geometry ----------------------------------------------------------- */

static size_t block_cap(const tarn_fixed_t *pool, const block_t *b) {
    return b->end / pool->hot.obj_size;
}

static block_t *header_of(const tarn_fixed_t *pool, uintptr_t slot) {
    return (block_t *)(slot + pool->slot_size - sizeof(block_t));
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
    for (; o && n < limit; o = (void **)o[0])
        n++;
    return n;
}

/* Live objects; the current block counts nothing, so walk its list. */
static size_t block_used(tarn_fixed_t *pool, block_t *b) {
    size_t handed = b->bump / pool->hot.obj_size;
    if (b == pool->current) return handed - list_length(*list_of(pool, b), handed);
    return (b->full ? b->aside : b->allocs) - b->frees;
}

/* ---- lists -------------------------------------------------------------- */

static void list_push(block_list_t *l, block_t *b) {
    b->prev = NULL;
    b->next = l->head;
    if (l->head)
        l->head->prev = b;
    else
        l->tail = b;
    l->head = b;
}

static void list_remove(block_list_t *l, block_t *b) {
    if (b->prev)
        b->prev->next = b->next;
    else
        l->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        l->tail = b->prev;
    b->next = b->prev = NULL;
}

static block_t *list_pop(block_list_t *l) {
    block_t *b = l->head;
    if (b) list_remove(l, b);
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

/* A new block of cap objects in a slot of the slot space; NULL+ENOMEM. */
static block_t *block_new(tarn_fixed_t *pool, size_t cap) {
    char *slot = tarn__fixed_slot_take(pool->shift);
    if (!slot) return NULL;
    block_t *b = header_of(pool, (uintptr_t)slot);
    tarn_assert(!b->pool, "a slot comes from the space unowned and zeroed");
    b->pool = pool;
    b->base = slot;
    b->next = b->prev = NULL;
    b->end = (uint32_t)(cap * pool->hot.obj_size);
    block_reset(b);
    pool->os_maps++;
    return b;
}

/* Gives a block's pages back and its slot to the slot space: the header is
 * cleared first (pool NULL), which marks later pointers into it as stale
 * even where the decommit cannot zero it (locked pages: madvise fails).
 * The objects' pages and the header's page in one call when they meet. */
static void block_release(tarn_fixed_t *pool, block_t *b) {
    size_t page = tarn__os_page_size(), objects = tarn__align_up(b->end, page);
    char *slot = b->base;
    memset(b, 0, sizeof *b);
    if (objects + page >= pool->slot_size) {
        tarn__os_decommit(slot, pool->slot_size);
    } else {
        tarn__os_decommit(slot, objects);
        tarn__os_decommit(slot + pool->slot_size - page, page);
    }
    tarn__fixed_slot_give(slot, pool->shift);
    pool->os_releases++;
}

/* Milliseconds, wrapping: only differences of less than 49 days are read. */
static uint32_t now_ms(void) { return (uint32_t)tarn__os_now_ms(); }

/* Gives back the empty blocks that waited TARN_FIXED_KEEP_MS unused: the
 * empty list is newest first, so they are at its tail. */
static void release_unused(tarn_fixed_t *pool, uint32_t now) {
    block_t *b;
    while ((b = pool->empty.tail) && now - b->aside >= TARN_FIXED_KEEP_MS) {
        list_remove(&pool->empty, b);
        pool->nempty--;
        block_release(pool, b);
    }
}

/* A non-current block just became wholly free: keep it or give it back. */
static void block_emptied(tarn_fixed_t *pool, block_t *b) {
    list_remove(&pool->partial, b);
    block_reset(b);
    if (pool->keep_timed) {
        uint32_t now = now_ms();
        b->aside = now;
        list_push(&pool->empty, b);
        pool->nempty++;
        release_unused(pool, now);
    } else if (pool->nempty < pool->keep_empty) {
        list_push(&pool->empty, b);
        pool->nempty++;
    } else {
        block_release(pool, b);
    }
}

/* A free made frees == allocs in a non-current block: it is wholly free, or
 * it was retired full and has just got a free object back. */
void tarn_fixed_block_changed_(tarn_fixed_t *pool, block_t *b) {
    tarn_assert(b != pool->current, "the current block counts nothing");
    if (b->full) {
        b->allocs = b->aside;
        b->full = 0;
        list_remove(&pool->full, b);
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
    b->aside = (uint32_t)block_cap(pool, b);
    b->allocs = 1;
    list_push(&pool->full, b);
}

/* The next current block: partial, then the newest empty one, then a new
 * one. Empty blocks left unused long enough go back on the way. */
static block_t *next_current(tarn_fixed_t *pool) {
    block_t *b = list_pop(&pool->partial);
    if (!b && (b = list_pop(&pool->empty))) pool->nempty--;
    if (pool->keep_timed && pool->nempty) release_unused(pool, now_ms());
    if (!b) {
        if (!pool->grow_cap) return errno = ENOMEM, NULL;
        if (!(b = block_new(pool, pool->grow_cap))) return NULL;
    }
    retire_current(pool);
    set_current(pool, b);
    return b;
}

/* The slow alloc itself; in a shared pool the caller holds pool->lock. */
static void *alloc_locked(tarn_fixed_t *pool) {
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

void *tarn_fixed_alloc_slow_(tarn_fixed_t *pool) {
    if (!pool->shared) return alloc_locked(pool);
    pthread_mutex_lock(&pool->lock);
    void *p = alloc_locked(pool);
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

/* Whether a lies in a chunk of slots of this pool's size, so that the
 * header a implies can be read. */
static bool in_pool_chunks(const tarn_fixed_t *pool, uintptr_t a) {
    uintptr_t chunk = a >> TARN_FIXED_CHUNK_SHIFT_;
    return chunk < TARN_FIXED_CHUNKS_ &&
           __atomic_load_n(&pool->hot.map[chunk], __ATOMIC_RELAXED) == pool->shift;
}

/* Why p is not a live object of this pool, or NULL if it is one; *owner is
 * set when p lies in a block of another pool. */
static const char *invalid_reason(tarn_fixed_t *pool, uintptr_t a, tarn_fixed_t **owner) {
    if (!in_pool_chunks(pool, a)) return "free of foreign pointer";
    uintptr_t off = a & pool->hot.low_mask;
    block_t *b = header_of(pool, a - off);
    if (!b->pool)
        return tarn__fixed_slot_was_taken(a, pool->shift)
                   ? "free of stale pointer (its block went back to the OS)"
                   : "free of foreign pointer";
    if (b->pool != pool) {
        *owner = b->pool;
        return "free of foreign pointer";
    }
    if (off >= b->end || off % pool->hot.obj_size) return "free of interior pointer";
    bool tagged = ((void **)a)[1] == (void *)freed_tag(pool, a);
    if (off >= b->bump) return tagged ? "double free of" : "free of never-allocated";
    if (tagged && on_list(*list_of(pool, b), (void *)a, b->bump / pool->hot.obj_size))
        return "double free of";
    return NULL;
}

static void report(tarn_fixed_t *pool, void *p, const char *why, const tarn_fixed_t *owner) {
    if (owner)
        tarn__report("%s %p (size %zu) in fixed pool %p: it lies in a block of fixed pool %p", why,
                     p, pool->hot.obj_size, (void *)pool, (const void *)owner);
    else
        tarn__report("%s %p (size %zu) in fixed pool %p", why, p, pool->hot.obj_size, (void *)pool);
}

/* The checked free itself; in a shared pool the caller holds pool->lock. */
static void free_locked(tarn_fixed_t *pool, void *p) {
    tarn_fixed_t *owner = NULL;
    const char *why = invalid_reason(pool, (uintptr_t)p, &owner);
    if (why) {
        report(pool, p, why, owner);
        return;
    }
    block_t *b = header_of(pool, (uintptr_t)p & ~pool->hot.low_mask);
    void ***list = list_of(pool, b);
    void **o = p;
    o[0] = *list;
    o[1] = (void *)freed_tag(pool, (uintptr_t)p);
    *list = o;
    if (b != pool->current && ++b->frees == b->allocs) tarn_fixed_block_changed_(pool, b);
}

void tarn_fixed_free_slow_(tarn_fixed_t *pool, void *p) {
    if (!p) return;
    if (!pool->shared) {
        free_locked(pool, p);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    free_locked(pool, p);
    pthread_mutex_unlock(&pool->lock);
}

/* The one external definition of each inline fast path (C11 6.7.4). */
extern inline void *tarn_fixed_alloc(tarn_fixed_t *pool);
extern inline void tarn_fixed_free(tarn_fixed_t *pool, void *p);

/* ---- create and destroy ------------------------------------------------- */

/* Object size, slot size and block capacities from validated options. A
 * slot is at least a page, so a block's pages can go back to the OS alone;
 * a small block shares its page with its header. */
static void set_geometry(tarn_fixed_t *pool, const tarn_fixed_options_t *opt, size_t align) {
    size_t size = tarn__align_up(opt->obj_size < 16 ? 16 : opt->obj_size, align);
    size_t page = tarn__os_page_size(), max_cap = (MAX_BLOCK_BYTES - page) / size;
    pool->hot.obj_size = size;
    pool->hot.div_magic = UINT64_MAX / size + 1;
    pool->first_cap = opt->init_count < max_cap ? opt->init_count : max_cap;
    pool->grow_cap = opt->grow_count < max_cap ? opt->grow_count : max_cap;
    size_t biggest = pool->first_cap > pool->grow_cap ? pool->first_cap : pool->grow_cap;
    size_t slot = tarn__pow2_ceil(biggest * size + sizeof(block_t));
    if (slot < page) slot = page;
    pool->slot_size = slot > align ? slot : align;
    pool->shift = (unsigned)__builtin_ctzll(pool->slot_size);
    pool->hot.low_mask = pool->slot_size - 1;
}

static bool options_valid(const tarn_fixed_options_t *opt, size_t align) {
    return opt->obj_size && opt->obj_size <= MAX_OBJ_SIZE && (opt->init_count || opt->grow_count) &&
           tarn__is_pow2(align) && align <= MAX_ALIGN;
}

/* Sets up a pool struct (zeroed) with no block yet; a thread-safe pool's
 * lock is the caller's to initialise. */
static void pool_init(tarn_fixed_t *pool, const tarn_fixed_options_t *opt, size_t align,
                      const unsigned char *map) {
    pool->shared = opt->thread_safe;
    pool->keep_timed = opt->keep_empty == 0;
    pool->keep_empty = opt->keep_empty == TARN_FIXED_KEEP_NONE ? 0 : opt->keep_empty;
    pool->hot.cur = pool->current = &pool->sentinel;
    pool->hot.map = map;
    set_geometry(pool, opt, align);
    pool->hot.shift = pool->shared ? SHARED_SHIFT : (unsigned char)pool->shift;
}

/* Maps the init_count objects, in as many blocks as a block's limit needs. */
static int map_initial_blocks(tarn_fixed_t *pool, size_t init_count) {
    size_t cap = pool->first_cap;
    size_t nblocks = cap ? init_count / cap + (init_count % cap != 0) : 0;
    /* More blocks than the address space holds slots: fail before reserving. */
    if (nblocks > ((uintptr_t)1 << 47) >> pool->shift) return errno = ENOMEM, -1;
    for (size_t i = 0; i < nblocks; i++) {
        block_t *b = block_new(pool, cap);
        if (!b) return -1;
        if (i == 0)
            set_current(pool, b);
        else
            list_push(&pool->partial, b);
    }
    return 0;
}

static void release_list(tarn_fixed_t *pool, block_list_t *l) {
    for (block_t *b; (b = list_pop(l));)
        block_release(pool, b);
}

static void pool_release(tarn_fixed_t *pool) {
    if (pool->current != &pool->sentinel) block_release(pool, pool->current);
    release_list(pool, &pool->partial);
    release_list(pool, &pool->empty);
    release_list(pool, &pool->full);
    if (pool->shared) pthread_mutex_destroy(&pool->lock);
    tarn_fixed_free(&pool_of_pools, (char *)pool - offsetof(pool_holder_t, pool));
}

static void pools_init(void) {
    size_t size = tarn__align_up(sizeof(pool_holder_t), 64);
    tarn_fixed_options_t opt = {.obj_size = size,
                                .grow_count = (POOLS_BLOCK_BYTES - tarn__os_page_size()) / size,
                                .align = 64,
                                .thread_safe = true};
    pool_init(&pool_of_pools, &opt, 64, tarn__fixed_space_map());
}

static tarn_fixed_t *create_ex(const tarn_fixed_options_t *opt) {
    size_t align = opt && opt->align > 16 ? opt->align : 16;
    if (!opt || !options_valid(opt, opt->align ? opt->align : 16)) return errno = EINVAL, NULL;
    if (opt->init_count > SIZE_MAX / opt->obj_size || opt->grow_count > SIZE_MAX / opt->obj_size)
        return errno = ENOMEM, NULL;
    const unsigned char *map = tarn__fixed_space_map();
    if (!map) return NULL;
    pthread_once(&pools_once, pools_init);
    pool_holder_t *holder = tarn_fixed_alloc(&pool_of_pools);
    if (!holder) return NULL;
    tarn_fixed_t *pool = &holder->pool;
    memset(pool, 0, sizeof *pool);
    pool_init(pool, opt, align, map);
    if (pool->shared) pthread_mutex_init(&pool->lock, NULL);
    if (map_initial_blocks(pool, opt->init_count) < 0) {
        int e = errno;
        pool_release(pool);
        errno = e;
        return NULL;
    }
    return pool;
}

/* tarn_fixed_create and tarn_fixed_create_ex, inline in the program, pass
 * the layout its header describes; the inline fast paths it compiled read
 * the pool as that layout says, so another one is refused. */
tarn_fixed_t *tarn_fixed_create_layout_(const tarn_fixed_options_t *opt, unsigned layout) {
    if (layout != TARN_FIXED_LAYOUT) {
        tarn__report("fixed pool create from a program built with fixed.h layout %u; this "
                     "library has layout %u (rebuild the program)",
                     layout, TARN_FIXED_LAYOUT);
        return errno = EINVAL, NULL;
    }
    return create_ex(opt);
}

void tarn_fixed_destroy(tarn_fixed_t *pool) {
    if (pool) pool_release(pool);
}

/* ---- introspection ------------------------------------------------------ */

typedef void block_fn(tarn_fixed_t *pool, block_t *b, void *arg);

static void each_on_list(tarn_fixed_t *pool, const block_list_t *l, block_fn *fn, void *arg) {
    for (block_t *b = l->head; b; b = b->next)
        fn(pool, b, arg);
}

/* Calls fn on every block the pool holds, under the pool's lock if it has
 * one. */
static void for_each_block(const tarn_fixed_t *cpool, block_fn *fn, void *arg) {
    tarn_fixed_t *pool = (tarn_fixed_t *)cpool; /* only the lock changes */
    if (pool->shared) pthread_mutex_lock(&pool->lock);
    if (pool->current != &pool->sentinel) fn(pool, pool->current, arg);
    each_on_list(pool, &pool->partial, fn, arg);
    each_on_list(pool, &pool->empty, fn, arg);
    each_on_list(pool, &pool->full, fn, arg);
    if (pool->shared) pthread_mutex_unlock(&pool->lock);
}

/* Bytes of a block that can be resident: its objects' pages and the
 * header's page, counted once where they meet. */
static size_t block_footprint(const tarn_fixed_t *pool, const block_t *b) {
    size_t page = tarn__os_page_size(), objects = tarn__align_up(b->end, page);
    return objects + page >= pool->slot_size ? pool->slot_size : objects + page;
}

static void add_block_stats(tarn_fixed_t *pool, block_t *b, void *arg) {
    tarn_pool_stats_t *st = arg;
    size_t used = block_used(pool, b);
    st->blocks++;
    st->in_use += used;
    st->empty_blocks += used == 0;
    st->bytes_mapped += block_footprint(pool, b);
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
            tarn__report("fixed pool %p: block %p has a corrupted free list (entry %p)",
                         (void *)pool, (void *)b, (void *)o);
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
