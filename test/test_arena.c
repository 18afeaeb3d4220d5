/* The region pool: bump allocation, large allocations, block reuse,
 * cleanups, children, mark/rewind, reset, growth, bad input, OOM, threads. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "common.h"

static tarn_pool_stats_t stats_of(const tarn_arena_t *a) {
    tarn_pool_stats_t s;
    tarn_arena_stats(a, &s);
    return s;
}

/* An arena of fixed 4 KiB blocks: each block is one page, so a pointer's
 * block is its address rounded down to 4 KiB. */
static tarn_arena_t *fixed_4k(size_t keep) {
    tarn_arena_options_t o = {.block_size = 4096, .growth = TARN_ARENA_FIXED, .keep_blocks = keep};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    cr_assert_not_null(a);
    return a;
}

static uintptr_t page_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)4095; }

/* ---- allocation --------------------------------------------------------- */

Test(arena, small_allocations_are_aligned_distinct_and_kept_intact) {
    tarn_arena_t *a = tarn_arena_create(0);
    enum { N = 2000 };
    static unsigned char *ptr[N];
    static size_t len[N];
    for (size_t i = 0; i < N; i++) {
        len[i] = 1 + (i * 37) % 700;
        ptr[i] = tarn_arena_alloc(a, len[i]);
        cr_assert_not_null(ptr[i]);
        cr_assert_eq((uintptr_t)ptr[i] % 16, 0, "piece %zu not 16-aligned", i);
        memset(ptr[i], (int)(i & 0xff), len[i]);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < len[i]; j++)
            cr_assert_eq(ptr[i][j], (unsigned char)(i & 0xff), "piece %zu was overwritten", i);
    cr_assert_eq(stats_of(a).in_use, N);
    tarn_arena_destroy(a);
}

Test(arena, zero_size_gives_unique_valid_pointers) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *p = tarn_arena_alloc(a, 0), *q = tarn_arena_alloc(a, 0);
    cr_assert(p && q && p != q);
    cr_assert_eq(stats_of(a).in_use, 2);
    test_capture_errors();
    tarn_arena_free(a, p);
    tarn_arena_free(a, q);
    cr_assert_eq(test_error_count, 0, "%s", test_last_error);
    cr_assert_eq(stats_of(a).in_use, 0);
    tarn_arena_destroy(a);
}

Test(arena, aligned_allocations_honour_the_alignment) {
    tarn_arena_t *a = tarn_arena_create(0);
    size_t aligns[] = {1, 2, 8, 16, 32, 64, 256, 4096, (size_t)1 << 16, (size_t)1 << 21};
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        for (size_t size = 1; size < 9000; size = size * 3 + 1) {
            char *p = tarn_arena_alloc_aligned(a, size, aligns[i]);
            cr_assert_not_null(p);
            cr_assert_eq((uintptr_t)p % aligns[i], 0, "align %zu size %zu", aligns[i], size);
            memset(p, 1, size);
        }
    }
    tarn_arena_destroy(a);
}

Test(arena, alignment_not_a_power_of_two_is_einval) {
    tarn_arena_t *a = tarn_arena_create(0);
    size_t bad[] = {0, 3, 24, 48, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        cr_assert_null(tarn_arena_alloc_aligned(a, 16, bad[i]));
        cr_assert_eq(errno, EINVAL, "align %zu", bad[i]);
    }
    cr_assert_eq(stats_of(a).in_use, 0);
    tarn_arena_destroy(a);
}

Test(arena, calloc_zeroes_recycled_memory_and_catches_overflow) {
    tarn_arena_t *a = fixed_4k(1);
    unsigned char *p = tarn_arena_alloc(a, 1000);
    memset(p, 0xff, 1000);
    tarn_arena_reset(a);
    unsigned char *q = tarn_arena_calloc(a, 10, 100);
    cr_assert_eq(q, p, "reset must hand out the same memory again");
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(q[i], 0);
    errno = 0;
    cr_assert_null(tarn_arena_calloc(a, SIZE_MAX / 2, 3));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(tarn_arena_calloc(a, (size_t)1 << 33, (size_t)1 << 33));
    cr_assert_eq(errno, ENOMEM);
    cr_assert_not_null(tarn_arena_calloc(a, 0, 5));
    unsigned char *big = tarn_arena_calloc(a, 1, 100000);
    cr_assert_not_null(big);
    cr_assert_eq(big[99999], 0);
    tarn_arena_destroy(a);
}

Test(arena, huge_sizes_fail_with_enomem_and_leave_the_arena_usable) {
    tarn_arena_t *a = tarn_arena_create(0);
    size_t huge[] = {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX / 2 + 1, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        errno = 0;
        cr_assert_null(tarn_arena_alloc(a, huge[i]), "size %zu", huge[i]);
        cr_assert_eq(errno, ENOMEM);
        errno = 0;
        cr_assert_null(tarn_arena_alloc_aligned(a, huge[i], 4096));
        cr_assert_eq(errno, ENOMEM);
    }
    tarn_pool_stats_t s = stats_of(a);
    cr_assert_eq(s.in_use, 0);
    cr_assert_eq(s.blocks, 1);
    cr_assert_not_null(tarn_arena_alloc(a, 100));
    tarn_arena_destroy(a);
}

Test(arena, strdup_copies_and_rejects_null) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *s = tarn_arena_strdup(a, "GET /index.html HTTP/1.1");
    cr_assert_str_eq(s, "GET /index.html HTTP/1.1");
    cr_assert_str_eq(tarn_arena_strdup(a, ""), "");
    errno = 0;
    cr_assert_null(tarn_arena_strdup(a, NULL));
    cr_assert_eq(errno, EINVAL);
    tarn_arena_destroy(a);
}

/* ---- large allocations -------------------------------------------------- */

Test(arena, large_allocation_has_its_own_mapping_and_free_unmaps_it) {
    tarn_arena_t *a = tarn_arena_create(0);
    tarn_pool_stats_t s0 = stats_of(a);
    char *p = tarn_arena_alloc(a, (size_t)1 << 20);
    cr_assert_not_null(p);
    memset(p, 7, (size_t)1 << 20);
    tarn_pool_stats_t s1 = stats_of(a);
    cr_assert_eq(s1.os_maps, s0.os_maps + 1);
    cr_assert_geq(s1.bytes_mapped - s0.bytes_mapped, (size_t)1 << 20);
    cr_assert_eq(s1.blocks, s0.blocks, "a large allocation is not a block");
    cr_assert_eq(s1.in_use, 1);
    tarn_arena_free(a, p);
    tarn_pool_stats_t s2 = stats_of(a);
    cr_assert_eq(s2.os_releases, s0.os_releases + 1);
    cr_assert_eq(s2.bytes_mapped, s0.bytes_mapped);
    cr_assert_eq(s2.in_use, 0);
    tarn_arena_destroy(a);
}

/* Whether size bytes went to a block (true) or got their own mapping. */
static bool lands_in_a_block(tarn_arena_t *a, size_t size) {
    tarn_pool_stats_t s0 = stats_of(a);
    char *p = tarn_arena_alloc(a, size);
    cr_assert_not_null(p);
    memset(p, 1, size);
    tarn_pool_stats_t s1 = stats_of(a);
    cr_assert_eq(s1.os_maps, s0.os_maps + 1, "%zu bytes fit no block yet: one new mapping", size);
    return s1.blocks == s0.blocks + 1;
}

/* "Large" is more than a quarter of the largest block: with the default
 * 1 MiB blocks, over 256 KiB; so 64 KiB pieces share blocks. */
Test(arena, large_means_over_a_quarter_of_the_largest_block) {
    tarn_arena_t *a = tarn_arena_create(0);
    cr_assert(lands_in_a_block(a, (size_t)64 << 10));
    cr_assert(lands_in_a_block(a, (size_t)256 << 10));
    cr_assert_not(lands_in_a_block(a, ((size_t)256 << 10) + 1));
    tarn_arena_destroy(a);
    tarn_arena_options_t o = {.max_block_size = (size_t)4 << 20};
    a = tarn_arena_create_ex(&o);
    cr_assert(lands_in_a_block(a, (size_t)1 << 20));
    cr_assert_not(lands_in_a_block(a, ((size_t)1 << 20) + 1));
    tarn_arena_destroy(a);
}

/* With fixed growth, large is what a block cannot hold past its 96-byte header. */
Test(arena, large_means_over_a_fixed_blocks_capacity) {
    tarn_arena_options_t o = {.block_size = 16384, .growth = TARN_ARENA_FIXED};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    cr_assert(lands_in_a_block(a, 16384 - 96));
    cr_assert_not(lands_in_a_block(a, 16384 - 96 + 1));
    tarn_arena_destroy(a);
}

Test(arena, large_allocations_free_in_any_order) {
    tarn_arena_t *a = tarn_arena_create(0);
    enum { N = 64 };
    char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = tarn_arena_alloc(a, (size_t)300000 + (size_t)i * 4096);
        cr_assert_not_null(p[i]);
        p[i][0] = (char)i;
    }
    for (int k = 0; k < N; k++) {
        int i = (k * 29) % N;
        cr_assert_eq(p[i][0], (char)i);
        tarn_arena_free(a, p[i]);
        cr_assert_eq(stats_of(a).in_use, (size_t)(N - k - 1));
    }
    cr_assert_eq(stats_of(a).os_releases, N);
    tarn_arena_destroy(a);
}

Test(arena, double_free_of_a_large_allocation_is_reported) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *p = tarn_arena_alloc(a, (size_t)1 << 20);
    tarn_arena_free(a, p);
    test_capture_errors();
    tarn_arena_free(a, p);
    expect_report("double free of");
    tarn_arena_destroy(a);
}

Test(arena, double_free_of_a_large_allocation_aborts_by_default, .signal = SIGABRT) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *p = tarn_arena_alloc(a, (size_t)1 << 20);
    tarn_arena_free(a, p);
    tarn_arena_free(a, p);
}

Test(arena, free_of_a_large_allocation_after_reset_is_a_double_free) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *p = tarn_arena_alloc(a, (size_t)1 << 20);
    tarn_arena_reset(a);
    test_capture_errors();
    tarn_arena_free(a, p);
    expect_report("double free of");
    tarn_arena_destroy(a);
}

/* ---- foreign pointers --------------------------------------------------- */

Test(arena, foreign_pointers_are_reported_and_change_nothing) {
    tarn_arena_t *a = tarn_arena_create(0), *b = tarn_arena_create(0);
    char *mine = tarn_arena_alloc(a, 100);
    char *large = tarn_arena_alloc(a, (size_t)1 << 20);
    char *theirs = tarn_arena_alloc(b, 100);
    int on_stack;
    char *from_malloc = malloc(64);
    tarn_pool_stats_t before = stats_of(a);
    test_capture_errors();

    tarn_arena_free(a, &on_stack);
    expect_report("not allocated by arena");
    tarn_arena_free(a, from_malloc);
    expect_report("not allocated by arena");
    tarn_arena_free(a, theirs);
    expect_report("belongs to arena");
    tarn_arena_free(a, large + 16);
    expect_report("inside large allocation");
    tarn_arena_free(a, large + 8192);
    expect_report("not allocated by arena");
    tarn_arena_free(a, mine + 3);
    expect_report("not a live allocation");
    tarn_arena_free(a, mine + 2000);
    expect_report("not a live allocation");

    tarn_pool_stats_t after = stats_of(a);
    cr_assert_eq(after.in_use, before.in_use);
    cr_assert_eq(after.bytes_mapped, before.bytes_mapped);
    cr_assert_eq(stats_of(b).in_use, 1);
    free(from_malloc);
    tarn_arena_destroy(a);
    tarn_arena_destroy(b);
}

Test(arena, pointer_into_a_destroyed_arena_is_reported) {
    tarn_arena_t *a = tarn_arena_create(0), *b = tarn_arena_create(0);
    char *p = tarn_arena_alloc(b, 100);
    tarn_arena_destroy(b);
    test_capture_errors();
    tarn_arena_free(a, p);
    expect_report("not allocated by arena");
    tarn_arena_destroy(a);
}

Test(arena, stack_pointer_aborts_by_default, .signal = SIGABRT) {
    tarn_arena_t *a = tarn_arena_create(0);
    int x;
    tarn_arena_free(a, &x);
}

Test(arena, pointer_of_another_arena_aborts_by_default, .signal = SIGABRT) {
    tarn_arena_t *a = tarn_arena_create(0), *b = tarn_arena_create(0);
    tarn_arena_free(a, tarn_arena_alloc(b, 8));
}

Test(arena, free_of_null_does_nothing) {
    tarn_arena_t *a = tarn_arena_create(0);
    test_capture_errors();
    tarn_arena_free(a, NULL);
    cr_assert_eq(test_error_count, 0);
    tarn_arena_destroy(a);
}

/* ---- block reuse (seed 001) --------------------------------------------- */

Test(arena, a_block_whose_pieces_are_all_freed_is_reused) {
    tarn_arena_t *a = fixed_4k(1);
    enum { N = 40 };
    char *p[N];
    for (int i = 0; i < N; i++)
        p[i] = tarn_arena_alloc(a, 900);
    uintptr_t victim = page_of(p[8]);
    cr_assert_neq(victim, page_of(p[N - 1]), "the victim block must not be the last");
    tarn_pool_stats_t s0 = stats_of(a);
    for (int i = 0; i < N; i++)
        if (page_of(p[i]) == victim) tarn_arena_free(a, p[i]);
    tarn_pool_stats_t s1 = stats_of(a);
    cr_assert_eq(s1.empty_blocks, s0.empty_blocks + 1);
    cr_assert_eq(s1.blocks, s0.blocks);
    /* Fill the last block, then the next block must be the emptied one. */
    bool reused = false;
    for (int i = 0; i < 8 && !reused; i++)
        reused = page_of(tarn_arena_alloc(a, 900)) == victim;
    cr_assert(reused, "the emptied block was not reused");
    cr_assert_eq(stats_of(a).os_maps, s0.os_maps, "no new block was needed");
    tarn_arena_destroy(a);
}

Test(arena, the_last_block_restarts_in_place_when_emptied) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *p = tarn_arena_alloc(a, 100), *q = tarn_arena_alloc(a, 200);
    tarn_arena_free(a, q);
    tarn_arena_free(a, p);
    cr_assert_eq(tarn_arena_alloc(a, 300), p);
    tarn_arena_destroy(a);
}

Test(arena, live_pieces_keep_their_block) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *keep = tarn_arena_alloc(a, 16);
    strcpy(keep, "alive");
    char *p = tarn_arena_alloc(a, 100);
    tarn_arena_free(a, p);
    char *q = tarn_arena_alloc(a, 100);
    cr_assert_neq(q, keep);
    cr_assert_str_eq(keep, "alive");
    tarn_arena_destroy(a);
}

/* ---- the failed counter (nginx) ----------------------------------------- */

Test(arena, a_block_that_keeps_missing_stops_being_searched) {
    tarn_arena_t *a = fixed_4k(1);
    char *first = tarn_arena_alloc(a, 2500);
    uintptr_t holder = page_of(first);
    for (int i = 0; i < 4; i++)
        tarn_arena_alloc(a, 3500);
    cr_assert_eq(page_of(tarn_arena_alloc(a, 64)), holder, "four misses keep the block searched");
    tarn_arena_alloc(a, 3500);
    cr_assert_neq(page_of(tarn_arena_alloc(a, 64)), holder, "the fifth miss retires the block");
    tarn_arena_destroy(a);
}

/* ---- growth ------------------------------------------------------------- */

/* The size of each block as it is added, read from bytes_mapped. */
static size_t block_sizes(tarn_arena_t *a, size_t *out, size_t n) {
    size_t got = 0, blocks = stats_of(a).blocks, mapped = stats_of(a).bytes_mapped;
    out[got++] = mapped;
    while (got < n) {
        cr_assert_not_null(tarn_arena_alloc(a, 1000));
        tarn_pool_stats_t s = stats_of(a);
        if (s.blocks != blocks) out[got++] = s.bytes_mapped - mapped;
        blocks = s.blocks;
        mapped = s.bytes_mapped;
    }
    return got;
}

Test(arena, doubling_growth_doubles_up_to_the_maximum) {
    tarn_arena_options_t o = {.block_size = 4096, .max_block_size = 65536};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    size_t sz[8];
    block_sizes(a, sz, 8);
    size_t want[8] = {4096, 8192, 16384, 32768, 65536, 65536, 65536, 65536};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(sz[i], want[i], "block %d: %zu", i, sz[i]);
    tarn_arena_destroy(a);
}

Test(arena, fixed_growth_keeps_one_size) {
    tarn_arena_options_t o = {.block_size = 16384, .growth = TARN_ARENA_FIXED};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    size_t sz[6];
    block_sizes(a, sz, 6);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(sz[i], 16384);
    tarn_arena_destroy(a);
}

Test(arena, a_big_piece_gets_a_block_big_enough) {
    tarn_arena_options_t o = {.block_size = 4096, .max_block_size = (size_t)1 << 20};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    char *p = tarn_arena_alloc(a, (size_t)200 << 10);
    cr_assert_not_null(p);
    memset(p, 1, (size_t)200 << 10);
    tarn_pool_stats_t s = stats_of(a);
    cr_assert_eq(s.blocks, 2, "200 KiB fits a block when blocks may reach 1 MiB");
    cr_assert_eq(s.bytes_mapped, 4096 + ((size_t)256 << 10));
    tarn_arena_destroy(a);
}

Test(arena, bad_options_are_einval_and_null_options_are_defaults) {
    tarn_arena_options_t bad[] = {
        {.block_size = ((size_t)64 << 20) + 1},
        {.max_block_size = (size_t)1 << 30},
        {.growth = (tarn_arena_growth_t)7},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        cr_assert_null(tarn_arena_create_ex(&bad[i]));
        cr_assert_eq(errno, EINVAL);
    }
    tarn_arena_t *a = tarn_arena_create_ex(NULL);
    cr_assert_not_null(a);
    cr_assert_eq(stats_of(a).bytes_mapped, 8192, "the default first block is 8 KiB");
    errno = 0;
    cr_assert_null(tarn_arena_create(((size_t)64 << 20) + 1));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_arena_create_child(a, ((size_t)64 << 20) + 1));
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(stats_of(a).in_use, 0);
    tarn_arena_destroy(a);
}

/* ---- cleanups ----------------------------------------------------------- */

/* Callbacks record their argument in order; nran counts them all. */
static int ran[64], nran;
static void record(void *arg) {
    if (nran < 64) ran[nran] = (int)(intptr_t)arg;
    nran++;
}

Test(arena, cleanups_run_newest_first_exactly_once_at_destroy) {
    tarn_arena_t *a = tarn_arena_create(0);
    for (intptr_t i = 0; i < 5; i++)
        cr_assert_eq(tarn_arena_on_destroy(a, record, (void *)i), 0);
    cr_assert_eq(stats_of(a).in_use, 0, "cleanup entries are not user allocations");
    tarn_arena_destroy(a);
    cr_assert_eq(nran, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(ran[i], 4 - i);
}

Test(arena, cleanups_run_at_reset_and_not_again) {
    tarn_arena_t *a = tarn_arena_create(0);
    for (intptr_t i = 0; i < 3; i++)
        tarn_arena_on_destroy(a, record, (void *)i);
    tarn_arena_reset(a);
    cr_assert_eq(nran, 3);
    tarn_arena_on_destroy(a, record, (void *)9);
    tarn_arena_destroy(a);
    cr_assert_eq(nran, 4);
    cr_assert_eq(ran[3], 9);
}

static tarn_arena_t *self;
static void allocate_and_register(void *arg) {
    (void)arg;
    cr_assert_not_null(tarn_arena_alloc(self, 50000));
    tarn_arena_on_destroy(self, record, (void *)7);
}

Test(arena, a_cleanup_may_allocate_and_register_another) {
    self = tarn_arena_create(0);
    tarn_arena_on_destroy(self, allocate_and_register, NULL);
    tarn_arena_destroy(self);
    cr_assert_eq(nran, 1);
    cr_assert_eq(ran[0], 7);
}

Test(arena, on_destroy_rejects_null_and_reports_enomem) {
    tarn_arena_t *a = fixed_4k(1);
    errno = 0;
    cr_assert_eq(tarn_arena_on_destroy(a, NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    /* Entries fill the one block; the map for a second one fails. */
    tarn__os_fail(0, -1);
    errno = 0;
    int rc = 0, made = 0;
    while (rc == 0 && made < 1000)
        made += (rc = tarn_arena_on_destroy(a, record, NULL)) == 0;
    tarn__os_fail(-1, 0);
    cr_assert_eq(rc, -1);
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(stats_of(a).blocks, 1);
    tarn_arena_destroy(a);
    cr_assert_eq(nran, made, "every registered callback ran");
}

/* ---- children ----------------------------------------------------------- */

Test(arena, a_child_is_destroyed_with_its_parent) {
    tarn_arena_t *p = tarn_arena_create(0);
    tarn_arena_t *c = tarn_arena_create_child(p, 0);
    cr_assert_not_null(c);
    tarn_arena_on_destroy(c, record, (void *)1);
    cr_assert_not_null(tarn_arena_alloc(c, 100000));
    tarn_arena_on_destroy(p, record, (void *)2);
    tarn_arena_destroy(p);
    cr_assert_eq(nran, 2);
    cr_assert_eq(ran[0], 2, "the parent's later callback runs first");
    cr_assert_eq(ran[1], 1);
}

Test(arena, a_child_is_destroyed_at_parent_reset) {
    tarn_arena_t *p = tarn_arena_create(0);
    tarn_arena_t *c = tarn_arena_create_child(p, 4096);
    tarn_arena_on_destroy(c, record, (void *)1);
    tarn_arena_reset(p);
    cr_assert_eq(nran, 1);
    cr_assert_not_null(tarn_arena_alloc(p, 10));
    tarn_arena_destroy(p);
    cr_assert_eq(nran, 1);
}

Test(arena, destroying_a_child_first_detaches_it) {
    tarn_arena_t *p = tarn_arena_create(0);
    tarn_pool_stats_t before = stats_of(p);
    tarn_arena_t *c = tarn_arena_create_child(p, 0);
    tarn_arena_on_destroy(c, record, (void *)1);
    tarn_arena_destroy(c);
    cr_assert_eq(nran, 1);
    tarn_pool_stats_t after = stats_of(p);
    cr_assert_eq(after.in_use, before.in_use);
    cr_assert_eq(after.bytes_in_use, before.bytes_in_use, "the child's entry was given back");
    tarn_arena_destroy(p);
    cr_assert_eq(nran, 1);
}

Test(arena, grandchildren_go_with_the_grandparent) {
    tarn_arena_t *g = tarn_arena_create(0);
    tarn_arena_t *c = tarn_arena_create_child(g, 0);
    tarn_arena_t *gc = tarn_arena_create_child(c, 0);
    tarn_arena_on_destroy(gc, record, (void *)3);
    tarn_arena_on_destroy(c, record, (void *)2);
    tarn_arena_destroy(g);
    cr_assert_eq(nran, 2);
    cr_assert_eq(ran[0], 2);
    cr_assert_eq(ran[1], 3);
}

Test(arena, many_short_lived_children_do_not_grow_the_parent) {
    tarn_arena_t *p = tarn_arena_create(0);
    for (int i = 0; i < 20000; i++) {
        tarn_arena_t *c = tarn_arena_create_child(p, 0);
        cr_assert_not_null(tarn_arena_alloc(c, 64));
        tarn_arena_destroy(c);
    }
    tarn_pool_stats_t s = stats_of(p);
    cr_assert_eq(s.blocks, 1);
    cr_assert_eq(s.bytes_in_use, 0);
    tarn_arena_destroy(p);
}

Test(arena, a_child_pointer_freed_through_the_parent_is_reported) {
    tarn_arena_t *p = tarn_arena_create(0);
    tarn_arena_t *c = tarn_arena_create_child(p, 0);
    test_capture_errors();
    tarn_arena_free(p, tarn_arena_alloc(c, 10));
    expect_report("belongs to arena");
    tarn_arena_destroy(p);
}

Test(arena, child_creation_failure_leaves_the_parent_unchanged) {
    tarn_arena_t *p = fixed_4k(1);
    errno = 0;
    tarn__os_fail(0, -1);
    cr_assert_null(tarn_arena_create_child(p, 0), "the child's own block fails");
    cr_assert_eq(errno, ENOMEM);
    /* Each child's block is the first map, its entry in the parent the
     * second once the parent's block is full. */
    tarn_arena_t *c;
    int made = 0;
    do {
        tarn__os_fail(1, -1);
        errno = 0;
        c = tarn_arena_create_child(p, 0);
        tarn__os_fail(-1, 0);
        if (c) tarn_arena_on_destroy(c, record, NULL);
        made += c != NULL;
    } while (c && made < 1000);
    cr_assert_null(c);
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(stats_of(p).blocks, 1);
    tarn_arena_destroy(p);
    cr_assert_eq(nran, made, "the children made before the failure were destroyed");
}

/* ---- mark and rewind ---------------------------------------------------- */

Test(arena, rewind_drops_what_came_after_the_mark) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *keep = tarn_arena_strdup(a, "keep");
    tarn_arena_mark_t m = tarn_arena_mark(a);
    char *p = tarn_arena_alloc(a, 64);
    tarn_arena_alloc(a, 64);
    tarn_arena_rewind(a, m);
    cr_assert_eq(stats_of(a).in_use, 1);
    cr_assert_eq(tarn_arena_alloc(a, 64), p, "memory after the mark is handed out again");
    cr_assert_str_eq(keep, "keep");
    tarn_arena_destroy(a);
}

Test(arena, rewind_across_many_blocks_gives_them_back) {
    tarn_arena_t *a = fixed_4k(1);
    tarn_arena_alloc(a, 100);
    tarn_pool_stats_t s0 = stats_of(a);
    tarn_arena_mark_t m = tarn_arena_mark(a);
    char *first = tarn_arena_alloc(a, 100);
    for (int i = 0; i < 100; i++)
        tarn_arena_alloc(a, 1000);
    tarn_arena_rewind(a, m);
    tarn_pool_stats_t s1 = stats_of(a);
    cr_assert_eq(s1.in_use, s0.in_use);
    cr_assert_eq(s1.bytes_in_use, s0.bytes_in_use);
    cr_assert_eq(s1.empty_blocks, s1.blocks - 1, "dropped blocks are empty spares");
    cr_assert_eq(tarn_arena_alloc(a, 100), first);
    /* Rewinding in a loop reuses the spares: no new blocks. */
    for (int r = 0; r < 50; r++) {
        for (int i = 0; i < 100; i++)
            tarn_arena_alloc(a, 1000);
        tarn_arena_rewind(a, m);
    }
    cr_assert_eq(stats_of(a).blocks, s1.blocks);
    tarn_arena_destroy(a);
}

Test(arena, rewind_releases_later_large_allocations_only) {
    tarn_arena_t *a = tarn_arena_create(0);
    char *before = tarn_arena_alloc(a, (size_t)1 << 20);
    tarn_arena_mark_t m = tarn_arena_mark(a);
    tarn_arena_alloc(a, (size_t)1 << 20);
    tarn_arena_alloc(a, (size_t)2 << 20);
    size_t released = stats_of(a).os_releases;
    tarn_arena_rewind(a, m);
    cr_assert_eq(stats_of(a).os_releases, released + 2);
    test_capture_errors();
    tarn_arena_free(a, before);
    cr_assert_eq(test_error_count, 0, "%s", test_last_error);
    tarn_arena_destroy(a);
}

Test(arena, rewind_runs_callbacks_registered_after_the_mark) {
    tarn_arena_t *a = tarn_arena_create(0);
    tarn_arena_on_destroy(a, record, (void *)1);
    tarn_arena_mark_t m = tarn_arena_mark(a);
    tarn_arena_on_destroy(a, record, (void *)2);
    tarn_arena_on_destroy(a, record, (void *)3);
    tarn_arena_rewind(a, m);
    cr_assert_eq(nran, 2);
    cr_assert_eq(ran[0], 3);
    cr_assert_eq(ran[1], 2);
    tarn_arena_destroy(a);
    cr_assert_eq(nran, 3);
    cr_assert_eq(ran[2], 1);
}

Test(arena, rewind_destroys_children_created_after_the_mark) {
    tarn_arena_t *p = tarn_arena_create(0);
    tarn_arena_t *old = tarn_arena_create_child(p, 0);
    tarn_arena_on_destroy(old, record, (void *)1);
    tarn_arena_mark_t m = tarn_arena_mark(p);
    tarn_arena_t *young = tarn_arena_create_child(p, 0);
    tarn_arena_on_destroy(young, record, (void *)2);
    tarn_arena_rewind(p, m);
    cr_assert_eq(nran, 1);
    cr_assert_eq(ran[0], 2);
    cr_assert_not_null(tarn_arena_alloc(old, 10));
    tarn_arena_destroy(p);
    cr_assert_eq(nran, 2);
}

Test(arena, nested_marks_rewind_in_order) {
    tarn_arena_t *a = fixed_4k(1);
    tarn_arena_mark_t m1 = tarn_arena_mark(a);
    char *p1 = tarn_arena_alloc(a, 3000);
    tarn_arena_mark_t m2 = tarn_arena_mark(a);
    char *p2 = tarn_arena_alloc(a, 3000);
    tarn_arena_alloc(a, 3000);
    tarn_arena_rewind(a, m2);
    cr_assert_eq(stats_of(a).in_use, 1);
    cr_assert_eq(tarn_arena_alloc(a, 3000), p2);
    tarn_arena_rewind(a, m1);
    cr_assert_eq(stats_of(a).in_use, 0);
    cr_assert_eq(tarn_arena_alloc(a, 3000), p1);
    tarn_arena_destroy(a);
}

Test(arena, frees_between_mark_and_rewind_stay_consistent) {
    tarn_arena_t *a = fixed_4k(1);
    char *old[3];
    for (int i = 0; i < 3; i++)
        old[i] = tarn_arena_alloc(a, 500);
    tarn_arena_mark_t m = tarn_arena_mark(a);
    char *young = tarn_arena_alloc(a, 500);
    tarn_arena_free(a, old[0]);
    tarn_arena_free(a, young);
    tarn_arena_rewind(a, m);
    tarn_arena_free(a, old[1]);
    tarn_arena_free(a, old[2]);
    strcpy(tarn_arena_alloc(a, 500), "fine");
    tarn_arena_destroy(a);
}

Test(arena, rewind_to_a_mark_from_before_reset_is_reported) {
    tarn_arena_t *a = tarn_arena_create(0);
    tarn_arena_mark_t m = tarn_arena_mark(a);
    tarn_arena_alloc(a, 10);
    tarn_arena_reset(a);
    test_capture_errors();
    tarn_arena_rewind(a, m);
    expect_report("before its last reset");
    tarn_arena_destroy(a);
}

/* Two fresh arenas have the same sequence numbers: only the arena's own
 * number in the mark tells them apart. Before it, a's bump pointer was set
 * to b's and a's next piece was b's memory. */
Test(arena, rewind_to_another_arenas_mark_is_reported_and_changes_nothing) {
    tarn_arena_t *a = tarn_arena_create(0), *b = tarn_arena_create(0);
    char *p = tarn_arena_strdup(a, "mine");
    tarn_arena_mark_t m = tarn_arena_mark(b);
    tarn_pool_stats_t before = stats_of(a);
    test_capture_errors();
    tarn_arena_rewind(a, m);
    expect_report("a mark it never made");
    tarn_pool_stats_t after = stats_of(a);
    cr_assert_eq(after.in_use, before.in_use);
    cr_assert_eq(after.bytes_in_use, before.bytes_in_use);
    char *q = tarn_arena_alloc(a, 16);
    cr_assert_eq(q, p + 16, "the next piece comes after a's last one");
    cr_assert_str_eq(p, "mine");
    tarn_arena_destroy(a);
    tarn_arena_destroy(b);
}

/* A destroyed arena's blocks come back from the cache to the next one,
 * which then lives at the same address with the same sequence numbers. */
Test(arena, rewind_to_a_mark_of_a_destroyed_arena_at_the_same_address_is_reported) {
    tarn_arena_t *a = tarn_arena_create(0);
    tarn_arena_mark_t m = tarn_arena_mark(a);
    tarn_arena_destroy(a);
    tarn_arena_t *b = tarn_arena_create(0);
    cr_assert_eq(b, a, "the cache hands the same block back");
    test_capture_errors();
    tarn_arena_rewind(b, m);
    expect_report("a mark it never made");
    tarn_arena_destroy(b);
}

Test(arena, rewind_to_a_mark_it_never_made_aborts_by_default, .signal = SIGABRT) {
    tarn_arena_t *a = tarn_arena_create(0), *b = tarn_arena_create(0);
    for (int i = 0; i < 5; i++)
        tarn_arena_on_destroy(b, record, NULL);
    tarn_arena_rewind(a, tarn_arena_mark(b));
}

/* ---- reset -------------------------------------------------------------- */

Test(arena, reset_keeps_the_configured_number_of_blocks) {
    tarn_arena_cache_limit(0);
    tarn_arena_t *a = fixed_4k(3);
    while (stats_of(a).blocks < 20)
        tarn_arena_alloc(a, 1000);
    tarn_arena_reset(a);
    tarn_pool_stats_t s = stats_of(a);
    cr_assert_eq(s.blocks, 3);
    cr_assert_eq(s.os_releases, 17);
    cr_assert_eq(s.in_use, 0);
    cr_assert_eq(s.bytes_mapped, 3 * 4096);
    tarn_arena_destroy(a);
}

Test(arena, reset_keeps_the_largest_blocks) {
    tarn_arena_options_t o = {.block_size = 4096, .max_block_size = 65536, .keep_blocks = 2};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    while (stats_of(a).blocks < 8)
        tarn_arena_alloc(a, 1000);
    tarn_arena_reset(a);
    cr_assert_eq(stats_of(a).bytes_mapped, 4096 + 65536);
    tarn_arena_destroy(a);
}

Test(arena, reset_gives_memory_back_to_the_os) {
    tarn_arena_cache_limit(0);
    tarn_arena_t *a = tarn_arena_create(0);
    size_t total = (size_t)64 << 20;
    for (size_t n = 0; n < total; n += 4000)
        memset(tarn_arena_alloc(a, 4000), 1, 4000);
    for (int i = 0; i < 8; i++)
        memset(tarn_arena_alloc(a, (size_t)1 << 20), 1, (size_t)1 << 20);
    size_t before = tarn__os_rss();
    tarn_arena_reset(a);
    size_t after = tarn__os_rss();
    cr_assert_geq(before - after, (size_t)60 << 20, "rss %zu -> %zu", before, after);
    cr_assert_eq(stats_of(a).blocks, 1);
    tarn_arena_destroy(a);
}

/* ---- growth across resets, rewinds and children ------------------------- */

/* Each cycle: one 11 KiB request, as a server serving equal requests does. */
Test(arena, reset_between_equal_requests_maps_no_new_block) {
    tarn_arena_t *a = tarn_arena_create(0);
    for (int cycle = 0; cycle < 8; cycle++) {
        cr_assert_not_null(tarn_arena_alloc(a, (size_t)11 << 10));
        tarn_pool_stats_t s = stats_of(a);
        cr_assert_eq(s.bytes_mapped, (size_t)24 << 10, "cycle %d holds %zu bytes", cycle,
                     s.bytes_mapped);
        cr_assert_eq(s.os_maps, 2, "cycle %d mapped a new block", cycle);
        tarn_arena_reset(a);
    }
    tarn_arena_destroy(a);
}

/* The same with the shared cache off: the arena's own spare serves every
 * cycle once reset may keep it. */
Test(arena, reset_that_keeps_a_spare_serves_equal_requests_without_the_os) {
    tarn_arena_cache_limit(0);
    tarn_arena_options_t o = {.keep_blocks = 2};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    size_t first_maps = 0;
    for (int cycle = 0; cycle < 8; cycle++) {
        for (int i = 0; i < 30; i++)
            cr_assert_not_null(tarn_arena_alloc(a, 1000));
        tarn_arena_reset(a);
        if (cycle == 0) first_maps = stats_of(a).os_maps;
    }
    tarn_pool_stats_t s = stats_of(a);
    cr_assert_eq(first_maps, 3, "the first cycle grows: holder, 16 KiB, 32 KiB");
    cr_assert_eq(s.os_maps, first_maps, "no map after the first cycle");
    cr_assert_eq(s.os_releases, 1, "the 16 KiB block, at the first reset");
    cr_assert_eq(s.bytes_mapped, (size_t)(8 + 32) << 10, "the 30 KiB fit the kept 32 KiB block");
    tarn_arena_destroy(a);
}

/* Cycles of different sizes, repeated: once reset keeps the largest block
 * as a spare, a cycle that outgrows it doubles past it, and after two rounds
 * the spare serves every cycle with no new mapping. */
Test(arena, reset_that_keeps_a_spare_serves_varying_requests_without_the_os) {
    tarn_arena_cache_limit(0);
    tarn_arena_options_t o = {.keep_blocks = 2};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    size_t kib[] = {11, 100, 11, 300, 40, 100}, after_two_rounds = 0;
    for (int round = 0; round < 5; round++) {
        for (int c = 0; c < 6; c++) {
            for (size_t i = 0; i < kib[c] * 1024 / 1000; i++)
                cr_assert_not_null(tarn_arena_alloc(a, 1000));
            tarn_arena_reset(a);
        }
        if (round == 1) after_two_rounds = stats_of(a).os_maps;
    }
    cr_assert_eq(stats_of(a).os_maps, after_two_rounds, "%zu maps, %zu after two rounds",
                 stats_of(a).os_maps, after_two_rounds);
    tarn_arena_destroy(a);
}

/* The size of the first block a cycle adds: 8000 bytes never fit the 8 KiB
 * holder, so the first piece of the cycle takes a new block. */
static size_t cycle_of_8000s(tarn_arena_t *a, int pieces) {
    tarn_arena_reset(a);
    size_t before = stats_of(a).bytes_mapped;
    cr_assert_not_null(tarn_arena_alloc(a, 8000));
    size_t first = stats_of(a).bytes_mapped - before;
    for (int i = 1; i < pieces; i++)
        cr_assert_not_null(tarn_arena_alloc(a, 8000));
    return first;
}

/* A cycle starts with the one block (a power of two from 16 KiB to the 1 MiB
 * maximum) that would have held all the previous cycle put beyond the
 * holder: 1, 5, 20, 75, 400 and 1 pieces of 8000 bytes are 8000, 40,000,
 * 160,000, 600,000, 3,200,000 and 8000 bytes. */
Test(arena, a_cycle_starts_with_a_block_sized_by_the_one_before) {
    tarn_arena_t *a = tarn_arena_create(0);
    int pieces[] = {1, 5, 20, 75, 400, 1, 1};
    size_t want[] = {16 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 1 << 20, 16 << 10};
    for (int i = 0; i < 7; i++) {
        size_t got = cycle_of_8000s(a, pieces[i]);
        cr_assert_eq(got, want[i], "cycle %d (after %d pieces) began with %zu bytes", i,
                     i ? pieces[i - 1] : 0, got);
    }
    tarn_arena_destroy(a);
}

/* Within a cycle blocks still double, from where the cycle before ended:
 * three pieces of 8000 bytes took 24,000 bytes, which a 32 KiB block holds. */
Test(arena, blocks_still_double_within_a_cycle_after_reset) {
    tarn_arena_options_t o = {.block_size = 4096, .max_block_size = (size_t)256 << 10};
    tarn_arena_t *a = tarn_arena_create_ex(&o);
    cycle_of_8000s(a, 3);
    tarn_arena_reset(a);
    size_t sz[7];
    block_sizes(a, sz, 7);
    size_t want[7] = {4096, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 256 << 10, 256 << 10};
    for (int i = 0; i < 7; i++)
        cr_assert_eq(sz[i], want[i], "block %d: %zu", i, sz[i]);
    tarn_arena_destroy(a);
}

/* No OS call at all after the first cycle: any map fails from then on. */
Test(arena, rewind_between_equal_requests_maps_nothing) {
    tarn_arena_cache_limit(0);
    tarn_arena_t *a = tarn_arena_create(0);
    tarn_arena_mark_t m = tarn_arena_mark(a);
    for (int cycle = 0; cycle < 8; cycle++) {
        if (cycle == 1) tarn__os_fail(0, -1);
        cr_assert_not_null(tarn_arena_alloc(a, (size_t)11 << 10), "cycle %d", cycle);
        cr_assert_not_null(tarn_arena_alloc(a, (size_t)30 << 10), "cycle %d", cycle);
        for (int i = 0; i < 20; i++)
            cr_assert_not_null(tarn_arena_alloc(a, 500));
        tarn_arena_rewind(a, m);
    }
    tarn__os_fail(-1, 0);
    tarn_arena_destroy(a);
}

/* A child per request, ended by its own destroy, by the parent's reset or
 * by a rewind of the parent, and reset in between: after the first cycle
 * nothing is mapped (a child's blocks come back from the shared cache). */
Test(arena, children_of_equal_requests_map_nothing) {
    tarn_arena_t *p = tarn_arena_create(0);
    for (int cycle = 0; cycle < 8; cycle++) {
        if (cycle == 1) tarn__os_fail(0, -1);
        tarn_arena_t *c = tarn_arena_create_child(p, 0);
        cr_assert_not_null(c, "cycle %d", cycle);
        cr_assert_not_null(tarn_arena_alloc(c, (size_t)11 << 10), "cycle %d", cycle);
        tarn_arena_reset(c);
        cr_assert_not_null(tarn_arena_alloc(c, (size_t)11 << 10), "cycle %d", cycle);
        tarn_arena_mark_t m = tarn_arena_mark(p);
        tarn_arena_t *speculative = tarn_arena_create_child(p, 0);
        cr_assert_not_null(speculative, "cycle %d", cycle);
        cr_assert_not_null(tarn_arena_alloc(speculative, (size_t)11 << 10), "cycle %d", cycle);
        tarn_arena_rewind(p, m);
        if (cycle % 2) tarn_arena_destroy(c);
        tarn_arena_reset(p);
    }
    tarn__os_fail(-1, 0);
    tarn_arena_destroy(p);
}

/* ---- the shared cache --------------------------------------------------- */

Test(arena, destroy_then_create_reuses_the_blocks) {
    tarn_arena_t *a = tarn_arena_create(0);
    for (int i = 0; i < 100; i++)
        tarn_arena_alloc(a, 500);
    tarn_arena_destroy(a);
    tarn_arena_t *b = tarn_arena_create(0);
    for (int i = 0; i < 100; i++)
        tarn_arena_alloc(b, 500);
    cr_assert_eq(stats_of(b).os_maps, 0, "every block came from the cache");
    tarn_arena_destroy(b);
}

Test(arena, a_zero_cache_limit_sends_blocks_to_the_os) {
    cr_assert_eq(tarn_arena_cache_limit(0), (size_t)8 << 20, "the default limit is 8 MiB");
    tarn_arena_t *a = tarn_arena_create(0);
    tarn_arena_destroy(a);
    tarn_arena_t *b = tarn_arena_create(0);
    cr_assert_eq(stats_of(b).os_maps, 1);
    tarn_arena_destroy(b);
    cr_assert_eq(tarn_arena_cache_limit((size_t)8 << 20), 0);
}

Test(arena, lowering_the_cache_limit_releases_cached_blocks) {
    tarn_arena_t *a = tarn_arena_create(0);
    for (int i = 0; i < 24; i++)
        memset(tarn_arena_alloc(a, (size_t)200 << 10), 1, (size_t)200 << 10);
    tarn_arena_destroy(a);
    size_t before = tarn__os_rss();
    tarn_arena_cache_limit(0);
    size_t after = tarn__os_rss();
    /* 4.8 MiB went to the cache; allow 1 MiB of unrelated movement */
    cr_assert_geq(before - after, (size_t)3800 << 10, "rss %zu -> %zu", before, after);
}

/* ---- out of memory ------------------------------------------------------ */

Test(arena, create_fails_cleanly_at_every_map) {
    int failures = 0;
    for (long n = 0; n < 8; n++) {
        tarn__os_fail(n, -1);
        errno = 0;
        tarn_arena_t *a = tarn_arena_create(0);
        tarn__os_fail(-1, 0);
        if (!a) {
            cr_assert_eq(errno, ENOMEM);
            failures++;
            continue;
        }
        cr_assert_not_null(tarn_arena_alloc(a, 100));
        tarn_arena_destroy(a);
    }
    cr_assert_geq(failures, 1);
}

Test(arena, failed_growth_and_large_maps_leave_the_arena_usable) {
    tarn_arena_t *a = fixed_4k(1);
    while (stats_of(a).blocks == 1)
        tarn_arena_alloc(a, 1000);
    tarn_pool_stats_t s = stats_of(a);
    tarn__os_fail(0, -1);
    errno = 0;
    cr_assert_null(tarn_arena_alloc(a, 3500), "no block has room, the new one fails");
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(tarn_arena_alloc(a, 100000));
    cr_assert_eq(errno, ENOMEM);
    tarn__os_fail(-1, 0);
    tarn_pool_stats_t t = stats_of(a);
    cr_assert_eq(t.in_use, s.in_use);
    cr_assert_eq(t.blocks, s.blocks);
    cr_assert_not_null(tarn_arena_alloc(a, 3500));
    tarn_arena_destroy(a);
}

/* ---- stats -------------------------------------------------------------- */

Test(arena, stats_count_pieces_bytes_and_blocks) {
    tarn_arena_t *a = tarn_arena_create(0);
    tarn_arena_alloc(a, 10);
    tarn_arena_alloc(a, 20);
    tarn_arena_alloc(a, (size_t)1 << 20);
    tarn_pool_stats_t s = stats_of(a);
    cr_assert_eq(s.in_use, 3);
    cr_assert_eq(s.bytes_in_use, 16 + 32 + ((size_t)1 << 20));
    cr_assert_eq(s.blocks, 1);
    cr_assert_eq(s.empty_blocks, 0);
    cr_assert_eq(s.os_maps, 2);
    cr_assert_gt(s.bytes_mapped, 8192 + ((size_t)1 << 20));
    tarn_arena_destroy(a);
}

/* ---- threads ------------------------------------------------------------ */

enum { THREADS = 4, ROUNDS = 20000 };
static tarn_arena_t *shared;

static void *churn(void *arg) {
    size_t seed = (size_t)(intptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t n = 1 + (seed >> 33) % 600;
        char *p = tarn_arena_alloc(shared, n);
        if (!p) abort();
        memset(p, 0x5a, n);
        if (i % 4) tarn_arena_free(shared, p);
        if (i % 5000 == 0) tarn_arena_free(shared, tarn_arena_alloc(shared, 300000));
    }
    return NULL;
}

Test(arena, a_thread_safe_arena_can_be_shared) {
    tarn_arena_options_t o = {.thread_safe = true};
    shared = tarn_arena_create_ex(&o);
    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, churn, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(stats_of(shared).in_use, THREADS * ROUNDS / 4);
    tarn_arena_t *c = tarn_arena_create_child(shared, 0);
    tarn_arena_on_destroy(c, record, NULL);
    tarn_arena_destroy(shared);
    cr_assert_eq(nran, 1);
}

Test(arena, a_cleanup_may_use_its_thread_safe_arena) {
    tarn_arena_options_t o = {.thread_safe = true};
    self = tarn_arena_create_ex(&o);
    tarn_arena_on_destroy(self, allocate_and_register, NULL);
    tarn_arena_reset(self);
    cr_assert_eq(nran, 1, "a callback registered during reset runs in that reset");
    tarn_arena_destroy(self);
    cr_assert_eq(nran, 1);
}
