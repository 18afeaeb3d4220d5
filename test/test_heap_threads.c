/* The heap across threads and processes: remote frees, threads exiting
 * while others hold their blocks, adoption, fork, and memory going back to
 * the OS (seed 000) without any call after the last free. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "heap/internal.h"

#define MiB ((size_t)1 << 20)

enum { N_BLOCKS = 20000 };
static void *blocks[N_BLOCKS];

static void *allocate_all(void *arg) {
    size_t size = (size_t)(uintptr_t)arg;
    for (int i = 0; i < N_BLOCKS; i++) {
        blocks[i] = tarn_malloc(size + (size_t)i % 64);
        memset(blocks[i], i & 0xff, size);
    }
    return NULL;
}

static size_t live_segments(void) { return atomic_load(&tarn__counters.segments); }

Test(heap_threads, blocks_of_an_exited_thread_stay_usable_and_return) {
    pthread_t t;
    pthread_create(&t, NULL, allocate_all, (void *)(uintptr_t)200);
    pthread_join(t, NULL);
    size_t before = live_segments();
    for (int i = 0; i < N_BLOCKS; i++) {
        unsigned char *b = blocks[i];
        cr_assert_eq(b[0], (unsigned char)(i & 0xff), "block %d changed after its thread exited",
                     i);
        cr_assert_eq(b[199], (unsigned char)(i & 0xff));
        tarn_free(b);
    }
    cr_assert_lt(live_segments(), before, "freeing into an abandoned heap gives its segments back");
    cr_assert_leq(live_segments(), 1, "%zu segments left", live_segments());
}

Test(heap_threads, a_new_thread_adopts_an_abandoned_heap) {
    pthread_t t;
    pthread_create(&t, NULL, allocate_all, (void *)(uintptr_t)48);
    pthread_join(t, NULL);
    size_t adopted = atomic_load(&tarn__counters.abandoned_adopted);
    pthread_create(&t, NULL, allocate_all, (void *)(uintptr_t)48);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&tarn__counters.abandoned_adopted), adopted + 1);
    for (int i = 0; i < N_BLOCKS; i++)
        tarn_free(blocks[i]);
}

static size_t exit_dirty, exit_live;
static uint64_t last_free_ms;

/* Allocates and frees 32 MiB of 4 KiB blocks, keeps one block (the heap
 * stays live), and records the heap's dirty and live bytes before exiting. */
static void *churn_then_exit(void *arg) {
    enum { COUNT = 8192 };
    static char *b[COUNT];
    for (int i = 0; i < COUNT; i++) {
        b[i] = tarn_malloc(4096);
        memset(b[i], 1, 4096);
    }
    for (int i = 1; i < COUNT; i++)
        tarn_free(b[i]);
    last_free_ms = tarn__os_now_ms();
    blocks[0] = b[0];
    exit_dirty = tarn__tls_heap->dirty_bytes;
    exit_live = atomic_load(&tarn__tls_heap->live_bytes);
    *(tarn__heap_t **)arg = tarn__tls_heap;
    return NULL;
}

/* A thread that exits leaves its heap no more unused memory than its budget
 * allowed while it ran (an eighth of its live bytes, at least DIRTY_MIN, plus
 * the spared newest cached segment), for the thread that adopts the heap;
 * frees into the abandoned heap keep it within that budget, and
 * tarn_collect(true) gives everything back. */
Test(heap_threads, an_exited_heap_keeps_only_its_budget_for_the_adopter) {
    tarn__heap_t *h = NULL;
    pthread_t t;
    size_t base = tarn__os_rss();
    pthread_create(&t, NULL, churn_then_exit, &h);
    pthread_join(t, NULL);
    size_t budget =
        (exit_live / 8 > TARN__DIRTY_MIN ? exit_live / 8 : TARN__DIRTY_MIN) + TARN__SPARE_MAX;
    cr_assert_leq(exit_dirty, budget, "dirty %zu, budget %zu", exit_dirty, budget);
    cr_assert_leq(h->dirty_bytes, exit_dirty, "exiting added nothing");
    /* Unless the thread was held up past the delay before it exited: */
    if (tarn__os_now_ms() - last_free_ms < tarn__purge_delay(false))
        cr_assert_gt(h->dirty_bytes, 0, "what the budget allows is kept for the adopter");
    cr_assert_lt(tarn__os_rss() - base, 8 * MiB, "the 32 MiB went back");
    pthread_create(&t, NULL, allocate_all, (void *)(uintptr_t)48);
    pthread_join(t, NULL);
    for (int i = 0; i < N_BLOCKS; i++)
        tarn_free(blocks[i]);
    size_t live = atomic_load(&h->live_bytes);
    if (live < h->exit_live) live = h->exit_live; /* the budget it left with */
    size_t now_budget = (live / 8 > TARN__DIRTY_MIN ? live / 8 : TARN__DIRTY_MIN) + TARN__SPARE_MAX;
    cr_assert_leq(h->dirty_bytes, now_budget, "frees into the abandoned heap kept its budget");
    cr_assert_gt(h->dirty_bytes, 0, "and kept what it allows for the next adopter");
    cr_assert_lt(tarn__os_rss() - base, 8 * MiB, "and nothing more");
    tarn_collect(true);
    cr_assert_eq(h->dirty_bytes, 0, "tarn_collect(true) gave everything back");
}

static char *big_blocks[2048];

static void *allocate_big(void *arg) {
    for (int i = 0; i < 2048; i++) {
        big_blocks[i] = tarn_malloc(4096);
        memset(big_blocks[i], 1, 4096);
    }
    *(tarn__heap_t **)arg = tarn__tls_heap;
    return NULL;
}

/* 8 MiB live when the thread exits. Another thread frees all but one
 * block per segment (so the segments stay): the abandoned heap keeps the
 * budget it left with (an eighth of 8 MiB) for the thread that adopts it,
 * rather than the floor its few remaining live bytes would give. */
Test(heap_threads, an_exited_heap_keeps_the_budget_it_left_with) {
    tarn__heap_t *h = NULL;
    pthread_t t;
    pthread_create(&t, NULL, allocate_big, &h);
    pthread_join(t, NULL);
    size_t left_with = h->exit_live / 8;
    cr_assert_gt(left_with, 4 * TARN__DIRTY_MIN, "the heap left with %zu live bytes", h->exit_live);
    tarn__segment_t *kept_in = NULL;
    for (int i = 0; i < 2048; i++) {
        tarn__segment_t *seg = tarn__segment_of(big_blocks[i]);
        if (seg != kept_in) {
            kept_in = seg; /* the first block of each segment stays */
            continue;
        }
        tarn_free(big_blocks[i]);
        big_blocks[i] = NULL;
    }
    cr_assert_gt(h->dirty_bytes, TARN__DIRTY_MIN, "kept more than the floor: %zu", h->dirty_bytes);
    cr_assert_leq(h->dirty_bytes, left_with, "but within its budget");
    for (int i = 0; i < 2048; i++)
        tarn_free(big_blocks[i]);
    tarn_collect(true);
    cr_assert_eq(h->dirty_bytes, 0);
}

static void *free_all(void *arg) {
    (void)arg;
    for (int i = 0; i < N_BLOCKS; i++)
        tarn_free(blocks[i]);
    return NULL;
}

Test(heap_threads, remote_frees_are_collected_by_the_owner) {
    allocate_all((void *)(uintptr_t)64);
    pthread_t t;
    pthread_create(&t, NULL, free_all, NULL);
    pthread_join(t, NULL);
    cr_assert_not_null(atomic_load(&tarn__tls_heap->remote_pages), "frees are waiting");
    tarn_collect(true);
    cr_assert_null(atomic_load(&tarn__tls_heap->remote_pages));
    cr_assert_leq(live_segments(), 1, "%zu segments after collecting", live_segments());
    for (int i = 0; i < N_BLOCKS; i++)
        blocks[i] = tarn_malloc(64);
    for (int i = 0; i < N_BLOCKS; i++)
        tarn_free(blocks[i]);
}

Test(heap_threads, large_blocks_freed_by_another_thread) {
    for (int i = 0; i < 8; i++)
        blocks[i] = tarn_malloc((size_t)(i + 1) << 18);
    pthread_t t;
    size_t before = live_segments();
    for (int i = 8; i < N_BLOCKS; i++)
        blocks[i] = NULL;
    pthread_create(&t, NULL, free_all, NULL);
    pthread_join(t, NULL);
    cr_assert_lt(live_segments(), before, "the freeing thread caches at most a few");
}

static atomic_int stop;

static void *churn(void *arg) {
    (void)arg;
    void *v[256] = {0};
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        unsigned k = (i * 2654435761u) >> 24;
        tarn_free(v[k]);
        v[k] = tarn_malloc(16 + (i % 1000));
    }
    for (int k = 0; k < 256; k++)
        tarn_free(v[k]);
    return NULL;
}

Test(heap_threads, fork_from_a_busy_process) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, churn, NULL);
    for (int round = 0; round < 20; round++) {
        void *p = tarn_malloc(100);
        pid_t pid = fork();
        if (pid == 0) {
            void *v[1000];
            for (int i = 0; i < 1000; i++)
                v[i] = tarn_malloc((size_t)i * 5);
            for (int i = 0; i < 1000; i++)
                tarn_free(v[i]);
            tarn_free(p);
            _exit(tarn_malloc(1 << 20) ? 0 : 1);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed: %d", round,
                  status);
        tarn_free(p);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
}

/* Seed 000's program at a quarter of its size: 64 MiB of 4 KiB blocks, one
 * 2-byte block allocated after them and kept. The RSS must fall with no
 * allocator call after the last free (the full-size run is in
 * heap_seed000_test.sh). */
Test(heap_purge, freed_memory_returns_without_another_call) {
    enum { COUNT = 16384 };
    static char *b[COUNT];
    size_t base = tarn__os_rss();
    for (int i = 0; i < COUNT; i++) {
        b[i] = tarn_malloc(4096);
        memset(b[i], 1, 4096);
    }
    char *pin = tarn_malloc(2);
    size_t full = tarn__os_rss();
    for (int i = 0; i < COUNT; i++)
        tarn_free(b[i]);
    size_t after = tarn__os_rss();
    cr_assert_gt(full - base, 60 * MiB, "the blocks were resident: %zu", full - base);
    cr_assert_lt(after - base, 24 * MiB, "rss %zu MiB above start after the frees",
                 (after - base) >> 20);
    pin[0] = 1;
    tarn_free(pin);
}

Test(heap_purge, collect_force_releases_everything_free) {
    void *v[2000];
    for (int i = 0; i < 2000; i++)
        v[i] = tarn_malloc(3000);
    for (int i = 0; i < 2000; i++)
        memset(v[i], 1, 3000);
    for (int i = 0; i < 2000; i++)
        tarn_free(v[i]);
    size_t released = tarn_collect(true);
    cr_assert_gt(released, 0);
    cr_assert_eq(tarn__tls_heap->dirty_bytes, 0);
    cr_assert_eq(tarn__tls_heap->cache_count, 0);
    cr_assert_eq(tarn_collect(true), 0, "nothing left to give back");
}

/* Two pages of 4 KiB blocks, within the budget's floor. */
Test(heap_purge, unused_pages_wait_for_the_delay) {
    void *pin = tarn_malloc(16);
    void *v[32];
    for (int i = 0; i < 32; i++)
        v[i] = tarn_malloc(4000);
    for (int i = 0; i < 32; i++)
        memset(v[i], 1, 4000);
    uint64_t freed = tarn__os_now_ms();
    for (int i = 0; i < 32; i++)
        tarn_free(v[i]);
    cr_assert_gt(tarn__tls_heap->dirty_bytes, 0, "kept for reuse at first");
    size_t young = tarn_collect(false);
    /* The delay is short: a test preempted past it may see the purge. */
    if (tarn__os_now_ms() - freed < tarn__purge_delay(false))
        cr_assert_eq(young, 0, "too young to purge");
    usleep((tarn__purge_delay(false) + 20) * 1000);
    cr_assert_gt(young + tarn_collect(false), 0, "purged after the delay");
    cr_assert_eq(tarn__tls_heap->dirty_bytes, 0);
    tarn_free(pin);
}

/* Queued pages next to each other go back in one call; the page in use
 * between and after them keeps every byte. Pages of 64 blocks of 1 KiB:
 * A B C D E in a row, B and E in use, A C D freed (C and D merge). */
Test(heap_purge, neighbouring_pages_purge_together_and_spare_live_ones) {
    enum { PER_PAGE = 64, PAGES = 5 };
    static char *b[PAGES][PER_PAGE];
    void *pin = tarn_malloc(16);
    for (int pg = 0; pg < PAGES; pg++)
        for (int i = 0; i < PER_PAGE; i++) {
            b[pg][i] = tarn_malloc(1024);
            memset(b[pg][i], pg * 64 + i, 1024);
        }
    tarn__page_t *first = tarn__page_of(tarn__segment_of(b[0][0]), b[0][0]);
    for (int pg = 0; pg < PAGES; pg++)
        cr_assert_eq(tarn__page_of(tarn__segment_of(b[pg][0]), b[pg][0]), first + pg,
                     "page %d follows the first", pg);
    size_t purged = atomic_load(&tarn__counters.purged_bytes);
    const int freed[] = {0, 2, 3};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < PER_PAGE; i++)
            tarn_free(b[freed[k]][i]);
    tarn_collect(true);
    cr_assert_geq(atomic_load(&tarn__counters.purged_bytes) - purged, 3 * 64 * 1024,
                  "the three freed pages went back");
    const int kept[] = {1, 4};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < PER_PAGE; i++)
            for (int j = 0; j < 1024; j += 512)
                cr_assert_eq(b[kept[k]][i][j], (char)(kept[k] * 64 + i), "page %d block %d",
                             kept[k], i);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < PER_PAGE; i++)
            tarn_free(b[kept[k]][i]);
    tarn_free(pin);
}

static bool cached_kind(const tarn__heap_t *h, int kind) {
    for (const tarn__segment_t *seg = h->cache; seg; seg = seg->next)
        if (seg->kind == kind) return true;
    return false;
}

/* A segment emptied of its pages goes back after the purge delay; a freed
 * large block's segment waits the longer delay for the next large block. */
Test(heap_purge, a_cached_large_segment_waits_longer) {
    void *pin = tarn_malloc(16);
    tarn__heap_t *h = tarn__tls_heap;
    char *medium = tarn_malloc(100 << 10), *large = tarn_malloc(256 << 10);
    medium[0] = large[0] = 1;
    uint64_t freed = tarn__os_now_ms();
    tarn_free(medium);
    tarn_free(large);
    tarn__page_age_retired(h, true); /* the medium page was kept for its class */
    cr_assert(cached_kind(h, TARN__SEG_MEDIUM) && cached_kind(h, TARN__SEG_LARGE), "both cached");
    usleep((tarn__purge_delay(false) + 20) * 1000);
    tarn_collect(false);
    cr_assert(!cached_kind(h, TARN__SEG_MEDIUM), "the emptied segment went back");
    if (tarn__os_now_ms() - freed < tarn__purge_delay(true))
        cr_assert(cached_kind(h, TARN__SEG_LARGE), "the large block's segment waits");
    usleep((tarn__purge_delay(true) + 20) * 1000);
    tarn_collect(false);
    cr_assert_null(h->cache, "and goes back after its delay");
    tarn_free(pin);
}

/* A freed large block up to TARN__SPARE_MAX stays committed in the newest
 * cached segment for the next one; a bigger one goes back at once, and
 * tarn_collect(true) takes everything. */
Test(heap_purge, the_newest_large_block_is_spared_up_to_a_limit) {
    void *pin = tarn_malloc(16);
    tarn__heap_t *h = tarn__tls_heap;
    char *big = tarn_malloc(3 * MiB);
    memset(big, 1, 3 * MiB);
    tarn_free(big);
    cr_assert(h->cache, "the segment is cached");
    cr_assert_eq(h->cache->cached_dirty, 0, "3 MiB went back at once");
    char *small = tarn_malloc(512 << 10);
    memset(small, 1, 512 << 10);
    tarn_free(small);
    cr_assert_geq(h->cache->cached_dirty, (size_t)512 << 10, "512 KiB kept for the next one");
    cr_assert_geq(tarn_collect(true), (size_t)512 << 10);
    cr_assert_null(h->cache);
    tarn_free(pin);
}

/* A cached large block counts what the program touched of it, not its
 * size: a megabyte block written at both ends holds two pages, and the
 * budget sees two pages. */
Test(heap_purge, a_cached_large_block_counts_the_pages_it_touched) {
    void *pin = tarn_malloc(16);
    tarn__heap_t *h = tarn__tls_heap;
    size_t page = tarn__os_page_size();
    char *big = tarn_malloc(MiB);
    madvise(big, MiB, MADV_NOHUGEPAGE); /* one write must fault in one page */
    big[0] = big[MiB - 1] = 1;
    tarn_free(big);
    cr_assert(h->cache, "the segment is cached");
    cr_assert_eq(h->cache->cached_dirty, 2 * page);
    tarn_free(pin);
}

/* The resident count is for the budget only: a page swapped out is not
 * resident but still holds data, so a cached segment reads as zeros only
 * after a decommit. Here the count is set to 0 as swapping would leave it;
 * calloc of the next large block must still clear it. */
Test(heap_purge, a_cached_segment_counted_empty_is_not_taken_for_zeros) {
    void *pin = tarn_malloc(16);
    tarn__heap_t *h = tarn__tls_heap;
    unsigned char *big = tarn_malloc(MiB / 2);
    memset(big, 0xab, MiB / 2);
    tarn_free(big);
    tarn__segment_t *seg = h->cache;
    cr_assert(seg, "the segment is cached");
    h->dirty_bytes -= seg->cached_dirty;
    seg->cached_dirty = 0;
    unsigned char *again = tarn_calloc(1, MiB / 2);
    cr_assert_eq(tarn__segment_of(again), seg, "the cached segment is reused");
    for (size_t i = 0; i < MiB / 2; i += 4096)
        cr_assert_eq(again[i], 0, "byte %zu", i);
    tarn_free(again);
    tarn_free(pin);
}

Test(heap_stats, print_reports_segments_and_rss) {
    void *p = tarn_malloc(1000);
    char buf[2048] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    tarn_stats_print(f);
    fclose(f);
    cr_assert(strstr(buf, "segments: 1 live"), "%s", buf);
    cr_assert(strstr(buf, "process rss:"), "%s", buf);
    tarn_free(p);
}
