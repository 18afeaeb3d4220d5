/* The registry: every block the layer handed out and has not given back,
 * found by its user address without touching the address itself (a freed,
 * foreign, stack or unmapped pointer is looked up safely).
 *
 * A bitmap over the address space, one bit per 16 bytes (user addresses
 * are 16-aligned): the bit of a registered block's user address is set.
 * The map is split into 4 MiB chunks, each a 32 KiB bitmap from the OS made
 * when a block is first registered in it, found through one table indexed
 * by address >> 22 (256 MiB of address space for the 47-bit user space,
 * committed only where chunks exist). A bitmap keeps neighbours together:
 * blocks allocated one after the other share cache lines of it, where a
 * hash table (the first version) took a cache and TLB miss on every add and
 * lookup (docs/debug.md).
 *
 * Locks: STRIPES mutexes, chosen by the 4 KiB page of the address, so the
 * 64-bit word holding a bit (1 KiB of addresses) is always under one lock.
 * A block's state changes under its stripe's lock. */
#include <stdatomic.h>
#include <string.h>

#include "debug/internal.h"

#define STRIPES 64
#define CHUNK_SHIFT 22
#define CHUNK_BITS ((size_t)1 << (CHUNK_SHIFT - 4))
#define CHUNK_WORDS (CHUNK_BITS / 64)
#define CHUNKS ((size_t)1 << (47 - CHUNK_SHIFT))
#define MAX_LISTED ((size_t)1 << 20) /* chunks with a bitmap: 4 TiB of heap */

struct tarn__stripe {
    pthread_mutex_t lock;
} __attribute__((aligned(64)));

static tarn__stripe_t stripes[STRIPES] = {
    [0 ... STRIPES - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};

/* table[address >> CHUNK_SHIFT]: that chunk's bitmap, or NULL; listed[0,
 * count): the chunks that have one, for walks. */
static _Atomic(uint64_t *) *_Atomic table;
static _Atomic(uintptr_t) *_Atomic listed;
static _Atomic size_t count;

/* How many tarn__registry_lock_all this thread is inside. A thread holding
 * every stripe (the checks at exit) still frees: the leak scan's dlsym
 * frees an old error string, for one. Its single-stripe locks are then
 * no-ops, since it holds them already and no other thread can run in the
 * registry. */
static __thread unsigned held_all __attribute__((tls_model("initial-exec")));

static uint64_t mix(uintptr_t a) {
    uint64_t h = (uint64_t)a >> 12;
    h *= 0xff51afd7ed558ccdull;
    return h >> 40;
}

tarn__stripe_t *tarn__registry_lock(const void *user) {
    tarn__stripe_t *s = &stripes[mix((uintptr_t)user) % STRIPES];
    if (!held_all) pthread_mutex_lock(&s->lock);
    return s;
}

void tarn__registry_unlock(tarn__stripe_t *s) {
    if (!held_all) pthread_mutex_unlock(&s->lock);
}

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;

/* Makes chunk i's bitmap and lists it (once per 4 MiB of address space, so
 * under one lock); NULL without memory. */
static tarn__cold uint64_t *chunk_make(size_t i) {
    pthread_mutex_lock(&list_lock);
    _Atomic(uint64_t *) *t = atomic_load(&table);
    if (!t && (t = tarn__os_map(CHUNKS * sizeof *t))) atomic_store(&table, t);
    _Atomic(uintptr_t) *l = atomic_load(&listed);
    if (!l && (l = tarn__os_map(MAX_LISTED * sizeof *l))) atomic_store(&listed, l);
    uint64_t *bits = t ? atomic_load(&t[i]) : NULL;
    size_t n = atomic_load(&count);
    if (t && l && !bits && n < MAX_LISTED && (bits = tarn__os_map(CHUNK_WORDS * sizeof *bits))) {
        atomic_store(&l[n], i);
        atomic_store(&count, n + 1);
        atomic_store_explicit(&t[i], bits, memory_order_release);
    }
    pthread_mutex_unlock(&list_lock);
    return bits;
}

/* The bitmap of the chunk holding a, or NULL (make: made if missing). */
static uint64_t *chunk(uintptr_t a, bool make) {
    size_t i = a >> CHUNK_SHIFT;
    if (i >= CHUNKS) return NULL;
    _Atomic(uint64_t *) *t = atomic_load_explicit(&table, memory_order_acquire);
    uint64_t *bits = t ? atomic_load_explicit(&t[i], memory_order_acquire) : NULL;
    return bits || !make ? bits : chunk_make(i);
}

static size_t bit_of(uintptr_t a) { return (a >> 4) & (CHUNK_BITS - 1); }

tarn__dblock_t *tarn__registry_find_locked(tarn__stripe_t *s, const void *user) {
    (void)s;
    uintptr_t a = (uintptr_t)user;
    uint64_t *bits = a & 15 ? NULL : chunk(a, false);
    if (!bits) return NULL;
    size_t b = bit_of(a);
    return bits[b / 64] >> (b % 64) & 1 ? tarn__dblock_of(user) : NULL;
}

int tarn__registry_add_locked(tarn__stripe_t *s, const void *user) {
    (void)s;
    uintptr_t a = (uintptr_t)user;
    tarn_assert(!(a & 15), "user addresses are 16-aligned");
    uint64_t *bits = chunk(a, true);
    if (!bits) return -1;
    size_t b = bit_of(a);
    bits[b / 64] |= (uint64_t)1 << (b % 64);
    return 0;
}

void tarn__registry_remove_locked(tarn__stripe_t *s, const void *user) {
    (void)s;
    uintptr_t a = (uintptr_t)user;
    uint64_t *bits = chunk(a, false);
    tarn_assert(bits != NULL, "only registered blocks are removed");
    size_t b = bit_of(a);
    bits[b / 64] &= ~((uint64_t)1 << (b % 64));
}

void tarn__registry_lock_all(void) {
    if (held_all++) return;
    for (unsigned i = 0; i < STRIPES; i++)
        pthread_mutex_lock(&stripes[i].lock);
}

/* Around fork: every stripe, then the chunk list they nest over. */
void tarn__registry_fork_lock(bool lock) {
    if (lock) {
        tarn__registry_lock_all();
        pthread_mutex_lock(&list_lock);
    } else {
        pthread_mutex_unlock(&list_lock);
        tarn__registry_unlock_all();
    }
}

void tarn__registry_unlock_all(void) {
    tarn_assert(held_all > 0, "unlock_all pairs with lock_all");
    if (--held_all) return;
    for (unsigned i = STRIPES; i-- > 0;)
        pthread_mutex_unlock(&stripes[i].lock);
}

void tarn__registry_each_locked(void (*fn)(tarn__dblock_t *b, void *arg), void *arg) {
    _Atomic(uint64_t *) *t = atomic_load(&table);
    _Atomic(uintptr_t) *l = atomic_load(&listed);
    size_t n = l ? atomic_load(&count) : 0;
    for (size_t k = 0; k < n; k++) {
        uintptr_t i = atomic_load(&l[k]);
        uint64_t *bits = atomic_load(&t[i]);
        for (size_t w = 0; w < CHUNK_WORDS; w++)
            for (uint64_t word = bits[w]; word; word &= word - 1) {
                uintptr_t user = (i << CHUNK_SHIFT) + (w * 64 + (size_t)__builtin_ctzll(word)) * 16;
                fn(tarn__dblock_of((void *)user), arg);
            }
    }
}

typedef struct containing {
    uintptr_t p;
    tarn__dblock_t *found;
} containing_t;

static void contains(tarn__dblock_t *b, void *arg) {
    containing_t *c = arg;
    uintptr_t user = (uintptr_t)tarn__dblock_user(b);
    if (c->p >= user - TARN__DBG_LEAD && c->p < user + b->size + tarn__dblock_rear(b->size))
        c->found = b;
}

tarn__dblock_t *tarn__registry_containing_locked(const void *p) {
    containing_t c = {(uintptr_t)p, NULL};
    tarn__registry_each_locked(contains, &c);
    return c.found;
}
