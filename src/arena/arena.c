/* The region pool (nginx ngx_palloc, APR pools, obstack).
 *
 * Small pieces are bumped out of blocks kept in a list, oldest first. As in
 * nginx, a block that misses five times in the slow path stops being searched
 * (`current` moves past it), so a miss costs at most a handful of probes and
 * allocation is O(1) amortized. Each block counts its live pieces: when
 * tarn_arena_free brings the count to zero, the block is emptied and reused.
 * Blocks double within a cycle and a reset restarts the doubling at what the
 * last cycle needed (regrow). Pieces too big for a block get their own
 * mapping, found again in O(1) through the page map. Cleanup callbacks and
 * child arenas share one stack, run newest first.
 *
 * Every block, large allocation and stack node takes a sequence number from
 * one counter when it enters use, and the block list stays sorted by it. A
 * mark is that counter plus the bump pointer of the last block; rewind drops
 * whatever has a larger number. Two arenas count alike, so a mark also names
 * its arena by a number unique in the process. A mark makes the last block
 * `current`, so nothing allocated after it lands in an older block (obstack's
 * stack discipline on top of nginx's multi-block search). */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

#define BLOCK_HEADER tarn__align_up(sizeof(tarn__arena_block_t), TARN__ARENA_ALIGN)
#define DEFAULT_BLOCK ((size_t)8 << 10)
#define DEFAULT_MAX_BLOCK ((size_t)1 << 20)
#define MAX_FAILED 4

/* fast == current, except that it is the empty sentinel when the list is
 * empty or the arena is locked, so the inline path needs no second test.
 * Blocks before current are retired; current..tail are searched. */
struct tarn_arena {
    tarn__arena_block_t *fast;
    tarn__arena_block_t *current;
    tarn__arena_block_t *head, *tail; /* in use, seq increasing from head */
    tarn__arena_block_t *spare;       /* empty blocks kept for reuse, linked by next */
    tarn__arena_block_t *holder;      /* the block this struct lives in */
    tarn__arena_large_t *large;       /* newest first */
    tarn__arena_node_t *nodes;        /* cleanup stack, newest first */
    tarn_arena_t *parent;
    tarn__arena_node_t *in_parent; /* our node in the parent's stack, NULL once detached */
    uint64_t id;                   /* unique in the process, so a mark names its arena */
    uint64_t seq;                  /* last sequence number handed out */
    uint64_t reset_seq;            /* marks older than this were invalidated by reset */
    size_t first_block, next_block, max_block;
    size_t large_min; /* larger requests get their own mapping */
    size_t keep;      /* blocks reset keeps, holder included */
    size_t n_large, large_bytes, n_nodes, os_maps, os_releases;
    bool doubling, locked;
    pthread_mutex_t lock; /* recursive; used when locked */
};

static _Atomic uint64_t arenas_created;
static char nowhere[TARN__ARENA_ALIGN];
static tarn__arena_block_t no_room = {.last = nowhere, .end = nowhere};

static void lock(const tarn_arena_t *a) {
    if (a->locked) pthread_mutex_lock((pthread_mutex_t *)&a->lock);
}
static void unlock(const tarn_arena_t *a) {
    if (a->locked) pthread_mutex_unlock((pthread_mutex_t *)&a->lock);
}

static void set_current(tarn_arena_t *a, tarn__arena_block_t *b) {
    a->current = b;
    a->fast = b && !a->locked ? b : &no_room;
}

static void block_clear(tarn__arena_block_t *b) {
    b->last = b->start;
    b->count = 0;
    b->failed = 0;
}

static void list_append(tarn_arena_t *a, tarn__arena_block_t *b) {
    b->seq = ++a->seq;
    b->prev = a->tail;
    b->next = NULL;
    if (a->tail)
        a->tail->next = b;
    else
        a->head = b;
    a->tail = b;
    if (!a->current) set_current(a, b);
}

static void list_unlink(tarn_arena_t *a, tarn__arena_block_t *b) {
    if (b->prev)
        b->prev->next = b->next;
    else
        a->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        a->tail = b->prev;
    if (a->current == b) set_current(a, b->next);
}

static void spare_push(tarn_arena_t *a, tarn__arena_block_t *b) {
    block_clear(b);
    b->next = a->spare;
    a->spare = b;
}

/* A piece of size bytes at align (>= 16) in b, or NULL if it does not fit. */
static void *bump(tarn__arena_block_t *b, size_t size, size_t align) {
    char *p = (char *)tarn__align_up((uintptr_t)b->last, align);
    size_t n = tarn__align_up(size, TARN__ARENA_ALIGN);
    if (p > b->end || n > (size_t)(b->end - p)) return NULL;
    b->last = p + n;
    b->count++;
    return p;
}

/* ---- blocks ------------------------------------------------------------ */

static size_t next_block_size(tarn_arena_t *a, size_t need) {
    if (!a->doubling) return a->first_block;
    size_t size = tarn__pow2_ceil(need + BLOCK_HEADER);
    return size > a->next_block ? size : a->next_block;
}

/* Appends a block with room for need bytes: the first spare one if it is
 * big enough, else one from the shared cache or the OS. */
static tarn__arena_block_t *block_add(tarn_arena_t *a, size_t need) {
    tarn__arena_block_t *b = a->spare;
    if (b && (size_t)(b->end - b->start) >= need) {
        a->spare = b->next;
    } else {
        size_t size = next_block_size(a, need);
        b = tarn__block_get(size, &a->os_maps);
        if (!b) return NULL;
        b->own.arena = a;
        b->start = (char *)b + BLOCK_HEADER;
        b->end = (char *)b + size;
        block_clear(b);
    }
    /* A spare counts as the last block too, so a cycle that outgrows the
     * spares kept by reset goes on doubling past them. */
    if (a->doubling && b->size >= a->next_block)
        a->next_block = b->size < a->max_block ? b->size * 2 : a->max_block;
    list_append(a, b);
    return b;
}

/* Called when b's last piece was freed: the tail restarts in place, any
 * other block waits on the spare list. Either way it takes a new sequence
 * number when used again, so marks see it as new. */
static void block_emptied(tarn_arena_t *a, tarn__arena_block_t *b) {
    if (b == a->tail) {
        block_clear(b);
        b->seq = ++a->seq;
    } else {
        list_unlink(a, b);
        spare_push(a, b);
    }
}

/* ---- large allocations -------------------------------------------------- */

static void *large_alloc(tarn_arena_t *a, size_t size, size_t align) {
    size_t page = tarn__os_page_size();
    size_t off = tarn__align_up(sizeof(tarn__arena_large_t), align);
    if (size > SIZE_MAX / 2 - off) {
        errno = ENOMEM;
        return NULL;
    }
    size_t map_size = tarn__align_up(off + size, page);
    char *base = align <= page ? tarn__os_map(map_size) : tarn__os_map_aligned(map_size, align);
    if (!base) return NULL;
    tarn__arena_large_t *l = (tarn__arena_large_t *)base;
    l->user = base + off;
    if (tarn__pagemap_set(l->user, 1, (uintptr_t)l) != 0) {
        tarn__os_unmap(base, map_size);
        return NULL;
    }
    l->own = (tarn__arena_owner_t){a, TARN__ARENA_LARGE};
    l->size = size;
    l->map_size = map_size;
    l->seq = ++a->seq;
    l->prev = NULL;
    l->next = a->large;
    if (a->large) a->large->prev = l;
    a->large = l;
    a->n_large++;
    a->large_bytes += size;
    a->os_maps++;
    return l->user;
}

/* Unmaps l, leaving a tombstone so a second free is reported as one. */
static void large_release(tarn_arena_t *a, tarn__arena_large_t *l) {
    if (l->prev)
        l->prev->next = l->next;
    else
        a->large = l->next;
    if (l->next) l->next->prev = l->prev;
    a->n_large--;
    a->large_bytes -= l->size;
    a->os_releases++;
    tarn__pagemap_set(l->user, 1, (uintptr_t)a | TARN__ARENA_TOMBSTONE);
    tarn__os_unmap(l, l->map_size);
}

static void large_release_after(tarn_arena_t *a, uint64_t seq) {
    while (a->large && a->large->seq > seq)
        large_release(a, a->large);
}

/* ---- allocation --------------------------------------------------------- */

/* The search behind the inline path: blocks from current on, then a new one.
 * align is a power of two >= 16. */
static void *alloc_locked(tarn_arena_t *a, size_t size, size_t align) {
    if (size == 0) size = 1;
    if (size > SIZE_MAX / 2 || align > SIZE_MAX / 4) {
        errno = ENOMEM;
        return NULL;
    }
    size_t need = size + align - TARN__ARENA_ALIGN;
    if (need > a->large_min) return large_alloc(a, size, align);
    for (tarn__arena_block_t *b = a->current; b; b = b->next) {
        void *p = bump(b, size, align);
        if (p) return p;
        if (b->failed++ >= MAX_FAILED && b == a->current) set_current(a, b->next);
    }
    tarn__arena_block_t *b = block_add(a, need);
    return b ? bump(b, size, align) : NULL;
}

static tarn__noinline void *alloc_slow(tarn_arena_t *a, size_t size, size_t align) {
    lock(a);
    void *p = alloc_locked(a, size, align);
    unlock(a);
    return p;
}

void *tarn_arena_alloc(tarn_arena_t *a, size_t size) {
    tarn__arena_block_t *b = a->fast;
    char *p = b->last;
    if (tarn__likely(size - 1 < (size_t)(b->end - p))) {
        b->last = p + tarn__align_up(size, TARN__ARENA_ALIGN);
        b->count++;
        return p;
    }
    return alloc_slow(a, size, TARN__ARENA_ALIGN);
}

void *tarn_arena_alloc_aligned(tarn_arena_t *a, size_t size, size_t align) {
    if (!tarn__is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= TARN__ARENA_ALIGN) return tarn_arena_alloc(a, size);
    return alloc_slow(a, size, align);
}

void *tarn_arena_calloc(tarn_arena_t *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = tarn_arena_alloc(a, n * size);
    if (p && n * size <= a->large_min) memset(p, 0, n * size);
    return p;
}

char *tarn_arena_strdup(tarn_arena_t *a, const char *s) {
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *p = tarn_arena_alloc(a, n);
    if (p) memcpy(p, s, n);
    return p;
}

/* ---- free --------------------------------------------------------------- */

static void free_small(tarn_arena_t *a, tarn__arena_block_t *b, char *p) {
    if (p < b->start || p >= b->last || (uintptr_t)p % TARN__ARENA_ALIGN) {
        tarn__report("free of %p: not a live allocation of arena %p (block %p holds [%p, %p))",
                     (void *)p, (void *)a, (void *)b, (void *)b->start, (void *)b->last);
        return;
    }
    tarn_assert(b->count > 0, "a block with used bytes holds a live piece");
    if (--b->count == 0) block_emptied(a, b);
}

static void free_large(tarn_arena_t *a, tarn__arena_large_t *l, char *p) {
    if (p != l->user) {
        tarn__report("free of %p: inside large allocation %p (size %zu) of arena %p", (void *)p,
                     (void *)l->user, l->size, (void *)a);
        return;
    }
    large_release(a, l);
}

static void free_locked(tarn_arena_t *a, void *p) {
    uintptr_t e = tarn__pagemap_get(p);
    tarn__arena_owner_t *own = (tarn__arena_owner_t *)(e & ~TARN__ARENA_TOMBSTONE);
    if (e & TARN__ARENA_TOMBSTONE) {
        if ((tarn_arena_t *)own == a)
            tarn__report("double free of %p (a large allocation, already released) in arena %p", p,
                         (void *)a);
        else
            tarn__report("free of %p: not allocated by arena %p", p, (void *)a);
    } else if (!own || !own->arena) {
        tarn__report("free of %p: not allocated by arena %p", p, (void *)a);
    } else if (own->arena != a) {
        tarn__report("free of %p: it belongs to arena %p, not arena %p", p, (void *)own->arena,
                     (void *)a);
    } else if (own->kind == TARN__ARENA_LARGE) {
        free_large(a, (tarn__arena_large_t *)own, p);
    } else {
        free_small(a, (tarn__arena_block_t *)own, p);
    }
}

void tarn_arena_free(tarn_arena_t *a, void *p) {
    if (!p) return;
    lock(a);
    free_locked(a, p);
    unlock(a);
}

/* ---- the cleanup stack -------------------------------------------------- */

static tarn__arena_node_t *node_push(tarn_arena_t *a) {
    tarn__arena_node_t *n = alloc_locked(a, sizeof *n, TARN__ARENA_ALIGN);
    if (!n) return NULL;
    *n = (tarn__arena_node_t){.seq = ++a->seq, .next = a->nodes};
    if (a->nodes) a->nodes->newer = n;
    a->nodes = n;
    a->n_nodes++;
    return n;
}

/* Unlinks n and frees its piece, which may empty its block. */
static void node_remove(tarn_arena_t *a, tarn__arena_node_t *n) {
    if (n->newer)
        n->newer->next = n->next;
    else
        a->nodes = n->next;
    if (n->next) n->next->newer = n->newer;
    a->n_nodes--;
    free_locked(a, n);
}

/* Pops and runs the nodes newer than seq, newest first. The node is gone
 * before its callback runs, so a callback may allocate or register again. */
static void nodes_run_after(tarn_arena_t *a, uint64_t seq) {
    while (a->nodes && a->nodes->seq > seq) {
        tarn__arena_node_t n = *a->nodes;
        node_remove(a, a->nodes);
        if (n.child) {
            n.child->in_parent = NULL;
            tarn_arena_destroy(n.child);
        } else if (n.fn) {
            n.fn(n.arg);
        }
    }
}

int tarn_arena_on_destroy(tarn_arena_t *a, void (*fn)(void *), void *arg) {
    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    lock(a);
    tarn__arena_node_t *n = node_push(a);
    if (n) {
        n->fn = fn;
        n->arg = arg;
    }
    unlock(a);
    return n ? 0 : -1;
}

/* ---- life cycle --------------------------------------------------------- */

static void init_lock(pthread_mutex_t *m) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
}

static bool options_valid(const tarn_arena_options_t *o) {
    return o->block_size <= TARN__ARENA_MAX_BLOCK && o->max_block_size <= TARN__ARENA_MAX_BLOCK &&
           (o->growth == TARN_ARENA_DOUBLING || o->growth == TARN_ARENA_FIXED);
}

/* Where doubling starts in a fresh arena: the block after the holder. */
static size_t growth_start(const tarn_arena_t *a) {
    return a->doubling && a->first_block < a->max_block ? a->first_block * 2 : a->first_block;
}

/* Sizes from validated options: blocks are powers of two, at least a page. */
static void set_sizes(tarn_arena_t *a, const tarn_arena_options_t *o) {
    size_t page = tarn__os_page_size();
    size_t min = page > TARN__ARENA_MIN_BLOCK ? page : TARN__ARENA_MIN_BLOCK;
    size_t want = o->block_size ? o->block_size : DEFAULT_BLOCK;
    size_t max = o->max_block_size ? o->max_block_size : DEFAULT_MAX_BLOCK;
    a->doubling = o->growth == TARN_ARENA_DOUBLING;
    a->first_block = tarn__pow2_ceil(want > min ? want : min);
    max = tarn__pow2_ceil(max);
    a->max_block = a->doubling && max > a->first_block ? max : a->first_block;
    a->next_block = growth_start(a);
    a->large_min = a->doubling ? a->max_block / 4 : a->first_block - BLOCK_HEADER;
}

tarn_arena_t *tarn_arena_create_ex(const tarn_arena_options_t *opt) {
    tarn_arena_options_t o = opt ? *opt : (tarn_arena_options_t){0};
    if (!options_valid(&o)) {
        errno = EINVAL;
        return NULL;
    }
    tarn_arena_t proto = {
        .id = atomic_fetch_add_explicit(&arenas_created, 1, memory_order_relaxed) + 1,
        .keep = o.keep_blocks ? o.keep_blocks : 1,
        .locked = o.thread_safe,
    };
    set_sizes(&proto, &o);
    tarn__arena_block_t *b = tarn__block_get(proto.first_block, &proto.os_maps);
    if (!b) return NULL;
    tarn_arena_t *a = (tarn_arena_t *)((char *)b + BLOCK_HEADER);
    *a = proto;
    if (a->locked) init_lock(&a->lock);
    b->own.arena = a;
    b->start = (char *)a + tarn__align_up(sizeof *a, TARN__ARENA_ALIGN);
    b->end = (char *)b + a->first_block;
    block_clear(b);
    a->holder = b;
    list_append(a, b);
    return a;
}

tarn_arena_t *tarn_arena_create(size_t block_size) {
    tarn_arena_options_t o = {.block_size = block_size};
    return tarn_arena_create_ex(&o);
}

tarn_arena_t *tarn_arena_create_child(tarn_arena_t *parent, size_t block_size) {
    tarn_arena_options_t o = {
        .block_size = block_size ? block_size : parent->first_block,
        .max_block_size = parent->max_block,
        .growth = parent->doubling ? TARN_ARENA_DOUBLING : TARN_ARENA_FIXED,
        .keep_blocks = parent->keep,
        .thread_safe = parent->locked,
    };
    tarn_arena_t *c = tarn_arena_create_ex(&o);
    if (!c) return NULL;
    lock(parent);
    tarn__arena_node_t *n = node_push(parent);
    if (n) {
        n->child = c;
        c->parent = parent;
        c->in_parent = n;
    }
    unlock(parent);
    if (!n) {
        tarn_arena_destroy(c);
        errno = ENOMEM;
    }
    return n ? c : NULL;
}

/* Moves the blocks of chain other than the holder onto *to (linked by next). */
static void gather(tarn__arena_block_t *chain, const tarn__arena_block_t *holder,
                   tarn__arena_block_t **to) {
    while (chain) {
        tarn__arena_block_t *b = chain;
        chain = b->next;
        if (b == holder) continue;
        b->next = *to;
        *to = b;
    }
}

/* The link that points at the smallest block of a non-empty list. */
static tarn__arena_block_t **smallest(tarn__arena_block_t **link) {
    tarn__arena_block_t **min = link;
    for (; *link; link = &(*link)->next)
        if ((*link)->size < (*min)->size) min = link;
    return min;
}

/* Empties every block; keeps the holder and the keep - 1 largest others as
 * spares, gives the rest back. */
static void blocks_reset(tarn_arena_t *a) {
    tarn__arena_block_t *others = NULL, *kept = NULL, *release = NULL;
    gather(a->spare, a->holder, &others);
    gather(a->head, a->holder, &others);
    size_t room = a->keep - 1;
    while (others) {
        tarn__arena_block_t *b = others;
        others = b->next;
        if (room) {
            room--;
            b->next = kept;
            kept = b;
            continue;
        }
        tarn__arena_block_t **min = kept ? smallest(&kept) : NULL;
        if (min && (*min)->size < b->size) {
            tarn__arena_block_t *m = *min;
            b->next = m->next;
            *min = b;
            b = m;
        }
        b->next = release;
        release = b;
    }
    a->os_releases += tarn__block_put_chain(release);
    a->head = a->tail = a->spare = NULL;
    set_current(a, NULL);
    while (kept) {
        tarn__arena_block_t *b = kept;
        kept = b->next;
        spare_push(a, b);
    }
    block_clear(a->holder);
    list_append(a, a->holder);
}

/* Called before reset empties the blocks. The next cycle starts growing at
 * the one block that would have held everything this cycle bumped beyond
 * the holder, within [growth_start, max_block]: equal cycles settle on one
 * block size, which the spares or the shared cache then serve without a new
 * mapping (nginx and APR pools stay flat the same way), a bigger cycle
 * starts the next one bigger, and a smaller one lets it shrink back.
 * Doubling as such would go on across resets while reset gives the blocks
 * away, so every cycle would map a block twice the last (figures in
 * docs/arena.md, "Growth after a reset"). */
static void regrow(tarn_arena_t *a) {
    if (!a->doubling) return;
    size_t used = 0;
    for (const tarn__arena_block_t *b = a->head; b; b = b->next)
        if (b != a->holder) used += (size_t)(b->last - b->start);
    size_t size = tarn__pow2_ceil(used + BLOCK_HEADER), least = growth_start(a);
    a->next_block = size < least ? least : size > a->max_block ? a->max_block : size;
}

void tarn_arena_reset(tarn_arena_t *a) {
    lock(a);
    nodes_run_after(a, 0);
    large_release_after(a, 0);
    regrow(a);
    blocks_reset(a);
    a->reset_seq = a->seq;
    unlock(a);
}

/* Unlinks a child's node from its parent's stack, under the parent's lock. */
static void detach(tarn_arena_t *c) {
    tarn_arena_t *p = c->parent;
    lock(p);
    node_remove(p, c->in_parent);
    c->in_parent = NULL;
    unlock(p);
}

void tarn_arena_destroy(tarn_arena_t *a) {
    if (!a) return;
    if (a->in_parent) detach(a);
    lock(a);
    nodes_run_after(a, 0);
    large_release_after(a, 0);
    tarn__arena_block_t *chain = a->spare;
    if (a->tail) {
        a->tail->next = a->spare;
        chain = a->head;
    }
    bool locked = a->locked;
    unlock(a);
    if (locked) pthread_mutex_destroy(&a->lock);
    tarn__block_put_chain(chain);
}

/* ---- mark and rewind ---------------------------------------------------- */

tarn_arena_mark_t tarn_arena_mark(tarn_arena_t *a) {
    lock(a);
    tarn__arena_block_t *b = a->tail;
    if (b) set_current(a, b);
    tarn_arena_mark_t m = {a->id, a->seq, b ? b->seq : 0, b ? b->last : NULL, b ? b->count : 0};
    unlock(a);
    return m;
}

/* The block the mark was taken in keeps its number unless it was emptied
 * since; only then may its bump pointer and count go back. The count
 * restored is never below the truth: pieces from before the mark can only
 * have been freed since. */
void tarn_arena_rewind(tarn_arena_t *a, tarn_arena_mark_t m) {
    lock(a);
    if (m.arena_ != a->id || m.seq_ < a->reset_seq) {
        tarn__report("rewind of arena %p to a mark %s", (void *)a,
                     m.arena_ != a->id ? "it never made" : "taken before its last reset");
        unlock(a);
        return;
    }
    nodes_run_after(a, m.seq_);
    large_release_after(a, m.seq_);
    while (a->tail && a->tail->seq > m.seq_) {
        tarn__arena_block_t *b = a->tail;
        list_unlink(a, b);
        spare_push(a, b);
    }
    tarn__arena_block_t *t = a->tail;
    if (t && t->seq == m.block_seq_) {
        t->last = m.last_;
        t->count = m.count_;
        t->failed = 0;
    }
    if (!a->current) set_current(a, t);
    unlock(a);
}

/* ---- stats -------------------------------------------------------------- */

void tarn_arena_stats(const tarn_arena_t *a, tarn_pool_stats_t *out) {
    lock(a);
    tarn_pool_stats_t s = {.os_maps = a->os_maps, .os_releases = a->os_releases};
    for (const tarn__arena_block_t *b = a->head; b; b = b->next) {
        s.in_use += b->count;
        s.bytes_in_use += (size_t)(b->last - b->start);
        s.bytes_mapped += b->size;
        s.blocks++;
        s.empty_blocks += b->count == 0;
    }
    for (const tarn__arena_block_t *b = a->spare; b; b = b->next) {
        s.bytes_mapped += b->size;
        s.blocks++;
        s.empty_blocks++;
    }
    for (const tarn__arena_large_t *l = a->large; l; l = l->next)
        s.bytes_mapped += l->map_size;
    s.in_use += a->n_large - a->n_nodes;
    s.bytes_in_use += a->large_bytes;
    unlock(a);
    *out = s;
}
