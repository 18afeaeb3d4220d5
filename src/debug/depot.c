/* The stack depot (depot.h): each distinct stack stored once, named by a
 * 32-bit id.
 *
 * One mapping from the OS holds an open-addressed table of SLOTS ids and,
 * after it, the records, appended by an atomic bump. An id is a record's
 * offset in 8-byte words plus one, so 0 means "no stack". Insert: hash the
 * frames, probe from the hash; an empty slot gets a freshly written record
 * by compare-and-swap (release), so a reader that sees the id (acquire)
 * sees the record whole. Two threads inserting the same new stack at once
 * may both write a record; one wins the slot, the other's record is never
 * named (a few bytes lost, once). The table stops taking new stacks at
 * three quarters full, where linear probing is still short (Knuth).
 * Capture is libunwind's unw_backtrace, which reads the unwind tables
 * (.eh_frame) and works in code built without frame pointers: Debian's
 * libraries are (figures in docs/debug.md). */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdatomic.h>
#include <string.h>

#include "debug/depot.h"
#include "internal.h"

#define SLOTS ((size_t)1 << 20)
#define MAX_STACKS ((uint32_t)(SLOTS / 4 * 3))
#define STORE_BYTES ((size_t)256 << 20)

typedef struct record {
    uint32_t hash;
    uint32_t frames;
    uintptr_t pcs[];
} record_t;

typedef struct depot {
    _Atomic uint32_t slots[SLOTS];
    _Atomic size_t store_used; /* bytes of store[] handed out */
    _Atomic uint32_t stacks;
    _Alignas(8) unsigned char store[];
} depot_t;

static _Atomic(depot_t *) the_depot;

unsigned tarn__stack_unwind(uintptr_t *pcs, unsigned max) {
    int n = unw_backtrace((void **)pcs, (int)max);
    return n > 0 ? (unsigned)n : 0;
}

/* The depot, mapped by the first thread that needs it; a thread that loses
 * the race gives its own mapping back. */
static depot_t *depot(void) {
    depot_t *d = atomic_load_explicit(&the_depot, memory_order_acquire);
    if (tarn__likely(d != NULL)) return d;
    depot_t *mine = tarn__os_map(sizeof(depot_t) + STORE_BYTES);
    if (!mine) return NULL;
    if (atomic_compare_exchange_strong(&the_depot, &d, mine)) return mine;
    tarn__os_unmap(mine, sizeof(depot_t) + STORE_BYTES);
    return d;
}

static uint32_t hash_of(const uintptr_t *pcs, unsigned n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (unsigned i = 0; i < n; i++) {
        h ^= pcs[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    return (uint32_t)h;
}

static record_t *record_of(depot_t *d, uint32_t id) {
    return (record_t *)(d->store + ((size_t)id - 1) * 8);
}

static bool same(const record_t *r, uint32_t hash, const uintptr_t *pcs, unsigned n) {
    return r->hash == hash && r->frames == n && memcmp(r->pcs, pcs, n * sizeof *pcs) == 0;
}

/* A new record holding pcs; its id, or 0 when the store is full. */
static uint32_t record_new(depot_t *d, uint32_t hash, const uintptr_t *pcs, unsigned n) {
    size_t bytes = sizeof(record_t) + n * sizeof *pcs;
    size_t at = atomic_fetch_add_explicit(&d->store_used, bytes, memory_order_relaxed);
    if (at + bytes > STORE_BYTES) return 0;
    record_t *r = (record_t *)(d->store + at);
    r->hash = hash;
    r->frames = n;
    memcpy(r->pcs, pcs, n * sizeof *pcs);
    return (uint32_t)(at / 8 + 1);
}

uint32_t tarn__depot_intern(const uintptr_t *pcs, unsigned n) {
    tarn_assert(n <= TARN__DEPOT_MAX_FRAMES, "a stack is at most TARN__DEPOT_MAX_FRAMES deep");
    depot_t *d = n ? depot() : NULL;
    if (!d) return 0;
    uint32_t hash = hash_of(pcs, n), mine = 0;
    for (size_t i = hash & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
        uint32_t id = atomic_load_explicit(&d->slots[i], memory_order_acquire);
        if (id == 0) {
            if (atomic_load_explicit(&d->stacks, memory_order_relaxed) >= MAX_STACKS) return 0;
            if (!mine && !(mine = record_new(d, hash, pcs, n))) return 0;
            if (atomic_compare_exchange_strong_explicit(
                    &d->slots[i], &id, mine, memory_order_release, memory_order_acquire)) {
                atomic_fetch_add_explicit(&d->stacks, 1, memory_order_relaxed);
                return mine;
            }
        }
        if (same(record_of(d, id), hash, pcs, n)) return id;
    }
}

unsigned tarn__depot_get(uint32_t id, const uintptr_t **pcs) {
    depot_t *d = atomic_load_explicit(&the_depot, memory_order_acquire);
    if (!d || id == 0 || ((size_t)id - 1) * 8 >= atomic_load(&d->store_used)) return 0;
    record_t *r = record_of(d, id);
    *pcs = r->pcs;
    return r->frames;
}

uint32_t tarn__depot_count(void) {
    depot_t *d = atomic_load_explicit(&the_depot, memory_order_acquire);
    return d ? atomic_load_explicit(&d->stacks, memory_order_relaxed) : 0;
}
