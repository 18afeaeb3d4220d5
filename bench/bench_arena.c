/* Region pools on a request-shaped workload, the cost of one bump, and
 * pools reset between requests.
 *
 * A request: create a pool, 1,000 allocations of 8-512 bytes plus four of
 * 64 KiB (each touched once per page), 5 cleanups, destroy. The same request
 * runs on glibc malloc/free, glibc obstack, APR pools, talloc and tarn,
 * interleaved round by round so noise hits them alike; medians are printed
 * with each one's speed relative to glibc. The last table keeps 100 pools
 * open, as a server keeps one per connection, and resets them between
 * requests of 11 KiB. */
#include <apr_pools.h>
#include <obstack.h>
#include <stdint.h>
#include <talloc.h>

#include "bench.h"
#include "tarn.h"

#define obstack_chunk_alloc malloc
#define obstack_chunk_free free

enum { PIECES = 1004, CLEANUPS = 5, BIG = 64 << 10 };

static size_t sizes[PIECES];
static void *ptrs[PIECES];
static unsigned long cleanups_run;

static void make_sizes(void) {
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < PIECES; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        sizes[i] = 8 + x % 505;
    }
    for (int i = 1; i <= 4; i++)
        sizes[i * PIECES / 5] = BIG;
}

/* Writes one byte per page, as a request filling its buffers would. */
static inline void touch(char *p, size_t n) {
    for (size_t off = 0; off < n; off += 4096)
        p[off] = 1;
    bench_use(p);
}

static inline bool cleanup_due(int i) { return i % (PIECES / CLEANUPS) == 7; }

static void on_cleanup(void *arg) {
    (void)arg;
    cleanups_run++;
}

static void request_glibc(void) {
    void (*fns[CLEANUPS])(void *);
    int n = 0;
    for (int i = 0; i < PIECES; i++) {
        ptrs[i] = malloc(sizes[i]);
        touch(ptrs[i], sizes[i]);
        if (cleanup_due(i)) fns[n++] = on_cleanup;
    }
    while (n)
        fns[--n](NULL);
    for (int i = 0; i < PIECES; i++)
        free(ptrs[i]);
}

static void request_obstack(void) {
    struct obstack ob;
    void (*fns[CLEANUPS])(void *);
    int n = 0;
    obstack_init(&ob);
    for (int i = 0; i < PIECES; i++) {
        touch(obstack_alloc(&ob, sizes[i]), sizes[i]);
        if (cleanup_due(i)) fns[n++] = on_cleanup;
    }
    while (n)
        fns[--n](NULL);
    obstack_free(&ob, NULL);
}

static apr_status_t apr_cleanup(void *arg) {
    on_cleanup(arg);
    return APR_SUCCESS;
}

static void request_apr(void) {
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    for (int i = 0; i < PIECES; i++) {
        touch(apr_palloc(p, sizes[i]), sizes[i]);
        if (cleanup_due(i)) apr_pool_cleanup_register(p, NULL, apr_cleanup, apr_pool_cleanup_null);
    }
    apr_pool_destroy(p);
}

static int talloc_cleanup(void *arg) {
    on_cleanup(arg);
    return 0;
}

static void request_talloc(void) {
    void *ctx = talloc_new(NULL);
    for (int i = 0; i < PIECES; i++) {
        touch(talloc_size(ctx, sizes[i]), sizes[i]);
        if (cleanup_due(i)) _talloc_set_destructor(talloc_size(ctx, 1), talloc_cleanup);
    }
    talloc_free(ctx);
}

static void request_tarn(void) {
    tarn_arena_t *a = tarn_arena_create(0);
    for (int i = 0; i < PIECES; i++) {
        touch(tarn_arena_alloc(a, sizes[i]), sizes[i]);
        if (cleanup_due(i)) tarn_arena_on_destroy(a, on_cleanup, NULL);
    }
    tarn_arena_destroy(a);
}

static const struct backend {
    const char *name;
    void (*request)(void);
} backends[] = {
    {"glibc malloc/free", request_glibc}, {"glibc obstack", request_obstack},
    {"APR pools", request_apr},           {"talloc", request_talloc},
    {"tarn arena", request_tarn},
};
enum { BACKENDS = sizeof backends / sizeof *backends, MAX_ROUNDS = 41 };

static double time_requests(void (*request)(void), int n) {
    double t0 = bench_now_ns();
    for (int i = 0; i < n; i++)
        request();
    return (bench_now_ns() - t0) / n;
}

static void bench_requests(int rounds, int per_round) {
    static double ns[BACKENDS][MAX_ROUNDS];
    for (int b = 0; b < BACKENDS; b++)
        time_requests(backends[b].request, per_round / 4);
    for (int r = 0; r < rounds; r++)
        for (int b = 0; b < BACKENDS; b++)
            ns[b][r] = time_requests(backends[b].request, per_round);
    double med[BACKENDS];
    for (int b = 0; b < BACKENDS; b++)
        med[b] = bench_median(ns[b], rounds);
    printf("arena request: 1000 allocations of 8-512 B + 4 of 64 KiB, 5 cleanups "
           "(median of %d runs x %d requests)\n",
           rounds, per_round);
    printf("  %-18s %12s %14s\n", "", "ns/request", "speed vs glibc");
    for (int b = 0; b < BACKENDS; b++)
        printf("  %-18s %12.0f %13.2fx\n", backends[b].name, med[b], med[0] / med[b]);
    printf("  tarn vs APR pools: %.2fx, vs talloc: %.2fx, vs obstack: %.2fx (>1: tarn faster)\n",
           med[2] / med[4], med[3] / med[4], med[1] / med[4]);
}

/* ns per 16-byte bump, reset every 64 Ki allocations (1 MiB). */
static double bump_tarn(int batches) {
    tarn_arena_options_t o = {.block_size = (size_t)2 << 20, .growth = TARN_ARENA_FIXED};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    double t0 = bench_now_ns();
    for (int r = 0; r < batches; r++) {
        for (int i = 0; i < 65536; i++)
            bench_use(tarn_arena_alloc(a, 16));
        tarn_arena_reset(a);
    }
    double ns = (bench_now_ns() - t0) / ((double)batches * 65536);
    tarn_arena_destroy(a);
    return ns;
}

static double bump_apr(int batches) {
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    double t0 = bench_now_ns();
    for (int r = 0; r < batches; r++) {
        for (int i = 0; i < 65536; i++)
            bench_use(apr_palloc(p, 16));
        apr_pool_clear(p);
    }
    double ns = (bench_now_ns() - t0) / ((double)batches * 65536);
    apr_pool_destroy(p);
    return ns;
}

/* One 2 MiB chunk, as tarn gets one 2 MiB block: with obstack's default
 * 4 KiB chunks the cost is malloc/free of chunks, not the bump. */
static double bump_obstack(int batches) {
    struct obstack ob;
    obstack_begin(&ob, (size_t)2 << 20);
    void *base = obstack_alloc(&ob, 1);
    double t0 = bench_now_ns();
    for (int r = 0; r < batches; r++) {
        for (int i = 0; i < 65536; i++)
            bench_use(obstack_alloc(&ob, 16));
        obstack_free(&ob, base);
        base = obstack_alloc(&ob, 1);
    }
    double ns = (bench_now_ns() - t0) / ((double)batches * 65536);
    obstack_free(&ob, NULL);
    return ns;
}

static void bench_bump(int rounds) {
    double t[3][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        t[0][r] = bump_tarn(16);
        t[1][r] = bump_apr(16);
        t[2][r] = bump_obstack(16);
    }
    double tarn = bench_median(t[0], rounds), apr = bench_median(t[1], rounds);
    double ob = bench_median(t[2], rounds);
    printf("arena bump: one 16 B allocation, ns (median of %d runs x 1 Mi)\n", rounds);
    printf("  tarn %.2f   APR %.2f   obstack %.2f   (target: tarn < 2 ns)\n", tarn, apr, ob);
}

/* Connections: CONNS pools kept open; a round gives each an 11 KiB request
 * (touched once per page), then resets every pool, so all requests of a
 * round are in flight together. Before reset restarted growth this mapped
 * and unmapped a block per request (docs/arena.md, "Growth after a reset"). */
enum { CONNS = 100, CONN_ROUNDS = 20, CONN_BYTES = 11 << 10 };

static size_t tarn_maps(tarn_arena_t **a) {
    size_t n = 0;
    for (int i = 0; i < CONNS; i++) {
        tarn_pool_stats_t s;
        tarn_arena_stats(a[i], &s);
        n += s.os_maps;
    }
    return n;
}

static void conns_round_tarn(tarn_arena_t **a) {
    for (int i = 0; i < CONNS; i++)
        touch(tarn_arena_alloc(a[i], CONN_BYTES), CONN_BYTES);
    for (int i = 0; i < CONNS; i++)
        tarn_arena_reset(a[i]);
}

static void conns_round_apr(apr_pool_t **p) {
    for (int i = 0; i < CONNS; i++)
        touch(apr_palloc(p[i], CONN_BYTES), CONN_BYTES);
    for (int i = 0; i < CONNS; i++)
        apr_pool_clear(p[i]);
}

/* ns per request after one warm-up round; *maps: OS maps per request. */
static double conns_tarn(double *maps) {
    tarn_arena_t *a[CONNS];
    for (int i = 0; i < CONNS; i++)
        a[i] = tarn_arena_create(0);
    conns_round_tarn(a);
    size_t before = tarn_maps(a);
    double t0 = bench_now_ns();
    for (int r = 0; r < CONN_ROUNDS; r++)
        conns_round_tarn(a);
    double ns = (bench_now_ns() - t0) / (CONN_ROUNDS * CONNS);
    *maps = (double)(tarn_maps(a) - before) / (CONN_ROUNDS * CONNS);
    for (int i = 0; i < CONNS; i++)
        tarn_arena_destroy(a[i]);
    return ns;
}

static double conns_apr(void) {
    apr_pool_t *p[CONNS];
    for (int i = 0; i < CONNS; i++)
        apr_pool_create(&p[i], NULL);
    conns_round_apr(p);
    double t0 = bench_now_ns();
    for (int r = 0; r < CONN_ROUNDS; r++)
        conns_round_apr(p);
    double ns = (bench_now_ns() - t0) / (CONN_ROUNDS * CONNS);
    for (int i = 0; i < CONNS; i++)
        apr_pool_destroy(p[i]);
    return ns;
}

static void bench_conns(int rounds) {
    double t[2][MAX_ROUNDS], maps[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        t[0][r] = conns_tarn(&maps[r]);
        t[1][r] = conns_apr();
    }
    double tarn = bench_median(t[0], rounds), apr = bench_median(t[1], rounds);
    printf("arena reset: %d pools, an 11 KiB request each in flight, then reset, ns/request "
           "(median of %d runs x %d rounds)\n",
           CONNS, rounds, CONN_ROUNDS);
    printf("  tarn %.0f (%.2f OS maps/request, median)   APR %.0f   tarn vs APR: %.2fx\n", tarn,
           bench_median(maps, rounds), apr, apr / tarn);
}

int main(int argc, char **argv) {
    int full = bench_full(argc, argv);
    apr_initialize();
    make_sizes();
    bench_machine_line();
    bench_requests(full ? 41 : 21, full ? 2000 : 500);
    bench_bump(full ? 41 : 21);
    bench_conns(full ? 41 : 11);
    if (cleanups_run == 0) return 1;
    apr_terminate();
    return 0;
}
