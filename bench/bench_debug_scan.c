/* The leak scan's cost (src/debug/scan.c): time of one tarn__scan_mark over
 * n live blocks, and per MiB of roots and blocks read.
 *
 * The blocks are tarn_malloc blocks of 16 to 256 bytes. Three in four hold
 * the start of a random earlier block, one in 16 is pointed to from a
 * global table of heads: the marking follows chains from the heads (about
 * a sixth of the blocks end up reachable, the "reached" column) and most
 * words read miss every block. The table of blocks is mapped, not a root.
 * The roots include this program's data, tarn's 8 MiB segment map among
 * it, mostly pages never written. Medians of several runs. */
#include <pthread.h>
#include <sys/mman.h>

#include "bench.h"
#include "debug/scan.h"
#include "tarn.h"

#define MAX_BLOCKS 1000000
static void *heads[MAX_BLOCKS / 16];

static int by_start(const void *a, const void *b) {
    uintptr_t x = ((const tarn__scan_block_t *)a)->start,
              y = ((const tarn__scan_block_t *)b)->start;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_random(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* Adds blocks from to n to t, then sorts all n. */
static void build(tarn__scan_block_t *t, size_t from, size_t n) {
    for (size_t i = from; i < n; i++) {
        size_t size = 16 + next_random() % 241;
        void **p = tarn_calloc(1, size);
        if (!p) abort();
        bool lost = i % 4 == 3;
        if (!lost && i) p[0] = (void *)t[next_random() % i].start;
        if (!lost && i % 16 == 0) heads[i / 16] = p;
        t[i] = (tarn__scan_block_t){(uintptr_t)p, size, 0};
    }
    qsort(t, n, sizeof *t, by_start);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int parked_go;

static void *parked(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!parked_go)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void run(tarn__scan_block_t *t, size_t n, int threads, int reps) {
    double ms[9];
    tarn__scan_stats_t st = {0};
    for (int r = 0; r < reps; r++) {
        double a = bench_now_ns();
        if (tarn__scan_mark(t, n, &(tarn__scan_options_t){.stats = &st}) != 0) abort();
        ms[r] = (bench_now_ns() - a) / 1e6;
    }
    size_t reachable = 0;
    for (size_t i = 0; i < n; i++)
        reachable += t[i].flags & TARN__SCAN_REACHABLE;
    double med = bench_median(ms, reps), mib = (double)(st.root_bytes + st.block_bytes) / (1 << 20);
    printf("%8zu %7d %9.2f %9.2f %9.2f %8.2f %9.1f %7.1f%%\n", n, threads, med,
           (double)st.root_bytes / (1 << 20), (double)st.block_bytes / (1 << 20), med / mib,
           med * 1e6 / (double)n, 100.0 * (double)reachable / (double)n);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    tarn__scan_block_t *t = mmap(NULL, MAX_BLOCKS * sizeof *t, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED) return 1;
    printf("\n== leak scan: one tarn__scan_mark (median of runs)\n");
    bench_machine_line();
    printf("%8s %7s %9s %9s %9s %8s %9s %8s\n", "blocks", "threads", "ms", "roots MiB",
           "blocks MiB", "ms/MiB", "ns/block", "reached");
    size_t done = 0;
    for (size_t n = 10000; n <= MAX_BLOCKS; n *= 10) {
        build(t, done, n); /* grows the same heap: 10k, then 100k, then 1M */
        done = n;
        run(t, n, 1, n < MAX_BLOCKS ? 9 : 3);
    }
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, parked, NULL);
    run(t, done, 9, 3);
    pthread_mutex_lock(&lock);
    parked_go = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    bench_use(heads);
    return 0;
}
