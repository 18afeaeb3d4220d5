/* The heap's figures (tarn_heap_stats) and what the glibc companions need
 * from alloc.c: errno kept on success, memalign's rounding, realloc keeping
 * blocks that fit, the sized frees, and the allocation attributes. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "common.h"
#include "heap/internal.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static tarn_heap_stats_t stats(void) {
    tarn_heap_stats_t s;
    tarn_heap_stats(&s);
    return s;
}

/* ---- exact figures in a quiet process ---------------------------------- */

Test(heap_stats, blocks_of_a_class_count_exactly) {
    enum { N = 3000 };
    static void *v[N];
    unsigned cls = tarn__size_class(48);
    tarn_heap_stats_t a = stats();
    cr_assert_eq(a.classes[cls].block_size, 48);
    for (int i = 0; i < N; i++)
        v[i] = tarn_malloc(48);
    tarn_heap_stats_t b = stats();
    cr_assert_eq(b.classes[cls].live_blocks, a.classes[cls].live_blocks + N);
    cr_assert_eq(b.allocated, a.allocated + N * 48, "%zu -> %zu", a.allocated, b.allocated);
    size_t per_page = (64 * KiB) / 48;
    cr_assert_eq(b.classes[cls].pages, (N + per_page - 1) / per_page, "%zu pages",
                 b.classes[cls].pages);
    cr_assert_eq(b.classes[cls].free_blocks, b.classes[cls].pages * per_page - N);
    cr_assert_geq(b.in_use, b.allocated, "pages in use hold the live blocks");
    cr_assert_geq(b.committed, b.allocated);
    cr_assert_geq(b.mapped, b.committed);
    cr_assert_geq(b.resident, N * 48 / 2, "written blocks are resident: %zu", b.resident);
    for (int i = 0; i < N; i += 2)
        tarn_free(v[i]);
    tarn_heap_stats_t c = stats();
    cr_assert_eq(c.classes[cls].live_blocks, a.classes[cls].live_blocks + N / 2);
    cr_assert_eq(c.allocated, a.allocated + N / 2 * 48);
    for (int i = 1; i < N; i += 2)
        tarn_free(v[i]);
    tarn_heap_stats_t d = stats();
    cr_assert_eq(d.classes[cls].live_blocks, a.classes[cls].live_blocks);
    cr_assert_eq(d.allocated, a.allocated);
}

Test(heap_stats, every_class_counts_its_blocks) {
    static void *v[TARN__CLASSES][3];
    tarn_heap_stats_t a = stats();
    for (unsigned cls = 0; cls < TARN__CLASSES; cls++)
        for (int i = 0; i < 3; i++)
            v[cls][i] = tarn_malloc(tarn__class_size(cls));
    tarn_heap_stats_t b = stats();
    size_t bytes = 0;
    for (unsigned cls = 0; cls < TARN__CLASSES; cls++) {
        cr_assert_eq(b.classes[cls].live_blocks, a.classes[cls].live_blocks + 3, "class %u", cls);
        cr_assert_geq(b.classes[cls].pages, 1, "class %u", cls);
        bytes += 3 * tarn__class_size(cls);
    }
    cr_assert_eq(b.allocated, a.allocated + bytes);
    for (unsigned cls = 0; cls < TARN__CLASSES; cls++)
        for (int i = 0; i < 3; i++)
            tarn_free(v[cls][i]);
    cr_assert_eq(stats().allocated, a.allocated);
}

Test(heap_stats, large_huge_and_far_blocks) {
    tarn_heap_stats_t a = stats();
    char *large = tarn_malloc(MiB);
    char *huge = tarn_malloc(10 * MiB);
    char *far = tarn_memalign(8 * MiB, 100);
    memset(large, 1, MiB);
    tarn_heap_stats_t b = stats();
    cr_assert_eq(b.large_blocks, a.large_blocks + 1);
    cr_assert_eq(b.large_bytes, a.large_bytes + MiB);
    cr_assert_eq(b.huge_blocks, a.huge_blocks + 2);
    cr_assert_geq(b.huge_bytes - a.huge_bytes, 10 * MiB + 100);
    cr_assert_eq(b.allocated - a.allocated, MiB + (b.huge_bytes - a.huge_bytes));
    cr_assert_geq(b.resident - a.resident, MiB, "the large block was written");
    cr_assert_geq(b.mapped - a.mapped, MiB + 10 * MiB + 4096, "each block's own mapping");
    tarn_free(large);
    tarn_free(huge);
    tarn_free(far);
    tarn_heap_stats_t c = stats();
    cr_assert_eq(c.allocated, a.allocated);
    cr_assert_eq(c.large_blocks, a.large_blocks);
    cr_assert_eq(c.huge_blocks, a.huge_blocks);
    cr_assert_eq(c.unmaps, b.unmaps + 2, "the huge and far mappings went back");
    cr_assert_geq(c.unmapped_bytes - b.unmapped_bytes, 10 * MiB + 4096);
    cr_assert_eq(c.cached_segments, b.cached_segments + 1, "the large block's segment is cached");
    cr_assert_geq(b.peak_mapped, b.mapped);
    cr_assert_lt(c.mapped, b.mapped);
    cr_assert_geq(c.peak_mapped, b.mapped, "the peak of the mappings stayed");
}

enum { PER_THREAD = 1000 };
static void *thread_blocks[2][PER_THREAD];
static pthread_barrier_t allocated, checked;

static void *allocate_and_wait(void *arg) {
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        thread_blocks[0][i] = tarn_malloc(100);
    pthread_barrier_wait(&allocated);
    pthread_barrier_wait(&checked);
    for (int i = 0; i < PER_THREAD; i++)
        tarn_free(thread_blocks[0][i]);
    return NULL;
}

static void *allocate_and_exit(void *arg) {
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        thread_blocks[1][i] = tarn_malloc(100);
    return NULL;
}

/* A live thread's heap and an exited thread's, seen from a third thread. */
Test(heap_stats, every_thread_heap_counts) {
    unsigned cls = tarn__size_class(100);
    tarn_heap_stats_t a = stats();
    pthread_barrier_init(&allocated, NULL, 2);
    pthread_barrier_init(&checked, NULL, 2);
    pthread_t live, gone;
    pthread_create(&live, NULL, allocate_and_wait, NULL);
    pthread_barrier_wait(&allocated);
    pthread_create(&gone, NULL, allocate_and_exit, NULL); /* a heap of its own: none to adopt */
    pthread_join(gone, NULL);
    tarn_heap_stats_t b = stats();
    cr_assert_eq(b.classes[cls].live_blocks, a.classes[cls].live_blocks + 2 * PER_THREAD);
    cr_assert_eq(b.allocated, a.allocated + 2 * PER_THREAD * 112, "%zu -> %zu", a.allocated,
                 b.allocated);
    cr_assert_geq(b.heaps, a.heaps + 2);
    for (int i = 0; i < PER_THREAD; i++)
        tarn_free(thread_blocks[1][i]);
    tarn_heap_stats_t c = stats();
    cr_assert_eq(c.classes[cls].live_blocks, a.classes[cls].live_blocks + PER_THREAD,
                 "frees into an exited thread's heap are taken back at once");
    pthread_barrier_wait(&checked);
    pthread_join(live, NULL);
    cr_assert_eq(stats().allocated, a.allocated);
}

Test(heap_stats, peak_in_use_stays_after_the_frees) {
    enum { N = 8192 };
    static void *v[N];
    tarn_heap_stats_t a = stats();
    for (int i = 0; i < N; i++)
        v[i] = tarn_malloc(KiB);
    tarn_heap_stats_t b = stats();
    cr_assert_geq(b.peak_in_use, b.in_use);
    cr_assert_geq(b.in_use - a.in_use, N * KiB);
    for (int i = 0; i < N; i++)
        tarn_free(v[i]);
    tarn_heap_stats_t c = stats();
    cr_assert_lt(c.in_use, b.in_use - N * KiB / 2, "in_use fell with the frees");
    cr_assert_geq(c.peak_in_use, b.in_use, "the peak stayed");
    cr_assert_gt(c.purges, a.purges, "the budget purged the emptied pages");
    cr_assert_gt(c.purged_bytes, a.purged_bytes);
    cr_assert_lt(c.unused, 2 * MiB, "what stays unused is within the budget: %zu", c.unused);
}

/* mallopt(M_TRIM_THRESHOLD) sets the budget's floor. */
Test(heap_stats, the_budget_floor_keeps_what_it_is_set_to) {
    enum { N = 8192 };
    static void *v[N];
    tarn__purge_set_floor(64 * MiB);
    for (int i = 0; i < N; i++)
        v[i] = tarn_malloc(KiB);
    tarn_heap_stats_t b = stats();
    for (int i = 0; i < N; i++)
        tarn_free(v[i]);
    tarn_heap_stats_t c = stats();
    tarn__purge_set_floor(TARN__DIRTY_MIN);
    cr_assert_eq(c.purges, b.purges, "nothing purged under the floor");
    cr_assert_geq(c.unused, 6 * MiB, "the emptied pages stay committed: %zu", c.unused);
    tarn_collect(true);
    cr_assert_lt(stats().unused, MiB, "tarn_collect still gives them back");
}

static atomic_bool churn_stop;

/* Maps and unmaps all the time: huge blocks grown by mremap (which may move
 * them), large blocks' segments, pages of small blocks. */
static void *churn(void *arg) {
    size_t seed = (size_t)(uintptr_t)arg;
    while (!atomic_load(&churn_stop)) {
        char *h = tarn_malloc(5 * MiB + seed * 4096);
        h = tarn_realloc(h, 40 * MiB);
        char *l = tarn_malloc(MiB);
        void *v[200];
        for (int i = 0; i < 200; i++)
            v[i] = tarn_malloc(2000);
        for (int i = 0; i < 200; i++)
            tarn_free(v[i]);
        tarn_free(l);
        tarn_free(h);
        tarn_collect(true);
    }
    return NULL;
}

/* Reading while other threads unmap what is read must stay memory-safe (this
 * runs under ASan too); the figures are then only roughly consistent. */
Test(heap_stats, reading_while_other_threads_map_and_unmap) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i);
    uint64_t end = tarn__os_now_ms() + 500;
    while (tarn__os_now_ms() < end) {
        tarn_heap_stats_t s = stats();
        cr_assert_leq(s.huge_blocks, 4, "%zu huge blocks", s.huge_blocks);
        cr_assert_leq(s.segments, 16, "%zu segments", s.segments);
    }
    atomic_store(&churn_stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

/* ---- errno is left alone on success ------------------------------------ */

#define KEEPS_ERRNO(call)                                                                          \
    do {                                                                                           \
        errno = EDOM;                                                                              \
        call;                                                                                      \
        cr_assert_eq(errno, EDOM, "%s changed errno to %d", #call, errno);                         \
    } while (0)

/* Not a constant: clang warns of a constant alignment that is not a power
 * of two, as alloc_align lets it. */
static volatile size_t not_pow2 = 24;

Test(heap_errno, every_call_that_succeeds_keeps_errno) {
    size_t sizes[] = {1, 100, 5000, 100 * KiB, MiB, 5 * MiB};
    for (int i = 0; i < 6; i++) {
        size_t n = sizes[i];
        void *p, *q;
        KEEPS_ERRNO(p = tarn_malloc(n));
        KEEPS_ERRNO(q = tarn_realloc(p, n * 3));
        KEEPS_ERRNO(p = tarn_realloc(q, n / 2 + 1));
        KEEPS_ERRNO(cr_assert_geq(tarn_usable_size(p), n / 2 + 1));
        KEEPS_ERRNO(tarn_free(p));
        KEEPS_ERRNO(p = tarn_calloc(n, 1));
        KEEPS_ERRNO(q = tarn_reallocarray(p, n, 2));
        KEEPS_ERRNO(tarn_free_sized(q, n * 2));
        KEEPS_ERRNO(p = tarn_memalign(4096, n));
        KEEPS_ERRNO(tarn_free_aligned_sized(p, 4096, n));
        KEEPS_ERRNO(p = tarn_memalign(not_pow2, n));
        KEEPS_ERRNO(tarn_free(p));
        KEEPS_ERRNO(cr_assert_eq(tarn_posix_memalign(&p, 64, n), 0));
        KEEPS_ERRNO(tarn_free(p));
    }
    KEEPS_ERRNO(tarn_collect(true));
}

/* Maps a page at a, so that a mapping ending there cannot grow in place
 * (if something is there already, it cannot either). */
static void *block_address(void *a) {
    void *m = mmap(a, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* The case the issue found: mremap in place fails (ENOMEM), the move works. */
Test(heap_errno, a_huge_block_grown_by_a_move_keeps_errno) {
    char *p = tarn_malloc(8 * MiB);
    memset(p, 0x3c, 8 * MiB);
    tarn__segment_t *seg = tarn__segment_of(p);
    void *wall = block_address((char *)seg + seg->size);
    errno = EDOM;
    char *q = tarn_realloc(p, 50 * MiB);
    cr_assert_not_null(q);
    cr_assert_eq(errno, EDOM, "errno %d", errno);
    cr_assert_neq(q, p, "it could not grow in place");
    for (size_t i = 0; i < 8 * MiB; i += 4096)
        cr_assert_eq(q[i], 0x3c, "byte %zu", i);
    tarn_free(q);
    if (wall) munmap(wall, 4096);
}

Test(heap_errno, a_large_block_outgrowing_its_segment_keeps_errno) {
    char *p = tarn_malloc(2 * MiB);
    memset(p, 0x3d, 2 * MiB);
    void *wall = block_address((char *)tarn__segment_of(p) + TARN__SEG_SIZE);
    errno = EDOM;
    char *q = tarn_realloc(p, 6 * MiB);
    cr_assert_not_null(q);
    cr_assert_eq(errno, EDOM, "errno %d", errno);
    for (size_t i = 0; i < 2 * MiB; i += 4096)
        cr_assert_eq(q[i], 0x3d, "byte %zu", i);
    tarn_free(q);
    if (wall) munmap(wall, 4096);
}

/* mremap fails altogether (injected); realloc then copies into a new
 * mapping, and succeeds: errno stays. */
Test(heap_errno, a_failed_remap_then_a_copy_keeps_errno) {
    char *p = tarn_malloc(8 * MiB);
    memset(p, 0x3e, 8 * MiB);
    size_t unmaps = stats().unmaps;
    tarn__os_fail(0, 2); /* growing in place, then moving the pages */
    errno = EDOM;
    char *q = tarn_realloc(p, 20 * MiB);
    tarn__os_fail(-1, 0);
    cr_assert_not_null(q);
    cr_assert_eq(errno, EDOM, "errno %d", errno);
    cr_assert_eq(stats().unmaps, unmaps + 1, "copied, and the old mapping unmapped");
    for (size_t i = 0; i < 8 * MiB; i += 4096)
        cr_assert_eq(q[i], 0x3e, "byte %zu", i);
    tarn_free(q);
}

/* ---- memalign: glibc 2.36's rounding ----------------------------------- */

Test(heap_memalign, an_alignment_not_a_power_of_two_rounds_up) {
    size_t aligns[] = {0, 1, 3, 24, 48, 100, 3000, 4097, 40000, 3 * MiB, 5 * MiB};
    for (int i = 0; i < 11; i++) {
        size_t want = tarn__pow2_ceil(aligns[i]);
        errno = EDOM;
        char *p = tarn_memalign(aligns[i], 200);
        cr_assert_not_null(p, "align %zu", aligns[i]);
        cr_assert_eq((uintptr_t)p % want, 0, "align %zu: %p", aligns[i], (void *)p);
        cr_assert_eq(errno, EDOM);
        cr_assert_geq(tarn_usable_size(p), 200);
        memset(p, 1, 200);
        tarn_free(p);
    }
}

/* aligned_alloc keeps C17's rule: a power of two, or EINVAL. */
Test(heap_memalign, aligned_alloc_refuses_an_alignment_not_a_power_of_two) {
    size_t bad[] = {0, 3, 24, 100, 4097, 3 * MiB};
    for (int i = 0; i < 6; i++) {
        errno = 0;
        cr_assert_null(tarn_aligned_alloc(bad[i] + not_pow2 * 0, 200), "align %zu", bad[i]);
        cr_assert_eq(errno, EINVAL, "align %zu", bad[i]);
    }
    char *p = tarn_aligned_alloc(4096, 200);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 4096, 0);
    tarn_free(p);
}

/* ---- realloc keeps a block that fits ----------------------------------- */

/* 400 blocks of mixed sizes, every other one freed so their pages are at
 * most half in use, the rest realloc'ed to their own size and to a little
 * less (same class): none moves. */
Test(heap_realloc, a_same_size_realloc_never_moves) {
    enum { N = 800 };
    static char *v[N];
    static size_t size[N];
    for (int i = 0; i < N; i++) {
        size[i] = 1 + (size_t)i * 7919 % 3000;
        v[i] = tarn_malloc(size[i]);
    }
    for (int i = 0; i < N; i += 2)
        tarn_free(v[i]);
    int moved = 0;
    for (int i = 1; i < N; i += 2) {
        unsigned cls = tarn__size_class(size[i]);
        size_t smaller = cls ? tarn__class_size(cls - 1) + 1 : 1;
        moved += tarn_realloc(v[i], size[i]) != v[i];
        moved += tarn_realloc(v[i], smaller) != v[i];
    }
    cr_assert_eq(moved, 0, "%d of %d reallocs moved", moved, N);
    for (int i = 1; i < N; i += 2)
        tarn_free(v[i]);
}

Test(heap_realloc, large_and_huge_same_size_reallocs_stay) {
    size_t sizes[] = {200 * KiB, 3 * MiB, 9 * MiB};
    for (int i = 0; i < 3; i++) {
        char *p = tarn_malloc(sizes[i]);
        cr_assert_eq(tarn_realloc(p, sizes[i]), p, "size %zu", sizes[i]);
        cr_assert_eq(tarn_realloc(p, sizes[i] - 100), p, "size %zu - 100", sizes[i]);
        tarn_free(p);
    }
}

/* ---- sized frees ------------------------------------------------------- */

Test(heap_sized, sized_frees_free) {
    tarn_heap_stats_t a = stats();
    void *p = tarn_malloc(100), *q = tarn_aligned_alloc(256, 1000), *r = tarn_malloc(MiB);
    tarn_free_sized(p, 100);
    tarn_free_aligned_sized(q, 256, 1000);
    tarn_free_sized(r, MiB);
    tarn_free_sized(NULL, 5);
    tarn_free_aligned_sized(NULL, 3, 5);
    cr_assert_eq(stats().allocated, a.allocated);
}

Test(heap_sized, a_size_larger_than_the_block_is_reported) {
    test_capture_errors();
    tarn_heap_stats_t a = stats();
    char *p = tarn_malloc(100);
    tarn_free_sized(p, 113);
    expect_report("free_sized of");
    cr_assert_eq(stats().allocated, a.allocated + 112, "the block stays allocated");
    tarn_free_sized(p, 112); /* its block's size: fine */
    cr_assert_eq(stats().allocated, a.allocated);
    cr_assert_eq(test_error_count, 0);
}

Test(heap_sized, a_wrong_alignment_is_reported) {
    test_capture_errors();
    char *p = tarn_aligned_alloc(64, 100);
    size_t not_it = ((uintptr_t)p & -(uintptr_t)p) * 2; /* twice p's own alignment */
    tarn_free_aligned_sized(p, not_it, 100);
    expect_report("alignment");
    tarn_free_aligned_sized(p, 64, 100);
    cr_assert_eq(test_error_count, 0);
}

Test(heap_sized, misuse_aborts_by_default, .signal = SIGABRT) {
    char *p = tarn_malloc(100);
    tarn_free_sized(p, 4000);
}

/* ---- the attributes of heap.h ------------------------------------------ */

static volatile size_t ten = 10;

Test(heap_attributes, the_compiler_sees_block_sizes) {
    char *p = tarn_malloc(10);
    char *q = tarn_calloc(3, 7);
    char *r = tarn_malloc(ten);
    cr_assert_eq(__builtin_object_size(p, 0), 10);
    cr_assert_eq(__builtin_object_size(q, 0), 21);
    cr_assert_eq(__builtin_dynamic_object_size(r, 0), 10);
    tarn_free(p);
    tarn_free(q);
    tarn_free(r);
}
