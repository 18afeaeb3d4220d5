/* Fixed pool against glibc malloc/free, in one process (issue 2).
 *
 * loop:  seed 002's own test — for t in 20000..200000, t times alloc then
 *        free at once (a hot LIFO: measures the fast paths).
 * batch: alloc 1M objects, free them in a random order, repeat (measures
 *        what scattered free lists and page faults cost).
 * Each cell is the median of several runs, tarn and glibc interleaved so
 * both see the same machine noise; ratio = glibc time / tarn time. */
#include <malloc.h>
#include <stdint.h>

#include "bench.h"
#include "tarn.h"

static const int seed_counts[] = {20000,  40000,  80000,  100000, 120000,
                                  140000, 160000, 180000, 200000};
enum { NSEED = sizeof seed_counts / sizeof seed_counts[0] };

/* The same two workloads, written out for each allocator so the compiler
 * sees each call exactly as a user's code would. */
#define WORKLOADS(name, ALLOC, FREE)                                                               \
    static double loop_##name(tarn_fixed_t *pool, size_t size) {                                   \
        long pairs = 0;                                                                            \
        double t0 = bench_now_ns();                                                                \
        for (int i = 0; i < NSEED; i++) {                                                          \
            for (int j = 0; j < seed_counts[i]; j++) {                                             \
                void *p = ALLOC;                                                                   \
                bench_use(p);                                                                      \
                FREE;                                                                              \
            }                                                                                      \
            pairs += seed_counts[i];                                                               \
        }                                                                                          \
        (void)pool, (void)size;                                                                    \
        return (bench_now_ns() - t0) / (double)pairs;                                              \
    }                                                                                              \
    static double batch_##name(tarn_fixed_t *pool, size_t size, void **slots,                      \
                               const uint32_t *perm, size_t n, int rounds) {                       \
        double t0 = bench_now_ns();                                                                \
        for (int r = 0; r < rounds; r++) {                                                         \
            for (size_t i = 0; i < n; i++) {                                                       \
                void *p = ALLOC;                                                                   \
                bench_use(p);                                                                      \
                slots[i] = p;                                                                      \
            }                                                                                      \
            for (size_t i = 0; i < n; i++) {                                                       \
                void *p = slots[perm[i]];                                                          \
                FREE;                                                                              \
            }                                                                                      \
        }                                                                                          \
        (void)pool, (void)size;                                                                    \
        return (bench_now_ns() - t0) / (double)(n * (size_t)rounds);                               \
    }

WORKLOADS(tarn, tarn_fixed_alloc(pool), tarn_fixed_free(pool, p))
WORKLOADS(glibc, malloc(size), free(p))

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static uint32_t *make_perm(size_t n) {
    uint32_t *perm = malloc(n * sizeof *perm);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng_next() % (i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return perm;
}

static void print_row(const char *name, size_t size, double tarn_ns, double glibc_ns,
                      double target) {
    double ratio = glibc_ns / tarn_ns;
    printf("%-6s %5zu  %9.2f  %9.2f  %6.2fx  %5.1fx  %s\n", name, size, tarn_ns, glibc_ns, ratio,
           target, ratio >= target ? "ok" : "BELOW TARGET");
}

int main(int argc, char **argv) {
    int full = bench_full(argc, argv);
    int loop_runs = full ? 31 : 11, batch_runs = full ? 9 : 3, rounds = full ? 3 : 2;
    size_t n = (size_t)1 << 20;
    static const size_t sizes[] = {8, 64, 256};
    void **slots = malloc(n * sizeof *slots);
    uint32_t *perm = make_perm(n);

    printf("\n== fixed pool vs glibc malloc/free (ns per alloc+free pair, median of runs)\n");
    bench_machine_line();
    printf("%-6s %5s  %9s  %9s  %7s  %6s\n", "bench", "size", "tarn", "glibc", "ratio", "target");
    for (int k = 0; k < 3; k++) {
        tarn_fixed_t *pool = tarn_fixed_create(sizes[k], 4096, 4096);
        size_t sz = sizes[k];
        double tv[31], gv[31];
        for (int r = 0; r < loop_runs; r++) {
            tv[r] = loop_tarn(pool, sz);
            gv[r] = loop_glibc(pool, sz);
        }
        print_row("loop", sizes[k], bench_median(tv, loop_runs), bench_median(gv, loop_runs), 3.0);
        for (int r = 0; r < batch_runs; r++) {
            tv[r] = batch_tarn(pool, sz, slots, perm, n, rounds);
            gv[r] = batch_glibc(pool, sz, slots, perm, n, rounds);
        }
        print_row("batch", sizes[k], bench_median(tv, batch_runs), bench_median(gv, batch_runs),
                  1.5);
        tarn_fixed_destroy(pool);
    }
    free(slots);
    free(perm);
    return 0;
}
