/* The general heap against glibc, jemalloc, tcmalloc and mimalloc.
 *
 * Workloads in the style of the classic allocator benchmarks, written here
 * from their descriptions: larson (server churn; each thread's slots are
 * inherited by a successor thread, which frees its predecessor's blocks),
 * xmalloc (producers allocate, consumers free), cache-scratch (false
 * sharing between objects handed to threads), alloc-mix (mixed sizes and
 * lifetimes), realloc-grow (buffers grown by realloc), large-turn and
 * huge-turn (large blocks replaced in turn). Each runs in a child
 * process that calls plain malloc; the allocator is chosen with LD_PRELOAD,
 * so all five run the same binary. The parent measures wall time and peak
 * RSS (wait4) and prints medians and ratios to glibc from the same run; then,
 * for glibc and tarn, the page faults and system time behind them, which is
 * where memory given back and touched again shows. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench.h"

static long scale = 1;

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void touch(char *p, size_t n) {
    p[0] = 1;
    if (n > 1) p[n - 1] = 2;
}

/* ---- larson ------------------------------------------------------------ */
enum { LARSON_THREADS = 4, LARSON_SLOTS = 2000, LARSON_GENERATIONS = 10 };

typedef struct {
    char *slot[LARSON_SLOTS];
    uint64_t rng;
    int generation;
} larson_state_t;

static void *larson_thread(void *arg) {
    larson_state_t *st = arg;
    long ops = 200000 * scale;
    for (long i = 0; i < ops; i++) {
        int k = (int)(rnd(&st->rng) % LARSON_SLOTS);
        free(st->slot[k]);
        size_t n = 8 + rnd(&st->rng) % 993;
        st->slot[k] = malloc(n);
        touch(st->slot[k], n);
    }
    if (++st->generation < LARSON_GENERATIONS) {
        pthread_t next;
        pthread_create(&next, NULL, larson_thread, st);
        pthread_detach(next);
    } else {
        for (int k = 0; k < LARSON_SLOTS; k++)
            free(st->slot[k]);
        st->generation = -1;
    }
    return NULL;
}

static void run_larson(void) {
    static larson_state_t st[LARSON_THREADS];
    for (int t = 0; t < LARSON_THREADS; t++) {
        st[t].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
        for (int k = 0; k < LARSON_SLOTS; k++) {
            size_t n = 8 + rnd(&st[t].rng) % 993;
            st[t].slot[k] = malloc(n);
            touch(st[t].slot[k], n);
        }
        pthread_t th;
        pthread_create(&th, NULL, larson_thread, &st[t]);
        pthread_detach(th);
    }
    for (int t = 0; t < LARSON_THREADS; t++)
        while (__atomic_load_n(&st[t].generation, __ATOMIC_ACQUIRE) != -1)
            usleep(1000);
}

/* ---- xmalloc: producers allocate, consumers free ----------------------- */
enum { X_PAIRS = 2, X_BATCH = 64, X_RING = 64 };

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *ring[X_RING][X_BATCH];
    int head, count, done;
} xqueue_t;

static xqueue_t xq[X_PAIRS];

static void *x_producer(void *arg) {
    xqueue_t *q = arg;
    uint64_t rng = (uint64_t)(uintptr_t)arg | 1;
    long batches = 30000 * scale;
    for (long b = 0; b < batches; b++) {
        void *batch[X_BATCH];
        for (int i = 0; i < X_BATCH; i++) {
            size_t n = 8 + rnd(&rng) % 249;
            batch[i] = malloc(n);
            touch(batch[i], n);
        }
        pthread_mutex_lock(&q->lock);
        while (q->count == X_RING)
            pthread_cond_wait(&q->cond, &q->lock);
        memcpy(q->ring[(q->head + q->count) % X_RING], batch, sizeof batch);
        q->count++;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
    }
    pthread_mutex_lock(&q->lock);
    q->done = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

static void *x_consumer(void *arg) {
    xqueue_t *q = arg;
    for (;;) {
        void *batch[X_BATCH];
        pthread_mutex_lock(&q->lock);
        while (q->count == 0 && !q->done)
            pthread_cond_wait(&q->cond, &q->lock);
        if (q->count == 0) {
            pthread_mutex_unlock(&q->lock);
            return NULL;
        }
        memcpy(batch, q->ring[q->head], sizeof batch);
        q->head = (q->head + 1) % X_RING;
        q->count--;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
        for (int i = 0; i < X_BATCH; i++)
            free(batch[i]);
    }
}

static void run_xmalloc(void) {
    pthread_t p[X_PAIRS], c[X_PAIRS];
    for (int i = 0; i < X_PAIRS; i++) {
        pthread_mutex_init(&xq[i].lock, NULL);
        pthread_cond_init(&xq[i].cond, NULL);
        pthread_create(&p[i], NULL, x_producer, &xq[i]);
        pthread_create(&c[i], NULL, x_consumer, &xq[i]);
    }
    for (int i = 0; i < X_PAIRS; i++) {
        pthread_join(p[i], NULL);
        pthread_join(c[i], NULL);
    }
}

/* ---- cache-scratch: objects allocated by one thread, used by others ----- */
enum { SCRATCH_THREADS = 2, SCRATCH_SIZE = 8 };

static void *scratch_thread(void *arg) {
    free(arg);
    long rounds = 300000 * scale;
    for (long r = 0; r < rounds; r++) {
        volatile char *p = malloc(SCRATCH_SIZE);
        for (int rep = 0; rep < 50; rep++)
            for (int j = 0; j < SCRATCH_SIZE; j++)
                p[j] = (char)(p[j] + rep);
        free((void *)p);
    }
    return NULL;
}

static void run_cache_scratch(void) {
    pthread_t t[SCRATCH_THREADS];
    void *obj[SCRATCH_THREADS];
    for (int i = 0; i < SCRATCH_THREADS; i++)
        obj[i] = malloc(SCRATCH_SIZE);
    for (int i = 0; i < SCRATCH_THREADS; i++)
        pthread_create(&t[i], NULL, scratch_thread, obj[i]);
    for (int i = 0; i < SCRATCH_THREADS; i++)
        pthread_join(t[i], NULL);
}

/* ---- alloc-mix: mixed sizes and lifetimes ------------------------------ */
enum { MIX_THREADS = 2, MIX_SLOTS = 20000 };

static size_t mix_size(uint64_t *rng) {
    uint64_t r = rnd(rng) % 1000;
    if (r < 800) return 8 + rnd(rng) % 121;
    if (r < 950) return 128 + rnd(rng) % 3969;
    if (r < 999) return 4096 + rnd(rng) % 61441;
    return 65536 + rnd(rng) % 983041;
}

static void *mix_thread(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull;
    char **slot = calloc(MIX_SLOTS, sizeof *slot);
    long ops = 1200000 * scale;
    for (long i = 0; i < ops; i++) {
        /* Low slots turn over constantly, high slots rarely: short and long lives. */
        uint64_t r = rnd(&rng);
        int k = (int)((r % 100 < 90) ? r % 500 : r % MIX_SLOTS);
        free(slot[k]);
        size_t n = mix_size(&rng);
        slot[k] = malloc(n);
        touch(slot[k], n);
    }
    for (int k = 0; k < MIX_SLOTS; k++)
        free(slot[k]);
    free(slot);
    return NULL;
}

static void run_alloc_mix(void) {
    pthread_t t[MIX_THREADS];
    for (int i = 0; i < MIX_THREADS; i++)
        pthread_create(&t[i], NULL, mix_thread, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < MIX_THREADS; i++)
        pthread_join(t[i], NULL);
}

/* ---- realloc-grow: buffers grown a little at a time -------------------- */
enum { GROW_BUFFERS = 1000 };

static void run_realloc_grow(void) {
    uint64_t rng = 7;
    for (long round = 0; round < 3 * scale; round++) {
        static char *buf[GROW_BUFFERS];
        static size_t len[GROW_BUFFERS];
        for (int step = 0; step < 400; step++)
            for (int i = 0; i < GROW_BUFFERS; i++) {
                size_t add = 1 + rnd(&rng) % 64;
                buf[i] = realloc(buf[i], len[i] + add);
                memset(buf[i] + len[i], i, add);
                len[i] += add;
            }
        for (int i = 0; i < GROW_BUFFERS; i++) {
            free(buf[i]);
            buf[i] = NULL;
            len[i] = 0;
        }
        char *big = NULL;
        for (size_t n = 4096; n <= ((size_t)64 << 20); n += n / 8 + 4096) {
            big = realloc(big, n);
            touch(big, n);
        }
        free(big);
    }
}

/* ---- large-turn, huge-turn: large blocks allocated, touched, freed ------ */
/* A few slots, each replaced in turn by a block of random size whose every
 * OS page is written (mimalloc-bench's malloc-large does this with 5-25 MiB):
 * an allocator that gives a freed block back to the OS pays an mmap, an
 * munmap and a page fault per page for the next one. */
static void turn_blocks(int slots, long rounds, size_t min, size_t max) {
    char *slot[16] = {0};
    uint64_t rng = 11;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (long i = 0; i < rounds; i++) {
        int k = (int)(rnd(&rng) % (uint64_t)slots);
        free(slot[k]);
        size_t n = min + rnd(&rng) % (max - min + 1);
        slot[k] = malloc(n);
        for (size_t off = 0; off < n; off += page)
            slot[k][off] = (char)off;
        slot[k][n - 1] = 1;
        bench_use(slot[k]);
    }
    for (int k = 0; k < slots; k++)
        free(slot[k]);
}

static void run_large_turn(void) {
    turn_blocks(16, 200 * scale, (size_t)128 << 10, (size_t)4 << 20);
}

static void run_huge_turn(void) { turn_blocks(4, 24 * scale, (size_t)5 << 20, (size_t)25 << 20); }

/* ---- driver ------------------------------------------------------------ */
typedef struct {
    const char *name;
    void (*run)(void);
} workload_t;

static const workload_t workloads[] = {
    {"larson", run_larson},
    {"xmalloc", run_xmalloc},
    {"cache-scratch", run_cache_scratch},
    {"alloc-mix", run_alloc_mix},
    {"realloc-grow", run_realloc_grow},
    {"large-turn", run_large_turn},
    {"huge-turn", run_huge_turn},
};
enum { N_WORK = sizeof workloads / sizeof *workloads, MAX_ALLOC = 5, MAX_REPS = 15 };
/* glibc and tarn run every repetition; the other allocators fewer, as
 * jemalloc's and mimalloc's realloc-grow alone take seconds a run. Nine
 * for the two compared most closely: a small workload's peak RSS moves by
 * up to 0.3 MiB between identical runs, mostly with address-space
 * randomization (docs/heap.md), which five medians did not settle. */
#define ANCHOR_REPS(reps) ((reps) / 3)

typedef struct {
    const char *name;
    const char *preload; /* NULL: the system allocator */
} allocator_t;

static allocator_t allocs[MAX_ALLOC];
static int n_allocs;

static void find_allocators(void) {
    static char tarn_path[4096];
    const char *dir = "/usr/lib/x86_64-linux-gnu/";
    const char *names[][2] = {{"jemalloc", "libjemalloc.so.2"},
                              {"tcmalloc", "libtcmalloc_minimal.so.4"},
                              {"mimalloc", "libmimalloc.so.2"}};
    allocs[n_allocs++] = (allocator_t){"glibc", NULL};
    if (realpath("build/libtarn-override.so", tarn_path))
        allocs[n_allocs++] = (allocator_t){"tarn", tarn_path};
    for (int i = 0; i < 3; i++) {
        static char paths[3][256];
        snprintf(paths[i], sizeof paths[i], "%s%s", dir, names[i][1]);
        if (access(paths[i], R_OK) == 0) allocs[n_allocs++] = (allocator_t){names[i][0], paths[i]};
    }
}

typedef struct {
    double ms, rss_kib, faults, sys_ms;
} sample_t;

/* Runs one workload in a child under one allocator. */
static int measure(const char *self, int w, const allocator_t *a, sample_t *out) {
    char scale_arg[32];
    snprintf(scale_arg, sizeof scale_arg, "%ld", scale);
    double t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        if (a->preload) setenv("LD_PRELOAD", a->preload, 1);
        execl(self, self, "--run", workloads[w].name, scale_arg, (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) return -1;
    out->ms = (bench_now_ns() - t0) / 1e6;
    out->rss_kib = (double)ru.ru_maxrss;
    out->faults = (double)ru.ru_minflt + (double)ru.ru_majflt;
    out->sys_ms = (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static double geomean(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += log(v[i]);
    return exp(s / n);
}

static double ms_med[N_WORK][MAX_ALLOC], rss_med[N_WORK][MAX_ALLOC];
static double faults_med[N_WORK][2], sys_med[N_WORK][2]; /* glibc, tarn */

static void print_table(FILE *out, int reps) {
    fprintf(out,
            "heap: wall time and peak RSS, median of %d runs (jemalloc, tcmalloc, "
            "mimalloc: %d); ratio = allocator / glibc (lower is better)\n\n",
            reps, ANCHOR_REPS(reps));
    fprintf(out, "| workload | glibc ms | glibc MiB |");
    for (int a = 1; a < n_allocs; a++)
        fprintf(out, " %s time | %s RSS |", allocs[a].name, allocs[a].name);
    fprintf(out, "\n|---|---|---|");
    for (int a = 1; a < n_allocs; a++)
        fprintf(out, "---|---|");
    fprintf(out, "\n");
    double tr[MAX_ALLOC][N_WORK], rr[MAX_ALLOC][N_WORK];
    for (int w = 0; w < N_WORK; w++) {
        fprintf(out, "| %s | %.0f | %.1f |", workloads[w].name, ms_med[w][0], rss_med[w][0] / 1024);
        for (int a = 1; a < n_allocs; a++) {
            tr[a][w] = ms_med[w][a] / ms_med[w][0];
            rr[a][w] = rss_med[w][a] / rss_med[w][0];
            fprintf(out, " %.2f | %.2f |", tr[a][w], rr[a][w]);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "| geometric mean | 1 | 1 |");
    for (int a = 1; a < n_allocs; a++)
        fprintf(out, " **%.2f** | **%.2f** |", geomean(tr[a], N_WORK), geomean(rr[a], N_WORK));
    fprintf(out, "\n");
}

static void print_kernel_table(FILE *out) {
    fprintf(out, "\nkernel work behind the table (medians): page faults, system time\n\n"
                 "| workload | glibc faults | tarn faults | glibc sys ms | tarn sys ms |\n"
                 "|---|---|---|---|---|\n");
    for (int w = 0; w < N_WORK; w++)
        fprintf(out, "| %s | %.0f | %.0f | %.0f | %.0f |\n", workloads[w].name, faults_med[w][0],
                faults_med[w][1], sys_med[w][0], sys_med[w][1]);
}

static void write_chart_data(void) {
    FILE *f = fopen("bench/results/heap.dat", "w");
    if (!f) return;
    fprintf(f, "workload");
    for (int a = 1; a < n_allocs; a++)
        fprintf(f, " %s", allocs[a].name);
    fprintf(f, "\n");
    for (int part = 0; part < 2; part++)
        for (int w = 0; w < N_WORK; w++) {
            fprintf(f, "%s%s", workloads[w].name, part ? "(rss)" : "");
            for (int a = 1; a < n_allocs; a++)
                fprintf(f, " %.3f",
                        part ? rss_med[w][a] / rss_med[w][0] : ms_med[w][a] / ms_med[w][0]);
            fprintf(f, "\n");
        }
    fclose(f);
}

static int run_child(const char *name, const char *scale_arg) {
    scale = atol(scale_arg);
    for (int w = 0; w < N_WORK; w++)
        if (!strcmp(workloads[w].name, name)) {
            workloads[w].run();
            return 0;
        }
    return 2;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--run")) return run_child(argv[2], argv[3]);
    int full = bench_full(argc, argv);
    int reps = full ? 15 : 9;
    scale = full ? 4 : 1;
    find_allocators();
    bench_machine_line();
    static sample_t runs[N_WORK][MAX_ALLOC][MAX_REPS];
    /* Repetitions outermost, so background load spreads over all allocators. */
    for (int r = 0; r < reps; r++)
        for (int w = 0; w < N_WORK; w++)
            for (int a = 0; a < n_allocs; a++)
                if ((a < 2 || r < ANCHOR_REPS(reps)) &&
                    measure("/proc/self/exe", w, &allocs[a], &runs[w][a][r])) {
                    fprintf(stderr, "bench_heap: %s under %s failed\n", workloads[w].name,
                            allocs[a].name);
                    return 1;
                }
    for (int w = 0; w < N_WORK; w++)
        for (int a = 0; a < n_allocs; a++) {
            int n = a < 2 ? reps : ANCHOR_REPS(reps);
            double v[4][MAX_REPS];
            for (int r = 0; r < n; r++) {
                const sample_t *s = &runs[w][a][r];
                v[0][r] = s->ms, v[1][r] = s->rss_kib, v[2][r] = s->faults, v[3][r] = s->sys_ms;
            }
            ms_med[w][a] = bench_median(v[0], n);
            rss_med[w][a] = bench_median(v[1], n);
            if (a < 2) {
                faults_med[w][a] = bench_median(v[2], n);
                sys_med[w][a] = bench_median(v[3], n);
            }
        }
    print_table(stdout, reps);
    bool with_tarn = n_allocs > 1 && !strcmp(allocs[1].name, "tarn");
    if (with_tarn) print_kernel_table(stdout);
    mkdir("bench/results", 0755);
    FILE *f = fopen("bench/results/heap.md", "w");
    if (f) {
        print_table(f, reps);
        if (with_tarn) print_kernel_table(f);
        fclose(f);
    }
    write_chart_data();
    if (system("command -v gnuplot >/dev/null && gnuplot bench/heap.gp") == 0)
        printf("\ntable: bench/results/heap.md, chart: bench/results/heap.png\n");
    else
        fprintf(stderr, "bench_heap: no chart (gnuplot missing or failed)\n");
    return 0;
}
