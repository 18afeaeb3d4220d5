/* The fixed-size pool: behaviour, memory given back, misuse, threads. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static tarn_fixed_t *make(size_t size, size_t init, size_t grow, size_t keep) {
    tarn_fixed_options_t o = {
        .obj_size = size, .init_count = init, .grow_count = grow, .keep_empty = keep};
    tarn_fixed_t *pool = tarn_fixed_create_ex(&o);
    cr_assert_not_null(pool, "create(%zu, %zu, %zu): errno %d", size, init, grow, errno);
    return pool;
}

static size_t in_use(tarn_fixed_t *pool) {
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st);
    return st.in_use;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

/* No two live objects overlap: sorted, each starts at least size after the last. */
static void assert_disjoint(void **v, size_t n, size_t size) {
    void **s = malloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_ptr);
    for (size_t i = 1; i < n; i++)
        cr_assert((uintptr_t)s[i] - (uintptr_t)s[i - 1] >= size, "objects %p and %p overlap",
                  s[i - 1], s[i]);
    free(s);
}

Test(fixed, alloc_free_roundtrip_keeps_objects_distinct_and_aligned) {
    tarn_fixed_t *pool = make(24, 100, 100, 0);
    enum { N = 1000 };
    void *v[N];
    for (size_t i = 0; i < N; i++) {
        v[i] = tarn_fixed_alloc(pool);
        cr_assert_not_null(v[i]);
        cr_assert_eq((uintptr_t)v[i] % 16, 0, "16-byte alignment");
        memset(v[i], (int)i, 24);
    }
    assert_disjoint(v, N, 24);
    for (size_t i = 0; i < N; i++) {
        unsigned char *c = v[i];
        for (int k = 0; k < 24; k++)
            cr_assert_eq(c[k], (unsigned char)i, "object %zu overwritten", i);
    }
    cr_assert_eq(in_use(pool), N);
    cr_assert_eq(tarn_fixed_check(pool), 0);
    for (size_t i = 0; i < N; i++)
        tarn_fixed_free(pool, v[i]);
    cr_assert_eq(in_use(pool), 0);
    cr_assert_eq(tarn_fixed_check(pool), 0);
    tarn_fixed_destroy(pool);
}

Test(fixed, last_freed_object_is_reused_first) {
    tarn_fixed_t *pool = tarn_fixed_create(64, 16, 16);
    void *a = tarn_fixed_alloc(pool), *b = tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, a);
    cr_assert_eq(tarn_fixed_alloc(pool), a);
    tarn_fixed_free(pool, b);
    cr_assert_eq(tarn_fixed_alloc(pool), b);
    tarn_fixed_destroy(pool);
}

Test(fixed, every_size_from_1_byte_to_1_mib_works) {
    static const size_t sizes[] = {1, 7, 8, 15, 16, 17, 24, 100, 255, 4096, 65537, (size_t)1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        tarn_fixed_t *pool = tarn_fixed_create(sizes[k], 3, 2);
        cr_assert_not_null(pool, "size %zu", sizes[k]);
        void *v[9];
        for (int i = 0; i < 9; i++) {
            v[i] = tarn_fixed_alloc(pool);
            cr_assert_not_null(v[i], "size %zu object %d", sizes[k], i);
            memset(v[i], 0x5a, sizes[k]);
        }
        assert_disjoint(v, 9, sizes[k]);
        for (int i = 0; i < 9; i++)
            tarn_fixed_free(pool, v[i]);
        cr_assert_eq(tarn_fixed_check(pool), 0);
        tarn_fixed_destroy(pool);
    }
}

Test(fixed, requested_alignment_is_honoured) {
    static const size_t aligns[] = {16, 64, 4096, (size_t)1 << 20};
    for (size_t k = 0; k < 4; k++) {
        tarn_fixed_options_t o = {
            .obj_size = 40, .init_count = 4, .grow_count = 4, .align = aligns[k]};
        tarn_fixed_t *pool = tarn_fixed_create_ex(&o);
        cr_assert_not_null(pool);
        for (int i = 0; i < 10; i++) {
            void *p = tarn_fixed_alloc(pool);
            cr_assert_eq((uintptr_t)p % aligns[k], 0, "align %zu: %p", aligns[k], p);
        }
        tarn_fixed_destroy(pool);
    }
}

Test(fixed, init_count_objects_need_no_further_os_call) {
    tarn_fixed_t *pool = tarn_fixed_create(32, 500, 100);
    tarn__os_fail(0, -1); /* every map from now on fails */
    void *v[500];
    for (int i = 0; i < 500; i++)
        cr_assert_not_null(v[i] = tarn_fixed_alloc(pool), "object %d", i);
    tarn__os_fail(-1, 0);
    for (int i = 0; i < 500; i++)
        tarn_fixed_free(pool, v[i]);
    cr_assert_eq(tarn_fixed_check(pool), 0);
    tarn_fixed_destroy(pool);
}

Test(fixed, growth_fails_cleanly_when_the_os_refuses_and_recovers) {
    /* 1 MiB objects, one per block: 2 MiB slots, so the first chunk of the
     * slot space holds 32 blocks and the 33rd needs a new chunk. */
    size_t per_chunk = ((size_t)1 << TARN_FIXED_CHUNK_SHIFT_) / ((size_t)2 << 20);
    tarn_fixed_t *pool = tarn_fixed_create((size_t)1 << 20, 1, 1);
    void **v = malloc((per_chunk + 1) * sizeof *v);
    for (size_t i = 0; i < per_chunk; i++)
        cr_assert_not_null(v[i] = tarn_fixed_alloc(pool), "object %zu", i);
    tarn__os_fail(0, -1);
    errno = 0;
    cr_assert_null(tarn_fixed_alloc(pool), "a new chunk must be needed here");
    cr_assert_eq(errno, ENOMEM);
    tarn__os_fail(-1, 0);
    cr_assert_not_null(v[per_chunk] = tarn_fixed_alloc(pool),
                       "the pool works again once the OS gives memory");
    for (size_t i = 0; i <= per_chunk; i++)
        tarn_fixed_free(pool, v[i]);
    cr_assert_eq(in_use(pool), 0);
    cr_assert_eq(tarn_fixed_check(pool), 0);
    free(v);
    tarn_fixed_destroy(pool);
}

Test(fixed, init_count_beyond_one_block_limit_is_all_mapped) {
    /* 3 GiB of 1 MiB objects: more than one block can hold (2 GiB). */
    tarn_fixed_t *pool = tarn_fixed_create((size_t)1 << 20, 3072, 0);
    cr_assert_not_null(pool, "errno %d", errno);
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st);
    cr_assert_geq(st.blocks, 2);
    cr_assert_geq(st.bytes_mapped, (size_t)3072 << 20);
    tarn_fixed_destroy(pool);
}

Test(fixed, pool_without_growth_fails_cleanly_when_full) {
    tarn_fixed_t *pool = tarn_fixed_create(48, 10, 0);
    void *v[10];
    for (int i = 0; i < 10; i++)
        cr_assert_not_null(v[i] = tarn_fixed_alloc(pool));
    errno = 0;
    cr_assert_null(tarn_fixed_alloc(pool));
    cr_assert_eq(errno, ENOMEM);
    tarn_fixed_free(pool, v[3]);
    cr_assert_eq(tarn_fixed_alloc(pool), v[3]);
    tarn_fixed_destroy(pool);
}

Test(fixed, a_wholly_free_block_hands_out_memory_in_order_again) {
    tarn_fixed_t *pool = make(64, 64, 64, 4);
    void *v[192];
    for (int i = 0; i < 192; i++)
        v[i] = tarn_fixed_alloc(pool);
    /* free the first block's objects in a scrambled order */
    for (int i = 0; i < 64; i++)
        tarn_fixed_free(pool, v[(i * 37) % 64]);
    /* the current (third) block is exhausted: the next block is the first one, reset */
    char *prev = tarn_fixed_alloc(pool);
    cr_assert_eq((void *)prev, v[0], "the reset block starts at its first object");
    for (int i = 1; i < 64; i++) {
        char *p = tarn_fixed_alloc(pool);
        cr_assert_eq(p, prev + 64, "object %d is not the next in address order", i);
        prev = p;
    }
    cr_assert_eq(tarn_fixed_check(pool), 0);
    tarn_fixed_destroy(pool);
}

static void fill_and_free(tarn_fixed_t *pool, size_t n, size_t size, size_t *rss_full,
                          size_t *rss_after) {
    void **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i] = tarn_fixed_alloc(pool);
        cr_assert_not_null(v[i]);
        memset(v[i], 1, size);
    }
    *rss_full = tarn__os_rss();
    for (size_t i = 0; i < n; i++)
        tarn_fixed_free(pool, v[(i * 7919) % n]);
    *rss_after = tarn__os_rss();
    free(v);
}

Test(fixed, memory_goes_back_to_the_os_beyond_keep_empty) {
    size_t n = 64 * 1024, size = 1024; /* 64 MiB */
    tarn_fixed_t *pool = make(size, 1024, 1024, TARN_FIXED_KEEP_NONE);
    size_t full, after;
    fill_and_free(pool, n, size, &full, &after);
    cr_assert(after + ((size_t)60 << 20) <= full, "rss %zu MiB -> %zu MiB", full >> 20,
              after >> 20);
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st);
    cr_assert_leq(st.blocks, 1, "only the current block stays");
    cr_assert_geq(st.os_releases, 63);
    tarn_fixed_destroy(pool);
}

/* The batch pattern: everything freed, then allocated again at once. */
Test(fixed, empty_blocks_reused_within_the_keep_time_stay_mapped) {
    size_t n = 64 * 1024, size = 1024;
    tarn_fixed_t *pool = tarn_fixed_create(size, 1024, 1024);
    size_t full, after;
    for (int round = 0; round < 3; round++)
        fill_and_free(pool, n, size, &full, &after);
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st);
    cr_assert_eq(st.os_releases, 0, "no block waited the keep time unused");
    cr_assert_eq(st.os_maps, 64, "rounds 2 and 3 reused round 1's blocks");
    cr_assert_eq(st.empty_blocks, st.blocks);
    tarn_fixed_destroy(pool);
}

/* Allocates until the pool has taken its slow path once (its current block
 * ran out), then frees what it took. */
static void reach_the_slow_path(tarn_fixed_t *pool, size_t per_block) {
    void **v = malloc((per_block + 1) * sizeof *v);
    for (size_t i = 0; i <= per_block; i++)
        cr_assert_not_null(v[i] = tarn_fixed_alloc(pool));
    for (size_t i = 0; i <= per_block; i++)
        tarn_fixed_free(pool, v[i]);
    free(v);
}

Test(fixed, a_gib_freed_goes_back_to_the_os_after_the_keep_time) {
    size_t size = 256, per_block = 4096, n = ((size_t)1 << 30) / size;
    void **v = malloc(n * sizeof *v);
    memset(v, 1,
           n * sizeof *v); /* resident before the baseline is read (not 0: calloc would skip it) */
    tarn_fixed_t *pool = tarn_fixed_create(size, per_block, per_block);
    size_t base = tarn__os_rss();
    for (size_t i = 0; i < n; i++) {
        cr_assert_not_null(v[i] = tarn_fixed_alloc(pool));
        memset(v[i], 1, size);
    }
    cr_assert_geq(tarn__os_rss(), base + ((size_t)1 << 30), "the objects are resident");
    for (size_t i = 0; i < n; i++)
        tarn_fixed_free(pool, v[(i * 7919) % n]);
    free(v);
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st);
    cr_assert_eq(st.os_releases, 0, "just emptied: kept for reuse");
    usleep((TARN_FIXED_KEEP_MS + 200) * 1000);
    reach_the_slow_path(pool, per_block);
    size_t rss = tarn__os_rss();
    tarn_fixed_stats(pool, &st);
    cr_assert_lt(st.bytes_mapped, (size_t)64 << 20, "the pool holds %zu MiB",
                 st.bytes_mapped >> 20);
    cr_assert_lt(rss, base + ((size_t)64 << 20), "rss %zu MiB above the baseline",
                 (rss - base) >> 20);
    cr_assert_eq(tarn_fixed_check(pool), 0);
    tarn_fixed_destroy(pool);
}

Test(fixed, destroy_returns_everything) {
    size_t before = tarn__os_rss();
    tarn_fixed_t *pool = tarn_fixed_create(4096, 8192, 0); /* 32 MiB */
    for (int i = 0; i < 8192; i++)
        memset(tarn_fixed_alloc(pool), 1, 4096);
    cr_assert_geq(tarn__os_rss(), before + ((size_t)30 << 20));
    tarn_fixed_destroy(pool);
    size_t slack = (size_t)2 << 20;
#ifdef __SANITIZE_ADDRESS__
    slack += ((size_t)32 << 20) / 8; /* AddressSanitizer's shadow of the slots stays */
#endif
    cr_assert_leq(tarn__os_rss(), before + slack);
}

Test(fixed, stats_count_what_is_live_and_mapped) {
    tarn_fixed_t *pool = make(100, 10, 10, 100);
    void *v[25];
    for (int i = 0; i < 25; i++)
        v[i] = tarn_fixed_alloc(pool);
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st);
    cr_assert_eq(st.in_use, 25);
    cr_assert_eq(st.bytes_in_use, 25 * 112, "objects round up to 16 bytes");
    cr_assert_eq(st.blocks, 3);
    cr_assert_eq(st.os_maps, 3);
    for (int i = 0; i < 10; i++)
        tarn_fixed_free(pool, v[i]);
    tarn_fixed_stats(pool, &st);
    cr_assert_eq(st.in_use, 15);
    cr_assert_eq(st.empty_blocks, 1);
    cr_assert_eq(st.os_releases, 0, "keep_empty 100 keeps the block");
    tarn_fixed_destroy(pool);
}

/* ---- bad input ---------------------------------------------------------- */

Test(fixed_input, bad_sizes_and_alignments_are_rejected) {
    errno = 0;
    cr_assert_null(tarn_fixed_create(0, 10, 10));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_fixed_create(((size_t)1 << 30) + 1, 1, 1));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_fixed_create(16, 0, 0));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_fixed_create(SIZE_MAX / 2, 4, 4));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_fixed_create(1 << 20, SIZE_MAX / 1024, 1));
    cr_assert_eq(errno, ENOMEM, "count * size overflows");
    errno = 0;
    cr_assert_null(tarn_fixed_create(1, SIZE_MAX, 0), "the block count must not wrap to 0");
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(tarn_fixed_create(16, (size_t)1 << 44, 0), "more blocks than slots");
    cr_assert_eq(errno, ENOMEM);
    tarn_fixed_options_t o = {.obj_size = 16, .init_count = 1, .align = 48};
    errno = 0;
    cr_assert_null(tarn_fixed_create_ex(&o));
    cr_assert_eq(errno, EINVAL);
    o.align = (size_t)2 << 20;
    errno = 0;
    cr_assert_null(tarn_fixed_create_ex(&o));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_fixed_create_ex(NULL));
    cr_assert_eq(errno, EINVAL);
}

Test(fixed_input, create_fails_cleanly_without_memory) {
    tarn__os_fail(0, -1);
    errno = 0;
    cr_assert_null(tarn_fixed_create(64, 100, 100));
    cr_assert_eq(errno, ENOMEM);
    tarn__os_fail(1, -1); /* the pool struct maps, no range can be reserved */
    errno = 0;
    cr_assert_null(tarn_fixed_create(64, 100, 100));
    cr_assert_eq(errno, ENOMEM);
    tarn__os_fail(-1, 0);
    cr_assert_not_null(tarn_fixed_create(64, 100, 100));
}

Test(fixed_input, free_null_is_a_no_op) {
    tarn_fixed_t *pool = tarn_fixed_create(64, 4, 4);
    test_capture_errors();
    tarn_fixed_free(pool, NULL);
    cr_assert_eq(test_error_count, 0);
    tarn_fixed_destroy(pool);
}

/* Each misuse is reported once, and the pool is left exactly as it was. */
static void expect_rejected(tarn_fixed_t *pool, void *p, const char *needle) {
    tarn_pool_stats_t before, after;
    tarn_fixed_stats(pool, &before);
    test_capture_errors();
    tarn_fixed_free(pool, p);
    expect_report(needle);
    cr_assert(strstr(test_last_error, "in fixed pool"), "report names the pool: %s",
              test_last_error);
    tarn_fixed_stats(pool, &after);
    cr_assert_eq(before.in_use, after.in_use, "a rejected free changed the pool");
    cr_assert_eq(tarn_fixed_check(pool), 0);
    cr_assert_eq(test_error_count, 0, "check found damage: %s", test_last_error);
}

Test(fixed_misuse, double_free_is_reported) {
    tarn_fixed_t *pool = tarn_fixed_create(24, 8, 8);
    void *a = tarn_fixed_alloc(pool), *b = tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, a);
    expect_rejected(pool, a, "double free of");
    tarn_fixed_free(pool, b);
    expect_rejected(pool, a, "double free of"); /* not at the head of the list */
    cr_assert(strstr(test_last_error, "(size 32)"), "report gives the object size: %s",
              test_last_error);
    tarn_fixed_destroy(pool);
}

Test(fixed_misuse, double_free_in_another_block_is_reported) {
    tarn_fixed_t *pool = make(64, 4, 4, 10);
    void *v[12];
    for (int i = 0; i < 12; i++)
        v[i] = tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, v[1]); /* first block: retired full, not current */
    expect_rejected(pool, v[1], "double free of");
    tarn_fixed_destroy(pool);
}

Test(fixed_misuse, double_free_after_the_block_was_reset_is_reported) {
    tarn_fixed_t *pool = make(64, 4, 4, 10);
    void *v[12];
    for (int i = 0; i < 12; i++)
        v[i] = tarn_fixed_alloc(pool);
    for (int i = 0; i < 4; i++)
        tarn_fixed_free(pool, v[i]); /* block 1 empties and resets */
    expect_rejected(pool, v[2], "double free of");
    tarn_fixed_destroy(pool);
}

Test(fixed_misuse, stale_pointer_into_a_released_block_is_reported) {
    tarn_fixed_t *pool = make(64, 4, 4, TARN_FIXED_KEEP_NONE);
    void *v[12];
    for (int i = 0; i < 12; i++)
        v[i] = tarn_fixed_alloc(pool);
    for (int i = 0; i < 4; i++)
        tarn_fixed_free(pool, v[i]); /* block 1 goes back to the OS */
    expect_rejected(pool, v[0], "stale pointer");
    tarn_fixed_destroy(pool);
}

Test(fixed_misuse, foreign_pointers_are_reported) {
    tarn_fixed_t *pool = tarn_fixed_create(32, 8, 8);
    tarn_fixed_t *other = tarn_fixed_create(32, 8, 8);
    void *mine = tarn_fixed_alloc(pool);
    int on_stack;
    void *heap = malloc(32);
    expect_rejected(pool, heap, "foreign pointer");
    expect_rejected(pool, &on_stack, "foreign pointer");
    expect_rejected(pool, tarn_fixed_alloc(other), "foreign pointer");
    expect_rejected(pool, (void *)0x10, "foreign pointer");
    tarn_fixed_free(pool, mine);
    free(heap);
    tarn_fixed_destroy(other);
    tarn_fixed_destroy(pool);
}

Test(fixed_misuse, interior_pointers_are_reported) {
    tarn_fixed_t *pool = tarn_fixed_create(48, 8, 8);
    char *p = tarn_fixed_alloc(pool);
    tarn_fixed_alloc(pool);
    expect_rejected(pool, p + 8, "interior pointer");
    expect_rejected(pool, p + 47, "interior pointer");
    tarn_fixed_destroy(pool);
}

Test(fixed_misuse, objects_never_handed_out_are_reported) {
    tarn_fixed_t *pool = tarn_fixed_create(48, 8, 8);
    char *p = tarn_fixed_alloc(pool);
    expect_rejected(pool, p + 48, "never-allocated");
    expect_rejected(pool, p + 48 * 5, "never-allocated");
    tarn_fixed_destroy(pool);
}

Test(fixed_misuse, a_live_object_holding_the_freed_tag_is_still_freed) {
    tarn_fixed_t *pool = tarn_fixed_create(16, 8, 8);
    void **p = tarn_fixed_alloc(pool);
    p[1] = (void *)((uintptr_t)p ^ (uintptr_t)pool); /* user data equal to the tag */
    test_capture_errors();
    tarn_fixed_free(pool, p);
    cr_assert_eq(test_error_count, 0, "false report: %s", test_last_error);
    cr_assert_eq(in_use(pool), 0);
    cr_assert_eq(tarn_fixed_alloc(pool), (void *)p);
    tarn_fixed_destroy(pool);
}

Test(fixed_misuse, double_free_aborts_by_default, .signal = SIGABRT) {
    tarn_fixed_t *pool = tarn_fixed_create(24, 8, 8);
    void *a = tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, a);
    tarn_fixed_free(pool, a);
}

Test(fixed_misuse, foreign_free_aborts_by_default, .signal = SIGABRT) {
    tarn_fixed_t *pool = tarn_fixed_create(24, 8, 8);
    static char not_ours[64];
    tarn_fixed_free(pool, not_ours);
}

Test(fixed_misuse, check_finds_a_corrupted_free_list) {
    tarn_fixed_t *pool = tarn_fixed_create(32, 8, 8);
    void **a = tarn_fixed_alloc(pool);
    tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, a);
    a[0] = (void *)0x1234; /* a write after free */
    test_capture_errors();
    cr_assert_eq(tarn_fixed_check(pool), -1);
    expect_report("corrupted free list");
}

Test(fixed_misuse, a_free_list_corrupted_into_a_cycle_cannot_hang_a_free) {
    tarn_fixed_t *pool = tarn_fixed_create(16, 8, 8);
    void **a = tarn_fixed_alloc(pool), **b = tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, a);
    a[0] = a;                                        /* write after free: a cycle */
    b[1] = (void *)((uintptr_t)b ^ (uintptr_t)pool); /* forces the list walk */
    test_capture_errors();
    tarn_fixed_free(pool, b);
    cr_assert_eq(test_error_count, 0, "b is live: %s", test_last_error);
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st); /* walks the same list: must return */
    cr_assert_eq(tarn_fixed_check(pool), -1, "check must see the cycle");
    tarn_fixed_destroy(pool);
}

/* ---- pools sharing the slot space -------------------------------------- */

/* A pool's report names the pool p belongs to, and that pool is untouched. */
static void expect_owner_named(tarn_fixed_t *owner) {
    char name[64];
    snprintf(name, sizeof name, "in a block of fixed pool %p", (void *)owner);
    cr_assert(strstr(test_last_error, name), "report lacks \"%s\": %s", name, test_last_error);
    cr_assert_eq(tarn_fixed_check(owner), 0);
}

Test(fixed_misuse, an_object_of_another_pool_of_the_same_geometry_is_reported) {
    tarn_fixed_t *a = tarn_fixed_create(64, 16, 16), *b = tarn_fixed_create(64, 16, 16);
    void *pa = tarn_fixed_alloc(a);
    tarn_fixed_alloc(b);
    expect_rejected(b, pa, "foreign pointer");
    expect_owner_named(a);
    cr_assert_eq(in_use(a), 1);
    tarn_fixed_free(a, pa);
    cr_assert_eq(test_error_count, 0, "its own pool frees it: %s", test_last_error);
    cr_assert_eq(in_use(a), 0);
    tarn_fixed_destroy(b);
    tarn_fixed_destroy(a);
}

Test(fixed_misuse, an_object_of_a_pool_with_other_slots_is_reported) {
    tarn_fixed_t *small = tarn_fixed_create(64, 16, 16), *big = tarn_fixed_create(64, 4096, 4096);
    void *ps = tarn_fixed_alloc(small), *pb = tarn_fixed_alloc(big);
    expect_rejected(big, ps, "foreign pointer");
    expect_rejected(small, pb, "foreign pointer");
    tarn_fixed_free(small, ps);
    tarn_fixed_free(big, pb);
    cr_assert_eq(test_error_count, 0, "%s", test_last_error);
    tarn_fixed_destroy(small);
    tarn_fixed_destroy(big);
}

Test(fixed_misuse, objects_crossing_between_thread_safe_and_plain_pools_are_reported) {
    tarn_fixed_options_t o = {.obj_size = 64, .init_count = 16, .grow_count = 16, .thread_safe = 1};
    tarn_fixed_t *shared = tarn_fixed_create_ex(&o), *plain = tarn_fixed_create(64, 16, 16);
    void *ps = tarn_fixed_alloc(shared), *pp = tarn_fixed_alloc(plain);
    expect_rejected(plain, ps, "foreign pointer");
    expect_owner_named(shared);
    expect_rejected(shared, pp, "foreign pointer");
    expect_owner_named(plain);
    tarn_fixed_destroy(shared);
    tarn_fixed_destroy(plain);
}

Test(fixed_misuse, a_stale_pointer_into_a_slot_another_pool_took_is_reported) {
    tarn_fixed_t *a = make(64, 16, 16, TARN_FIXED_KEEP_NONE);
    void *v[32];
    for (int i = 0; i < 32; i++)
        v[i] = tarn_fixed_alloc(a);
    for (int i = 0; i < 16; i++)
        tarn_fixed_free(a, v[i]); /* a's first block goes back */
    tarn_fixed_t *b = tarn_fixed_create(64, 16, 16);
    cr_assert_eq(tarn_fixed_alloc(b), v[0], "b's first block reuses the slot a gave back");
    expect_rejected(a, v[1], "foreign pointer");
    expect_owner_named(b);
    expect_rejected(b, v[1], "never-allocated");
    tarn_fixed_destroy(b);
    tarn_fixed_destroy(a);
}

Test(fixed_misuse, misuse_is_caught_in_every_chunk_of_a_pool_that_grew) {
    /* 1 MiB objects, one per 2 MiB slot: 100 blocks span 4 chunks */
    tarn_fixed_t *pool = tarn_fixed_create((size_t)1 << 20, 1, 1);
    char *v[100];
    for (int i = 0; i < 100; i++)
        v[i] = tarn_fixed_alloc(pool);
    uintptr_t first = (uintptr_t)v[0] >> TARN_FIXED_CHUNK_SHIFT_,
              last = (uintptr_t)v[99] >> TARN_FIXED_CHUNK_SHIFT_;
    cr_assert_geq(first > last ? first - last : last - first, 3, "the blocks span 4 chunks");
    for (int i = 0; i < 100; i += 33) {
        expect_rejected(pool, v[i] + 16, "interior pointer");
        tarn_fixed_free(pool, v[i]);
        expect_rejected(pool, v[i], "double free of"); /* its block is empty, kept */
    }
    tarn_fixed_destroy(pool);
}

/* Locked pages cannot be decommitted (madvise fails), so the header of a
 * released block must be cleared by hand for its stale pointers to show:
 * the new pool takes the same struct and slot, and only the header's pool
 * field tells the old pointer from a live one. */
Test(fixed_misuse, a_destroyed_pools_pointer_is_reported_with_locked_pages) {
#ifdef __SANITIZE_ADDRESS__
    cr_skip_test("ASan's shadow reservation cannot be locked");
#endif
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) cr_skip_test("mlockall: %s", strerror(errno));
    test_capture_errors();
    tarn_fixed_t *a = tarn_fixed_create(64, 16, 16);
    void *pa = tarn_fixed_alloc(a);
    tarn_fixed_destroy(a);
    tarn_fixed_t *b = tarn_fixed_create(64, 0, 16);
    cr_assert_not_null(b);
    tarn_fixed_free(b, pa);
    expect_report("stale pointer");
    tarn_fixed_destroy(b);
}

Test(fixed_misuse, a_destroyed_pools_pointer_is_reported) {
    tarn_fixed_t *a = tarn_fixed_create(64, 16, 16), *b = tarn_fixed_create(64, 16, 16);
    void *pa = tarn_fixed_alloc(a);
    tarn_fixed_alloc(b);
    tarn_fixed_destroy(a);
    expect_rejected(b, pa, "stale pointer");
    tarn_fixed_destroy(b);
}

/* 100,000 pools of 64-byte objects, 16 a block, each holding one live
 * object, in a child process limited to 8 GiB of address space: what the
 * child measured comes back through a pipe. */
typedef struct {
    int made, err;
    size_t rss_per_pool, vm_bytes;
} scale_result_t;

static size_t vm_size(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib << 10;
}

static scale_result_t make_many_pools(int n, int limit_address_space) {
    scale_result_t r = {0, 0, 0, 0};
    struct rlimit lim = {(rlim_t)8 << 30, (rlim_t)8 << 30};
    if (limit_address_space && setrlimit(RLIMIT_AS, &lim) != 0) return r.err = errno, r;
    tarn_fixed_t **pools = malloc((size_t)n * sizeof *pools);
    memset(pools, 1, (size_t)n * sizeof *pools); /* resident before the baseline is read */
    size_t base = tarn__os_rss();
    for (; r.made < n; r.made++) {
        tarn_fixed_t *p = tarn_fixed_create(64, 16, 16);
        void *o = p ? tarn_fixed_alloc(p) : NULL;
        if (!o) {
            r.err = errno;
            break;
        }
        memset(o, 1, 64);
        pools[r.made] = p;
    }
    r.rss_per_pool = r.made ? (tarn__os_rss() - base) / (size_t)r.made : 0;
    r.vm_bytes = vm_size();
    return r;
}

Test(fixed_scale, a_hundred_thousand_small_pools_fit_in_8_gib_of_address_space) {
    enum { POOLS = 100000 };
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
#ifdef __SANITIZE_ADDRESS__
        int limit = 0; /* AddressSanitizer reserves terabytes of shadow at start */
#else
        int limit = 1;
#endif
        scale_result_t r = make_many_pools(POOLS, limit);
        _exit(write(fd[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
    }
    scale_result_t r;
    cr_assert_eq(read(fd[0], &r, sizeof r), (ssize_t)sizeof r);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(r.made, POOLS, "only %d pools (errno %d)", r.made, r.err);
    cr_assert_leq(r.rss_per_pool, 5 << 10, "%zu bytes resident per pool", r.rss_per_pool);
#ifndef __SANITIZE_ADDRESS__
    cr_assert_leq(r.vm_bytes, (size_t)1 << 30, "%zu MiB of address space", r.vm_bytes >> 20);
#endif
    cr_log_info("%d pools: %zu bytes resident each, %zu MiB of address space", r.made,
                r.rss_per_pool, r.vm_bytes >> 20);
}

/* Threads creating and destroying pools while another forks: each child
 * must be able to create a pool (no lock inherited taken). */
static atomic_int churn_stop;

static void *churn_pools(void *arg) {
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        tarn_fixed_t *p = tarn_fixed_create(64 + 64 * (size_t)(rand() % 4), 16, 16);
        cr_assert_not_null(p);
        tarn_fixed_alloc(p);
        tarn_fixed_destroy(p);
    }
    return NULL;
}

Test(fixed_threads, a_child_forked_while_threads_create_pools_can_create_one) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, churn_pools, NULL);
    for (int i = 0; i < 200; i++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            tarn_fixed_t *p = tarn_fixed_create(64, 16, 16);
            _exit(p && tarn_fixed_alloc(p) ? 0 : 1);
        }
        int status, waited = 0;
        while (waitpid(pid, &status, WNOHANG) == 0 && waited++ < 10000)
            usleep(1000);
        if (waited > 10000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            cr_assert_fail("child %d was stuck for 10 s: a lock came to it taken", i);
        }
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
    }
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

/* ---- random sequences, checked against a shadow -------------------------- */

Test(fixed, random_sequences_keep_every_invariant) {
    tarn_fixed_t *pool = make(40, 50, 30, 2);
    enum { N = 3000 };
    void **live = calloc(N, sizeof *live);
    unsigned seed = 12345;
    size_t count = 0;
    for (int step = 0; step < 200000; step++) {
        size_t i = rand_r(&seed) % N;
        if (live[i]) {
            cr_assert_eq(*(size_t *)live[i], i, "object %zu was overwritten", i);
            tarn_fixed_free(pool, live[i]);
            live[i] = NULL;
            count--;
        } else {
            live[i] = tarn_fixed_alloc(pool);
            cr_assert_not_null(live[i]);
            *(size_t *)live[i] = i;
            count++;
        }
        if (step % 5000 == 0) {
            cr_assert_eq(tarn_fixed_check(pool), 0, "step %d", step);
            cr_assert_eq(in_use(pool), count, "step %d", step);
        }
    }
    free(live);
    tarn_fixed_destroy(pool);
}

/* ---- threads ------------------------------------------------------------ */

enum { THREADS = 8, PER_THREAD = 40000, EXCHANGE = 256 };

typedef struct {
    void *pool_words[2];     /* a free object's link and tag live here */
    _Atomic uintptr_t owner; /* nonzero while some thread holds the object */
    size_t payload;
} shared_obj_t;

static tarn_fixed_t *shared_pool;
static _Atomic(shared_obj_t *) exchange[EXCHANGE];
static atomic_int double_handouts;

/* Takes an object, proves nobody else holds it, and passes some to other
 * threads through the exchange so frees cross threads. */
static void *hammer(void *arg) {
    uintptr_t me = (uintptr_t)arg;
    unsigned seed = (unsigned)me;
    for (int i = 0; i < PER_THREAD; i++) {
        shared_obj_t *o = tarn_fixed_alloc(shared_pool);
        cr_assert_not_null(o);
        uintptr_t expected = 0;
        if (!atomic_compare_exchange_strong(&o->owner, &expected, me))
            atomic_fetch_add(&double_handouts, 1);
        o->payload = me;
        shared_obj_t *prev = atomic_exchange(&exchange[rand_r(&seed) % EXCHANGE], o);
        if (prev) {
            atomic_store(&prev->owner, 0);
            tarn_fixed_free(shared_pool, prev);
        }
    }
    return NULL;
}

Test(fixed_threads, eight_threads_share_one_pool_and_no_object_is_handed_out_twice) {
    tarn_fixed_options_t o = {.obj_size = sizeof(shared_obj_t),
                              .init_count = 64,
                              .grow_count = 256,
                              .keep_empty = 1,
                              .thread_safe = 1};
    shared_pool = tarn_fixed_create_ex(&o);
    cr_assert_not_null(shared_pool);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&double_handouts), 0);
    for (int i = 0; i < EXCHANGE; i++) {
        shared_obj_t *left = atomic_exchange(&exchange[i], NULL);
        if (left) {
            atomic_store(&left->owner, 0);
            tarn_fixed_free(shared_pool, left);
        }
    }
    cr_assert_eq(in_use(shared_pool), 0);
    cr_assert_eq(tarn_fixed_check(shared_pool), 0);
    tarn_fixed_destroy(shared_pool);
}

Test(fixed_threads, a_thread_safe_pool_still_reports_misuse) {
    tarn_fixed_options_t o = {.obj_size = 32, .init_count = 8, .grow_count = 8, .thread_safe = 1};
    tarn_fixed_t *pool = tarn_fixed_create_ex(&o);
    void *a = tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, a);
    expect_rejected(pool, a, "double free of");
    expect_rejected(pool, (char *)tarn_fixed_alloc(pool) + 4, "interior pointer");
    tarn_fixed_destroy(pool);
}

/* A program built against another layout of fixed.h (its inline fast paths
 * would read the pool wrongly) gets no pool: reported, NULL with EINVAL. */
Test(fixed_layout, a_program_built_with_another_layout_is_refused) {
    tarn_fixed_options_t o = {.obj_size = 32, .init_count = 8, .grow_count = 8};
    test_capture_errors();
    errno = 0;
    cr_assert_null(tarn_fixed_create_layout_(&o, TARN_FIXED_LAYOUT + 1));
    cr_assert_eq(errno, EINVAL);
    expect_report("layout");
    tarn_fixed_t *pool = tarn_fixed_create_layout_(&o, TARN_FIXED_LAYOUT);
    cr_assert_not_null(pool, "the header's own layout is accepted");
    cr_assert_eq(test_error_count, 0);
    tarn_fixed_destroy(pool);
}
