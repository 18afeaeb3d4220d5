/* The region policies compared on the same traces in a 64 MiB buffer, with
 * glibc's malloc timed on the same operations for reference; then the same
 * traces scaled to a cache-resident region, and the memory lines each
 * operation touches (counted, so independent of the cache).
 *
 * Traces (the same random numbers for every policy):
 *   random     16 B - 4 KiB uniform; each step picks one of 16384 slots and
 *              frees it if live, else fills it (random lifetimes)
 *   power-law  the same with sizes 16 B - 64 KiB, each power of two half as
 *              likely as the one below
 *   fragment   128 B - 4 KiB until the region is full, free every other
 *              block, then ask for 2 - 4 KiB until the first failure
 * An op's reading is the rdtsc ticks between an lfence'd read before the
 * call and one after it. Columns of the 64 MiB table: mean ns per op (median
 * over the runs of the run's mean reading less the median reading of an
 * empty pair of clock reads); worst ns, the largest over the ops of the
 * smallest such time that op took in any run, so an interrupt or a
 * migration in one run does not count but a slow path that is always slow
 * does; peak fragmentation (1 - largest free / free, sampled 64 times during
 * the slot traces, and after the frees of the fragment one); and how full
 * the region was (live bytes requested / 64 MiB) when the first allocation
 * failed (random and power-law: after the trace, keep allocating seven times
 * for each free until one fails).
 *
 * Time on a buffer twice the L3 cache is mostly cache misses: a miss costs
 * 100-150 ns, a whole operation that hits 5-15 ns, so the worst case of any
 * policy is set by how many misses one operation takes. Two more tables keep
 * the algorithm apart from the memory system:
 *   small   the same traces on SMALL_LEN bytes, the slot count scaled by
 *           SMALL_LEN / 64 MiB (sizes unchanged) and a fifth of the steps, so
 *           the buffer fits the L2 cache (1 MiB per core here): time is
 *           instructions, branches and L1 misses. SMALL_RUNS runs of each
 *           trace follow each other, each starting with the buffer warm from
 *           the last, and keep every op's reading (2 bytes an op, about 40
 *           KB a run beside the 512 KiB buffer). The clock steps by 10 ns
 *           here, more than most of these operations take, so an op's time
 *           is not its smallest reading but window_mean() of its readings
 *           over the runs, less window_mean() of empty pairs of clock reads:
 *           that resolves it below a step (see window_mean) and leaves out
 *           the runs an interrupt or another program disturbed. Mean and
 *           worst ns are the mean and the largest of these per-op times, one
 *           estimate for both. Each per-op time is good to about step / (2
 *           sqrt(SMALL_RUNS)), 0.5 ns; the largest of ten thousand of them
 *           reads high by up to four times that. The share of readings kept
 *           is printed: it falls from about 97 % to below 90 % when other
 *           programs keep the machine busy, and worst ns then rise for every
 *           policy.
 *   lines   distinct 64-byte lines of the buffer (block headers and links,
 *           buddy control bytes, region header, index, spans) each
 *           operation reads or writes, on the 64 MiB traces: the most cache
 *           misses it can take. Counted by this program built as
 *           bench_region_probes against a library compiled with
 *           TARN_REGION_PROBES, which main() runs last; the count is exact,
 *           so one run is enough. It also prints each policy's worst count
 *           on the small region beside the 64 MiB one: a bound that holds
 *           (O(1)) does not grow with the region.
 * The clock's resolution and the reading of an empty pair are printed. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench.h"
#include "tarn.h"

#define REGION_LEN ((size_t)64 << 20)
#define SMALL_LEN ((size_t)512 << 10)
#define SLOTS 16384
#define MAX_OPS ((size_t)1 << 21)
#define SMALL_RUNS 100

/* ---- the cost of an operation: TSC ticks, or lines touched ------------- */
#ifdef TARN_REGION_PROBES
size_t tarn__region_probes_take(size_t *blocks);
static uint64_t lines_total, block_lines_total;
static bool count_blocks; /* count only the lines holding blocks */
/* Lines touched so far: the difference over an operation is its count. */
static inline uint64_t ticks(void) {
    size_t blocks;
    lines_total += tarn__region_probes_take(&blocks);
    block_lines_total += blocks;
    return count_blocks ? block_lines_total : lines_total;
}
#else
static inline uint64_t ticks(void) {
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
#else
    return (uint64_t)bench_now_ns();
#endif
}
#endif

static double ns_per_tick;
#ifdef TARN_REGION_PROBES
static const bool counting = true; /* fragmentation and fullness: not counted */
#else
static const bool counting = false;
#endif
static uint64_t tick_overhead; /* of an empty ticks() pair: median, subtracted (64 MiB) */
static uint64_t tick_step;     /* resolution */
static double read_overhead;   /* of an empty ticks() pair: window_mean (small region) */

/* The mean of the readings v[0], v[stride], ... v[(n - 1) * stride] that lie
 * within one clock step of their smallest. An operation of fixed cost reads
 * as one of two neighbouring steps, the upper one as often as its cost
 * reaches past a step boundary from where its start fell between two ticks,
 * which is anywhere: so this mean resolves the cost below a step. A reading
 * an interrupt, a migration or another program's use of the cache made
 * longer lies further out and is left out. *kept, if kept, is how many were
 * kept. */
static double window_mean(const uint16_t *v, size_t stride, int n, int *kept) {
    uint16_t lo = UINT16_MAX;
    for (int i = 0; i < n; i++)
        if (v[i * stride] < lo) lo = v[i * stride];
    double sum = 0;
    int in = 0;
    for (int i = 0; i < n; i++)
        if (v[i * stride] <= lo + tick_step) {
            sum += v[i * stride];
            in++;
        }
    if (kept) *kept = in;
    return sum / in;
}

/* The time in ns at which *k was read: between two reads of that clock a
 * microsecond apart at most, so that no preemption falls between the two
 * clocks (one would skew ns_per_tick by its length over 20 ms). */
static double ns_at(uint64_t *k) {
    for (;;) {
        double a = bench_now_ns();
        *k = ticks();
        double b = bench_now_ns();
        if (b - a < 1e3) return (a + b) / 2;
    }
}

static void calibrate(void) {
#ifdef TARN_REGION_PROBES
    ns_per_tick = 1;
    return;
#endif
    uint64_t k0, k1;
    double t0 = ns_at(&k0);
    while (bench_now_ns() - t0 < 20e6)
        continue;
    ns_per_tick = (ns_at(&k1) - t0) / (double)(k1 - k0);
    static double d[10001];
    static uint16_t r[10001];
    for (int i = 0; i < 10001; i++) {
        uint64_t a = ticks();
        d[i] = (double)(ticks() - a);
        r[i] = d[i] < UINT16_MAX ? (uint16_t)d[i] : UINT16_MAX;
    }
    tick_overhead = (uint64_t)bench_median(d, 10001);
    /* The smallest step the counter advances by (coarse under some VMs). */
    tick_step = UINT64_MAX;
    for (int i = 0; i < 10000; i++) {
        uint64_t a = ticks(), b = ticks();
        if (b > a && b - a < tick_step) tick_step = b - a;
    }
    read_overhead = window_mean(r, 1, 10001, NULL);
}

/* Per-operation costs of one trace: the minimum over runs for each op index,
 * and this run's total; or, if reads is set (small region), this run's
 * reading of each op, the runs' rows reads_cap apart. */
typedef struct {
    uint32_t *min;
    uint16_t *reads;
    size_t n;
    double sum;
} costs_t;

static size_t reads_cap; /* ops per trace and run with a reading */

static inline void record(costs_t *c, uint64_t t0, uint64_t t1) {
    if (c->reads) {
        if (c->n < reads_cap)
            c->reads[c->n] = t1 - t0 < UINT16_MAX ? (uint16_t)(t1 - t0) : UINT16_MAX;
        c->n++;
        return;
    }
    uint64_t d = t1 - t0 > tick_overhead ? t1 - t0 - tick_overhead : 0;
    if (d > UINT32_MAX) d = UINT32_MAX;
    if (c->n < MAX_OPS && d < c->min[c->n]) c->min[c->n] = (uint32_t)d;
    c->n++;
    c->sum += (double)d;
}

static double worst_ns(const costs_t *c) {
    uint32_t w = 0;
    for (size_t i = 0; i < c->n && i < MAX_OPS; i++)
        if (c->min[i] > w) w = c->min[i];
    return w * ns_per_tick;
}

static size_t reads_kept, reads_seen; /* by window_mean, over the small table */

/* The mean and the largest over the ops of each op's window_mean over the
 * runs, less the timer's own, in ns. */
static void estimate(const uint16_t *reads, size_t n, int runs, double *mean, double *worst) {
    double sum = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        int kept;
        double t = (window_mean(reads + i, reads_cap, runs, &kept) - read_overhead) * ns_per_tick;
        reads_kept += (size_t)kept;
        reads_seen += (size_t)runs;
        sum += t;
        if (t > w) w = t;
    }
    *mean = n ? sum / (double)n : 0;
    *worst = w;
}

/* ---- the allocator under test: a region or glibc ------------------------ */
static tarn_region_t *region; /* NULL: glibc */
static unsigned char *buffer;
static size_t region_len = REGION_LEN;
static size_t slots = SLOTS; /* scaled with region_len */

static inline void *heap_alloc(size_t n) {
    return region ? tarn_region_alloc(region, n) : malloc(n);
}
static inline void heap_free(void *p) {
    if (region)
        tarn_region_free(region, p);
    else
        free(p);
}

static uint64_t rng;
static inline uint64_t rnd(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

static size_t draw_uniform(void) { return 16 + rnd() % (4096 - 16 + 1); }
static size_t draw_power(void) {
    unsigned k = 0;
    while (k < 12 && rnd() & 1)
        k++;
    size_t lo = (size_t)16 << k;
    return lo + rnd() % lo;
}

typedef struct {
    costs_t alloc, free;
    double peak_frag;
    double fill;
} run_t;

static void sample_frag(run_t *out) {
    if (!region) return;
    tarn_region_stats_t s;
    tarn_region_stats(region, &s);
    if (s.fragmentation > out->peak_frag) out->peak_frag = s.fragmentation;
}

/* Live blocks, for the slot traces and the fill phase after them. */
static void **live_p;
static size_t *live_size;

/* Allocates seven for each free until the first failure; returns how full
 * the region was then. live_p[0, n) are the blocks alive at the start. */
static double fill_until_failure(size_t n, size_t (*draw)(void)) {
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += live_size[i];
    while (n < MAX_OPS) {
        if (n && rnd() % 8 == 0) {
            size_t v = rnd() % n;
            heap_free(live_p[v]);
            bytes -= live_size[v];
            live_p[v] = live_p[--n];
            live_size[v] = live_size[n];
            continue;
        }
        size_t size = draw();
        void *p = heap_alloc(size);
        if (!p) break;
        live_p[n] = p;
        live_size[n++] = size;
        bytes += size;
    }
    return (double)bytes / (double)region_len;
}

static void trace_slots(size_t steps, size_t (*draw)(void), run_t *out, bool measure_fill) {
    static void *slot[SLOTS];
    static size_t slot_size[SLOTS];
    memset(slot, 0, slots * sizeof *slot); /* the rest is unused: left out of the cache */
    for (size_t i = 0; i < steps; i++) {
        uint32_t s = (uint32_t)(rnd() % slots);
        uint64_t t0, t1;
        if (slot[s]) {
            t0 = ticks();
            heap_free(slot[s]);
            t1 = ticks();
            record(&out->free, t0, t1);
            slot[s] = NULL;
        } else {
            size_t size = draw();
            t0 = ticks();
            slot[s] = heap_alloc(size);
            t1 = ticks();
            record(&out->alloc, t0, t1);
            slot_size[s] = size;
        }
        if (measure_fill && i % (steps / 64) == 0) sample_frag(out);
    }
    size_t n = 0;
    for (size_t s = 0; s < slots; s++)
        if (slot[s]) {
            live_p[n] = slot[s];
            live_size[n++] = slot_size[s];
        }
    if (measure_fill) {
        out->fill = fill_until_failure(n, draw);
    } else if (!region) {
        for (size_t i = 0; i < n; i++)
            free(live_p[i]);
    }
}

static void trace_fragment(run_t *out, bool sample) {
    size_t n = 0, bytes = 0;
    uint64_t t0, t1;
    for (;;) {
        size_t size = 128 + rnd() % (4096 - 128 + 1);
        t0 = ticks();
        void *p = heap_alloc(size);
        t1 = ticks();
        record(&out->alloc, t0, t1);
        if (!p || n == MAX_OPS) break;
        live_p[n] = p;
        live_size[n++] = size;
        bytes += size;
    }
    for (size_t i = 0; i < n; i += 2) {
        t0 = ticks();
        heap_free(live_p[i]);
        t1 = ticks();
        record(&out->free, t0, t1);
        bytes -= live_size[i];
    }
    if (sample) sample_frag(out);
    for (;;) {
        size_t size = 2048 + rnd() % (4096 - 2048 + 1);
        t0 = ticks();
        void *p = heap_alloc(size);
        t1 = ticks();
        record(&out->alloc, t0, t1);
        if (!p) break;
        bytes += size;
    }
    if (sample) sample_frag(out);
    out->fill = (double)bytes / (double)region_len;
}

enum { RANDOM, POWER, FRAGMENT, TRACES };
static const char *const trace_names[] = {"random", "power-law", "fragment"};
static const char *const policy_names[] = {"first fit", "next fit", "best fit", "buddy", "tlsf"};
#define GLIBC 5

typedef struct {
    double alloc_mean, alloc_worst, free_mean, free_worst, frag, fill;
} result_t;

/* Runs one trace `runs` times on a fresh region of `policy` (or glibc). */
static result_t measure(int trace, int policy, int runs, size_t steps) {
    static costs_t a = {0}, f = {0};
    static uint16_t *a_reads, *f_reads;
    if (!a.min) {
        a.min = malloc(MAX_OPS * sizeof *a.min);
        f.min = malloc(MAX_OPS * sizeof *f.min);
    }
    if (reads_cap && !a_reads) {
        a_reads = malloc((size_t)runs * reads_cap * sizeof *a_reads);
        f_reads = malloc((size_t)runs * reads_cap * sizeof *f_reads);
        if (!a_reads || !f_reads) exit(1);
    }
    if (!reads_cap) {
        memset(a.min, 0xff, MAX_OPS * sizeof *a.min);
        memset(f.min, 0xff, MAX_OPS * sizeof *f.min);
    }
    double am[16], fm[16];
    result_t res = {0};
    for (int run = 0; run < runs; run++) {
        region =
            policy == GLIBC ? NULL : tarn_region_init(buffer, region_len, (tarn_policy_t)policy);
        uint16_t *ar = reads_cap ? a_reads + run * reads_cap : NULL;
        uint16_t *fr = reads_cap ? f_reads + run * reads_cap : NULL;
        run_t out = {.alloc = {a.min, ar, 0, 0}, .free = {f.min, fr, 0, 0}};
        rng = 0x9e3779b97f4a7c15ull + (uint64_t)trace;
        bool first = run == 0 && policy != GLIBC && !counting;
        if (trace == FRAGMENT)
            trace_fragment(&out, first);
        else
            trace_slots(steps, trace == RANDOM ? draw_uniform : draw_power, &out, first);
        if (first) {
            res.frag = out.peak_frag;
            res.fill = out.fill;
        }
        a.n = out.alloc.n;
        f.n = out.free.n;
        if (reads_cap) continue;
        am[run] = out.alloc.sum / (double)out.alloc.n * ns_per_tick;
        fm[run] = out.free.sum / (double)out.free.n * ns_per_tick;
    }
    if (reads_cap) {
        if (a.n > reads_cap || f.n > reads_cap) {
            fprintf(stderr, "bench_region: more ops than reads_cap\n");
            exit(1);
        }
        estimate(a_reads, a.n, runs, &res.alloc_mean, &res.alloc_worst);
        estimate(f_reads, f.n, runs, &res.free_mean, &res.free_worst);
        return res;
    }
    res.alloc_mean = bench_median(am, runs);
    res.free_mean = bench_median(fm, runs);
    res.alloc_worst = worst_ns(&a);
    res.free_worst = worst_ns(&f);
    return res;
}

typedef result_t results_t[TRACES][GLIBC + 1];

/* Runs every policy (and glibc if with_glibc) on every trace. */
static void run_all(results_t res, int runs, size_t steps, bool with_glibc) {
    for (int t = 0; t < TRACES; t++)
        for (int p = 0; p <= GLIBC; p++)
            if (p != GLIBC || (with_glibc && t != FRAGMENT)) /* glibc never runs out */
                res[t][p] = measure(t, p, runs, steps);
}

#ifndef TARN_REGION_PROBES
static void print_table(results_t res, bool with_glibc, bool with_fill) {
    printf("%-10s %-9s %10s %11s %10s %11s", "trace", "policy", "alloc ns", "worst ns", "free ns",
           "worst ns");
    if (with_fill) printf(" %6s %6s", "frag", "full");
    printf("\n");
    for (int t = 0; t < TRACES; t++)
        for (int p = 0; p <= GLIBC; p++) {
            if (p == GLIBC && (!with_glibc || t == FRAGMENT)) continue;
            const result_t *r = &res[t][p];
            printf("%-10s %-9s %10.1f %11.0f %10.1f %11.0f", trace_names[t],
                   p == GLIBC ? "glibc" : policy_names[p], r->alloc_mean, r->alloc_worst,
                   r->free_mean, r->free_worst);
            if (with_fill && p == GLIBC)
                printf(" %6s %6s", "-", "-");
            else if (with_fill)
                printf(" %6.3f %5.1f%%", r->frag, 100 * r->fill);
            printf("\n");
        }
}
#endif

/* Prints TLSF's worst/mean alloc per trace against the 4x target. */
static void target_line(const char *measure, results_t res) {
    bool met = true;
    printf("tlsf worst/mean alloc, %s (target <= 4x):", measure);
    for (int t = 0; t < TRACES; t++) {
        double ratio = res[t][TARN_TLSF].alloc_worst / res[t][TARN_TLSF].alloc_mean;
        printf(" %s %.1fx", trace_names[t], ratio);
        met &= ratio <= 4;
    }
    printf(" -> %s\n", met ? "met" : "NOT MET");
}

/* steps: of the slot traces; the fragment one has fewer than SMALL_LEN / 64
 * operations there (blocks of 128 B or more). */
static void use_small_region(size_t steps) {
    region_len = SMALL_LEN;
    slots = SLOTS * SMALL_LEN / REGION_LEN;
    reads_cap = counting ? 0 : steps + SMALL_LEN / 64;
}

static results_t big, small;

#ifdef TARN_REGION_PROBES
static results_t big_blocks;

/* The largest worst alloc of policy p over the traces. */
static double worst_alloc(results_t res, int p) {
    double w = 0;
    for (int t = 0; t < TRACES; t++)
        if (res[t][p].alloc_worst > w) w = res[t][p].alloc_worst;
    return w;
}

int main(void) {
    buffer = malloc(REGION_LEN);
    live_p = malloc(MAX_OPS * sizeof *live_p);
    live_size = malloc(MAX_OPS * sizeof *live_size);
    if (!buffer || !live_p || !live_size) return 1;
    calibrate();
    run_all(big, 1, 100000, false);
    count_blocks = true;
    run_all(big_blocks, 1, 100000, false);
    printf("\nregion, lines: distinct 64-byte lines of the buffer each operation touches (all; and "
           "those holding blocks,\nthe rest being the region header and index), 64 MiB, same "
           "traces, counted\n");
    printf("%-10s %-9s %10s %6s %10s %6s %10s %6s %10s %6s\n", "trace", "policy", "alloc", "worst",
           "in blocks", "worst", "free", "worst", "in blocks", "worst");
    for (int t = 0; t < TRACES; t++)
        for (int p = 0; p < GLIBC; p++) {
            const result_t *a = &big[t][p], *b = &big_blocks[t][p];
            printf("%-10s %-9s %10.1f %6.0f %10.1f %6.0f %10.1f %6.0f %10.1f %6.0f\n",
                   trace_names[t], policy_names[p], a->alloc_mean, a->alloc_worst, b->alloc_mean,
                   b->alloc_worst, a->free_mean, a->free_worst, b->free_mean, b->free_worst);
        }
    target_line("lines touched", big);
    target_line("block lines touched", big_blocks);

    /* The bound itself: O(1) means the worst case does not grow with the
     * region, where a search over the free blocks does. */
    use_small_region(100000 / 5);
    count_blocks = false;
    run_all(small, 1, 100000 / 5, false);
    printf("worst lines per alloc over the traces, %zu KiB region -> 64 MiB:", SMALL_LEN >> 10);
    for (int p = 0; p < GLIBC; p++)
        printf("%s %s %.0f -> %.0f", p ? "," : "", policy_names[p], worst_alloc(small, p),
               worst_alloc(big, p));
    printf("\n");
    return 0;
}
#else
int main(int argc, char **argv) {
    int full = bench_full(argc, argv);
    int runs = full ? 9 : 5;
    size_t steps = full ? 1000000 : 100000;
    buffer = malloc(REGION_LEN);
    live_p = malloc(MAX_OPS * sizeof *live_p);
    live_size = malloc(MAX_OPS * sizeof *live_size);
    if (!buffer || !live_p || !live_size) return 1;
    memset(buffer, 0, REGION_LEN);
    calibrate();

    printf("\nregion: five policies on one 64 MiB buffer, %d runs, %zu steps per slot trace\n",
           runs, steps);
    bench_machine_line();
    printf("timer: rdtsc, resolution %.1f ns on this machine; an empty pair of reads: median "
           "%.1f ns (subtracted in the 64 MiB table), window mean %.1f ns (small table)\n",
           tick_step * ns_per_tick, tick_overhead * ns_per_tick, read_overhead * ns_per_tick);
    run_all(big, runs, steps, true);
    print_table(big, true, true);
    printf("tlsf/glibc mean alloc time: random %.2f, power-law %.2f\n",
           big[RANDOM][TARN_TLSF].alloc_mean / big[RANDOM][GLIBC].alloc_mean,
           big[POWER][TARN_TLSF].alloc_mean / big[POWER][GLIBC].alloc_mean);

    /* A fifth of the steps, so the per-operation records stay small beside
     * the region and do not push it out of the L2 cache. */
    use_small_region(steps / 5);
    printf("\nregion, small: the same traces on a %zu KiB buffer (L2-resident), %zu slots, "
           "%zu steps, %d runs;\nan op's time: the mean of its readings within one clock step "
           "of its fastest, less the empty pair's (+-%.1f ns)\n",
           SMALL_LEN >> 10, slots, steps / 5, SMALL_RUNS,
           tick_step * ns_per_tick / (2 * sqrt(SMALL_RUNS)));
    run_all(small, SMALL_RUNS, steps / 5, false);
    print_table(small, false, true);
    target_line("ns, 64 MiB (the issue's measure; one cache miss is ~100 ns)", big);
    /* Below about 90 % kept, other programs were busy and every policy's
     * worst case rose with them. */
    char what[96];
    snprintf(what, sizeof what, "ns, %zu KiB cache-resident, %.1f %% of readings kept",
             SMALL_LEN >> 10, 100.0 * (double)reads_kept / (double)reads_seen);
    target_line(what, small);
    fflush(stdout);

    /* The line counts come from the same program built with the counting
     * library, next to this one. */
    char probes[4096];
    snprintf(probes, sizeof probes, "%s_probes", argv[0]);
    execv(probes, (char *[]){probes, NULL});
    printf("(no line counts: %s did not start)\n", probes);
    return 0;
}
#endif
