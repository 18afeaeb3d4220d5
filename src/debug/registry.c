/* The registry: every block the layer handed out and has not given back,
 * found by its user address without touching the address itself (a freed,
 * foreign, stack or unmapped pointer is looked up safely).
 *
 * STRIPES independent tables, each with its own lock, chosen by a hash of
 * the address, so threads freeing different blocks rarely meet (figures in
 * docs/debug.md). Each table is open-addressed with linear probing over
 * memory from the OS and doubles at 3/4 full. A removal shifts the entries
 * after it back (Knuth's algorithm R, TAOCP 6.4) instead of leaving a
 * tombstone: with blocks freed as fast as they are made, tombstones would
 * fill the table and make every probe long. */
#include <string.h>

#include "debug/internal.h"

#define STRIPES 64
#define FIRST_SLOTS 1024
#define EMPTY ((uintptr_t)0)

struct tarn__stripe {
    pthread_mutex_t lock;
    uintptr_t *slots;
    size_t cap;  /* slots, a power of two; 0 before the first add */
    size_t live; /* entries */
} __attribute__((aligned(64)));

static tarn__stripe_t stripes[STRIPES] = {
    [0 ... STRIPES - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};

static uint64_t mix(uintptr_t a) {
    uint64_t h = (uint64_t)a >> 4;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

tarn__stripe_t *tarn__registry_lock(const void *user) {
    tarn__stripe_t *s = &stripes[mix((uintptr_t)user) % STRIPES];
    pthread_mutex_lock(&s->lock);
    return s;
}

void tarn__registry_unlock(tarn__stripe_t *s) { pthread_mutex_unlock(&s->lock); }

/* Where the probe for user starts in a table of cap slots. */
static size_t home(uintptr_t user, size_t cap) { return (mix(user) / STRIPES) & (cap - 1); }

/* The slot holding user, or (when absent) NULL. */
static uintptr_t *slot_of(tarn__stripe_t *s, uintptr_t user) {
    if (!s->cap) return NULL;
    size_t mask = s->cap - 1;
    for (size_t i = home(user, s->cap);; i = (i + 1) & mask) {
        if (s->slots[i] == user) return &s->slots[i];
        if (s->slots[i] == EMPTY) return NULL;
    }
}

tarn__dblock_t *tarn__registry_find_locked(tarn__stripe_t *s, const void *user) {
    return slot_of(s, (uintptr_t)user) ? tarn__dblock_of(user) : NULL;
}

/* Puts user in the first free slot of a table known to have one. */
static void put(uintptr_t *slots, size_t cap, uintptr_t user) {
    size_t mask = cap - 1, i = home(user, cap);
    while (slots[i] != EMPTY) i = (i + 1) & mask;
    slots[i] = user;
}

/* A table of cap slots holding the entries; 0, or -1 with no memory. */
static int rebuild(tarn__stripe_t *s, size_t cap) {
    uintptr_t *fresh = tarn__os_map(cap * sizeof *fresh);
    if (!fresh) return -1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i] != EMPTY) put(fresh, cap, s->slots[i]);
    if (s->slots) tarn__os_unmap(s->slots, s->cap * sizeof *s->slots);
    s->slots = fresh;
    s->cap = cap;
    return 0;
}

int tarn__registry_add_locked(tarn__stripe_t *s, const void *user) {
    if ((s->live + 1) * 4 > s->cap * 3 && rebuild(s, s->cap ? s->cap * 2 : FIRST_SLOTS) != 0)
        return -1;
    put(s->slots, s->cap, (uintptr_t)user);
    s->live++;
    return 0;
}

/* Empties slot i, moving back each later entry of its run whose probe
 * starts at or before the hole, so every entry stays reachable from its
 * home slot. */
void tarn__registry_remove_locked(tarn__stripe_t *s, const void *user) {
    uintptr_t *slot = slot_of(s, (uintptr_t)user);
    tarn_assert(slot != NULL, "only registered blocks are removed");
    size_t mask = s->cap - 1, hole = (size_t)(slot - s->slots);
    for (size_t j = (hole + 1) & mask; s->slots[j] != EMPTY; j = (j + 1) & mask) {
        size_t h = home(s->slots[j], s->cap);
        /* the entry may move to the hole unless its home lies in (hole, j] */
        bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (stays) continue;
        s->slots[hole] = s->slots[j];
        hole = j;
    }
    s->slots[hole] = EMPTY;
    s->live--;
}

void tarn__registry_lock_all(void) {
    for (unsigned i = 0; i < STRIPES; i++)
        pthread_mutex_lock(&stripes[i].lock);
}

void tarn__registry_unlock_all(void) {
    for (unsigned i = STRIPES; i-- > 0;)
        pthread_mutex_unlock(&stripes[i].lock);
}

void tarn__registry_each_locked(void (*fn)(tarn__dblock_t *b, void *arg), void *arg) {
    for (unsigned i = 0; i < STRIPES; i++)
        for (size_t j = 0; j < stripes[i].cap; j++)
            if (stripes[i].slots[j] != EMPTY) fn(tarn__dblock_of((void *)stripes[i].slots[j]), arg);
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
