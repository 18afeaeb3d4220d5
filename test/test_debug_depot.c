/* The stack depot (src/debug/depot.c): one id per distinct stack, from any
 * thread, and the frames back from the id. */
#include <pthread.h>

#include "common.h"
#include "debug/depot.h"

static uint32_t intern_n(const uintptr_t *pcs, unsigned n) { return tarn__depot_intern(pcs, n); }

Test(depot, same_stack_same_id) {
    uintptr_t a[] = {0x401000, 0x402000, 0x403000};
    uintptr_t b[] = {0x401000, 0x402000, 0x403000};
    uint32_t id = intern_n(a, 3);
    cr_assert_neq(id, 0);
    cr_assert_eq(intern_n(b, 3), id, "an equal copy of the frames gets the same id");
    const uintptr_t *got;
    cr_assert_eq(tarn__depot_get(id, &got), 3);
    cr_assert_eq(got[0], 0x401000);
    cr_assert_eq(got[2], 0x403000);
}

Test(depot, distinct_stacks) {
    uintptr_t a[] = {0x501000, 0x502000, 0x503000};
    uintptr_t longer[] = {0x501000, 0x502000, 0x503000, 0x504000};
    uintptr_t other[] = {0x501000, 0x502000, 0x503001};
    uint32_t ia = intern_n(a, 3), il = intern_n(longer, 4), io = intern_n(other, 3);
    cr_assert(ia && il && io);
    cr_assert(ia != il && ia != io && il != io);
    cr_assert_eq(intern_n(a, 2), intern_n(longer, 2), "a prefix is a stack of its own");
    cr_assert_neq(intern_n(a, 2), ia);
}

Test(depot, no_stack) {
    uintptr_t a[] = {1};
    cr_assert_eq(intern_n(a, 0), 0);
    const uintptr_t *got;
    cr_assert_eq(tarn__depot_get(0, &got), 0);
    cr_assert_eq(tarn__depot_get(0xfffffff0u, &got), 0, "an id never given has no frames");
}

static __attribute__((noinline)) uint32_t capture_here(void) {
    uintptr_t pcs[TARN__DEPOT_MAX_FRAMES];
    unsigned n = tarn__stack_unwind(pcs, TARN__DEPOT_MAX_FRAMES);
    cr_assert_geq(n, 3, "the test, Criterion and the C library are below");
    return tarn__depot_intern(pcs, n);
}

/* Captures from one call site repeat an id; another call site does not. */
Test(depot, captured_stacks) {
    uint32_t first = 0;
    for (int i = 0; i < 3; i++) {
        uint32_t id = capture_here();
        if (!first) first = id;
        cr_assert_eq(id, first, "the same call site, the same stack");
    }
    uint32_t other = capture_here();
    cr_assert_neq(other, first, "another call site, another return address");
    const uintptr_t *a, *b;
    unsigned na = tarn__depot_get(first, &a), nb = tarn__depot_get(other, &b);
    cr_assert_eq(na, nb);
    cr_assert_eq(a[0], b[0], "both begin in the same unwinding code");
    unsigned differ = 0;
    for (unsigned i = 0; i < na; i++)
        differ += a[i] != b[i];
    cr_assert_eq(differ, 1, "one frame differs: the return into the test from capture_here");
}

#define MANY 200000u

Test(depot, many_stacks) {
    uint32_t before = tarn__depot_count();
    static uint32_t ids[MANY];
    for (unsigned i = 0; i < MANY; i++) {
        uintptr_t pcs[] = {0x10000000u + i, 0x600000, i % 7};
        ids[i] = intern_n(pcs, 1 + i % 3);
        cr_assert_neq(ids[i], 0, "stack %u", i);
    }
    cr_assert_eq(tarn__depot_count() - before, MANY);
    for (unsigned i = 0; i < MANY; i++) {
        const uintptr_t *got;
        cr_assert_eq(tarn__depot_get(ids[i], &got), 1 + i % 3);
        cr_assert_eq(got[0], 0x10000000u + i);
        uintptr_t pcs[] = {0x10000000u + i, 0x600000, i % 7};
        cr_assert_eq(intern_n(pcs, 1 + i % 3), ids[i], "stack %u interned again", i);
    }
}

#define THREADS 4
#define SHARED 5000u

typedef struct job {
    unsigned start;
    uint32_t ids[SHARED];
} job_t;

/* Every thread interns the same stacks, each from its own starting point,
 * so the threads race to insert each one. */
static void *intern_all(void *arg) {
    job_t *job = arg;
    for (unsigned k = 0; k < SHARED; k++) {
        unsigned i = (job->start + k) % SHARED;
        uintptr_t pcs[] = {0x20000000u + i, 0x700000 + i * 16, 0x800000};
        job->ids[i] = tarn__depot_intern(pcs, 3);
    }
    return NULL;
}

Test(depot, concurrent_inserts_agree) {
    static job_t jobs[THREADS];
    pthread_t t[THREADS];
    uint32_t before = tarn__depot_count();
    for (unsigned i = 0; i < THREADS; i++) {
        jobs[i].start = i * (SHARED / THREADS);
        cr_assert_eq(pthread_create(&t[i], NULL, intern_all, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(tarn__depot_count() - before, SHARED, "each stack stored once");
    for (unsigned i = 0; i < SHARED; i++) {
        cr_assert_neq(jobs[0].ids[i], 0);
        for (unsigned j = 1; j < THREADS; j++)
            cr_assert_eq(jobs[j].ids[i], jobs[0].ids[i], "stack %u: threads 0 and %u", i, j);
    }
}
