/* The region allocators: every policy runs the same suite. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>

#include "common.h"
#include "region/internal.h"
#include <criterion/parameterized.h>

static tarn_policy_t policies[] = {TARN_FIRST_FIT, TARN_NEXT_FIT, TARN_BEST_FIT, TARN_BUDDY,
                                   TARN_TLSF};
#define ALL_POLICIES(name)                                                                         \
    ParameterizedTestParameters(region, name) {                                                    \
        return cr_make_param_array(tarn_policy_t, policies, sizeof policies / sizeof policies[0]); \
    }

static const char *const names[] = {"first fit", "next fit", "best fit", "buddy", "tlsf"};

/* Buffers are static: each test runs in its own process. */
static unsigned char buf[1 << 20] __attribute__((aligned(4096)));
static unsigned char buf2[1 << 16] __attribute__((aligned(4096)));

static tarn_region_t *make(tarn_policy_t p, void *at, size_t len) {
    tarn_region_t *r = tarn_region_init(at, len, p);
    cr_assert_not_null(r, "%s: init of %zu bytes failed", names[p], len);
    return r;
}

static tarn_region_stats_t stats_of(const tarn_region_t *r) {
    tarn_region_stats_t s;
    tarn_region_stats(r, &s);
    cr_assert_eq(s.used + s.free + s.overhead, s.total, "used + free + overhead == total");
    return s;
}

static void assert_same_stats(tarn_region_stats_t a, tarn_region_stats_t b, const char *when) {
    cr_assert(a.total == b.total && a.used == b.used && a.free == b.free &&
                  a.largest_free == b.largest_free && a.free_blocks == b.free_blocks &&
                  a.allocations == b.allocations,
              "%s: stats differ (used %zu/%zu, free %zu/%zu, largest %zu/%zu, blocks %zu/%zu)",
              when, a.used, b.used, a.free, b.free, a.largest_free, b.largest_free, a.free_blocks,
              b.free_blocks);
}

static bool is_tagged(tarn_policy_t p) { return p != TARN_BUDDY; }

static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

ALL_POLICIES(init_rejects_bad_input)
ParameterizedTest(tarn_policy_t *p, region, init_rejects_bad_input) {
    errno = 0;
    cr_assert_null(tarn_region_init(NULL, 4096, *p));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_region_init(buf, 0, *p));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_region_init(buf, 64, *p));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(tarn_region_init(buf, sizeof buf, (tarn_policy_t)99));
    cr_assert_eq(errno, EINVAL);
}

/* The smallest buffer init accepts can serve an allocation; one byte less is EINVAL. */
ALL_POLICIES(smallest_buffer_is_usable)
ParameterizedTest(tarn_policy_t *p, region, smallest_buffer_is_usable) {
    size_t len = 0;
    while (!tarn_region_init(buf + 1, len, *p)) {
        cr_assert_eq(errno, EINVAL, "%s: len %zu", names[*p], len);
        cr_assert_lt(len, (size_t)65536, "%s accepts no buffer", names[*p]);
        len++;
    }
    tarn_region_t *r = make(*p, buf + 1, len);
    void *a = tarn_region_alloc(r, 1);
    cr_assert_not_null(a, "%s: smallest region (%zu bytes) cannot serve 1 byte", names[*p], len);
    cr_assert_eq(tarn_region_check(r), 0);
    cr_assert_leq((unsigned char *)a + 1, buf + 1 + len);
}

ALL_POLICIES(pointers_are_aligned_inside_an_odd_buffer)
ParameterizedTest(tarn_policy_t *p, region, pointers_are_aligned_inside_an_odd_buffer) {
    unsigned char *lo = buf + 3;
    size_t len = 100003;
    tarn_region_t *r = make(*p, lo, len);
    for (size_t size = 0; size < 3000; size += 97) {
        unsigned char *a = tarn_region_alloc(r, size);
        cr_assert_not_null(a, "%s: size %zu", names[*p], size);
        cr_assert_eq((uintptr_t)a % 16, 0, "%s: %p is not 16-aligned", names[*p], (void *)a);
        cr_assert(a >= lo && a + size <= lo + len, "%s: %p is outside the buffer", names[*p],
                  (void *)a);
        memset(a, 0x5a, size);
    }
    cr_assert_eq(tarn_region_check(r), 0);
}

ALL_POLICIES(blocks_do_not_overlap_and_all_free_restores)
ParameterizedTest(tarn_policy_t *p, region, blocks_do_not_overlap_and_all_free_restores) {
    tarn_region_t *r = make(*p, buf, 1 << 18);
    tarn_region_stats_t fresh = stats_of(r);
    enum { N = 200 };
    unsigned char *a[N];
    size_t size[N];
    for (int i = 0; i < N; i++) {
        size[i] = 1 + (size_t)(i * 37 % 700);
        a[i] = tarn_region_alloc(r, size[i]);
        cr_assert_not_null(a[i]);
        memset(a[i], i, size[i]);
    }
    cr_assert_eq(stats_of(r).allocations, (size_t)N);
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < size[i]; j++)
            cr_assert_eq(a[i][j], (unsigned char)i, "%s: block %d overwritten", names[*p], i);
    for (int i = 0; i < N; i += 2)
        tarn_region_free(r, a[i]);
    cr_assert_eq(tarn_region_check(r), 0);
    for (int i = 1; i < N; i += 2)
        tarn_region_free(r, a[i]);
    cr_assert_eq(tarn_region_check(r), 0);
    assert_same_stats(stats_of(r), fresh, "after freeing everything");
    cr_assert_eq(stats_of(r).used, 0);
}

ALL_POLICIES(free_merges_with_both_neighbours)
ParameterizedTest(tarn_policy_t *p, region, free_merges_with_both_neighbours) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    tarn_region_stats_t fresh = stats_of(r);
    void *a = tarn_region_alloc(r, 48), *b = tarn_region_alloc(r, 48);
    void *c = tarn_region_alloc(r, 48);
    tarn_region_free(r, a);
    tarn_region_free(r, c);
    tarn_region_stats_t two_holes = stats_of(r);
    tarn_region_free(r, b);
    cr_assert_eq(tarn_region_check(r), 0);
    assert_same_stats(stats_of(r), fresh, "b merged with a and c");
    cr_assert_gt(two_holes.free_blocks, fresh.free_blocks);
    cr_assert_gt(two_holes.fragmentation, 0.0);
}

ALL_POLICIES(alloc_zero_gives_distinct_blocks)
ParameterizedTest(tarn_policy_t *p, region, alloc_zero_gives_distinct_blocks) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    void *a = tarn_region_alloc(r, 0), *b = tarn_region_alloc(r, 0);
    cr_assert(a && b && a != b);
    tarn_region_free(r, a);
    tarn_region_free(r, b);
    tarn_region_free(r, NULL);
    cr_assert_eq(tarn_region_check(r), 0);
    cr_assert_eq(stats_of(r).allocations, 0);
}

/* A request that cannot fit fails with ENOMEM and leaves every byte of the
 * buffer as it was, in a fresh region and a fragmented one. */
ALL_POLICIES(too_large_is_enomem_and_changes_nothing)
ParameterizedTest(tarn_policy_t *p, region, too_large_is_enomem_and_changes_nothing) {
    static unsigned char copy[1 << 16];
    tarn_region_t *r = make(*p, buf, sizeof copy);
    void *keep[40];
    for (int i = 0; i < 40; i++)
        keep[i] = tarn_region_alloc(r, 200);
    for (int i = 0; i < 40; i += 2)
        tarn_region_free(r, keep[i]);
    size_t largest = stats_of(r).largest_free + 1;
    memcpy(copy, buf, sizeof copy);
    size_t sizes[] = {largest, sizeof copy, SIZE_MAX, SIZE_MAX / 2, SIZE_MAX - 15};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        errno = 0;
        cr_assert_null(tarn_region_alloc(r, sizes[i]), "%s: size %zu", names[*p], sizes[i]);
        cr_assert_eq(errno, ENOMEM);
        errno = 0;
        cr_assert_null(tarn_region_alloc_aligned(r, sizes[i], 64));
        cr_assert_eq(errno, ENOMEM);
        errno = 0;
        cr_assert_null(tarn_region_realloc(r, keep[1], sizes[i]));
        cr_assert_eq(errno, ENOMEM);
    }
    cr_assert(!memcmp(copy, buf, sizeof copy), "%s: a failed request changed the buffer",
              names[*p]);
    cr_assert_eq(tarn_region_check(r), 0);
}

ALL_POLICIES(aligned_alloc_honours_every_power_of_two)
ParameterizedTest(tarn_policy_t *p, region, aligned_alloc_honours_every_power_of_two) {
    tarn_region_t *r = make(*p, buf, sizeof buf);
    void *held[14];
    for (size_t k = 0; k <= 12; k++) {
        size_t align = (size_t)1 << k;
        tarn_region_alloc(r, 24); /* moves the next block off any lucky alignment */
        unsigned char *a = tarn_region_alloc_aligned(r, 100, align);
        cr_assert_not_null(a, "%s: align %zu", names[*p], align);
        cr_assert_eq((uintptr_t)a % align, 0, "%s: %p not aligned to %zu", names[*p], (void *)a,
                     align);
        memset(a, 1, 100);
        held[k] = a;
        cr_assert_eq(tarn_region_check(r), 0);
    }
    for (size_t k = 0; k <= 12; k += 2)
        tarn_region_free(r, held[k]);
    cr_assert_eq(tarn_region_check(r), 0);
    size_t bad[] = {0, 3, 24, 100};
    for (size_t i = 0; i < 4; i++) {
        errno = 0;
        cr_assert_null(tarn_region_alloc_aligned(r, 8, bad[i]));
        cr_assert_eq(errno, EINVAL, "align %zu", bad[i]);
    }
    errno = 0;
    void *big = tarn_region_alloc_aligned(r, 100, 1 << 16);
    if (*p == TARN_BUDDY) {
        cr_assert_null(big, "buddy aligns to at most 4 KiB");
        cr_assert_eq(errno, EINVAL);
    } else {
        cr_assert_not_null(big);
        cr_assert_eq((uintptr_t)big % (1 << 16), 0);
    }
    cr_assert_eq(tarn_region_check(r), 0);
}

ALL_POLICIES(realloc_keeps_contents)
ParameterizedTest(tarn_policy_t *p, region, realloc_keeps_contents) {
    tarn_region_t *r = make(*p, buf, 1 << 18);
    unsigned char *a = tarn_region_realloc(r, NULL, 100);
    cr_assert_not_null(a);
    for (int i = 0; i < 100; i++)
        a[i] = (unsigned char)i;
    void *fence = tarn_region_alloc(r, 32);
    a = tarn_region_realloc(r, a, 3000);
    cr_assert_not_null(a);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(a[i], (unsigned char)i);
    unsigned char *same = tarn_region_realloc(r, a, 50);
    cr_assert_eq(same, a, "%s: shrinking moved the block", names[*p]);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(a[i], (unsigned char)i);
    errno = 0;
    cr_assert_null(tarn_region_realloc(r, a, 1 << 20));
    cr_assert_eq(errno, ENOMEM);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(a[i], (unsigned char)i, "failed realloc kept p");
    tarn_region_free(r, a);
    tarn_region_free(r, fence);
    cr_assert_eq(tarn_region_check(r), 0);
    cr_assert_eq(stats_of(r).used, 0);
}

/* Tagged blocks grow into a free successor without moving. */
ALL_POLICIES(realloc_grows_in_place_into_a_free_neighbour)
ParameterizedTest(tarn_policy_t *p, region, realloc_grows_in_place_into_a_free_neighbour) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    void *a = tarn_region_alloc(r, 100), *b = tarn_region_alloc(r, 400);
    tarn_region_alloc(r, 100);
    tarn_region_free(r, b);
    void *grown = tarn_region_realloc(r, a, 300);
    cr_assert_not_null(grown);
    if (is_tagged(*p)) cr_assert_eq(grown, a, "%s: grew by moving", names[*p]);
    cr_assert_eq(tarn_region_check(r), 0);
}

ALL_POLICIES(double_free_is_reported_and_ignored)
ParameterizedTest(tarn_policy_t *p, region, double_free_is_reported_and_ignored) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    test_capture_errors();
    void *a = tarn_region_alloc(r, 64), *b = tarn_region_alloc(r, 64);
    void *c = tarn_region_alloc(r, 64);
    (void)a, (void)c;
    tarn_region_free(r, b);
    tarn_region_stats_t before = stats_of(r);
    tarn_region_free(r, b);
    expect_report("double free of");
    cr_assert_eq(tarn_region_check(r), 0);
    assert_same_stats(stats_of(r), before, "after the double free");
    errno = 0;
    cr_assert_null(tarn_region_realloc(r, b, 10));
    cr_assert_eq(errno, EINVAL);
    expect_report("already free");
}

ALL_POLICIES(double_free_aborts_by_default)
ParameterizedTest(tarn_policy_t *p, region, double_free_aborts_by_default, .signal = SIGABRT) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    void *a = tarn_region_alloc(r, 64);
    tarn_region_alloc(r, 64);
    tarn_region_free(r, a);
    tarn_region_free(r, a);
}

ALL_POLICIES(foreign_and_interior_pointers_are_reported)
ParameterizedTest(tarn_policy_t *p, region, foreign_and_interior_pointers_are_reported) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    tarn_region_t *other = make(*p, buf2, sizeof buf2);
    test_capture_errors();
    int local;
    unsigned char *a = tarn_region_alloc(r, 256);
    memset(a, 0, 256);
    tarn_region_alloc(r, 64);
    tarn_region_stats_t before = stats_of(r);
    tarn_region_free(r, &local);
    expect_report("not from region");
    tarn_region_free(r, tarn_region_alloc(other, 32));
    expect_report("not from region");
    tarn_region_free(r, a + 32);
    expect_report("not a block allocated");
    tarn_region_free(r, a + 1);
    expect_report("not a block allocated");
    errno = 0;
    cr_assert_null(tarn_region_realloc(r, a + 64, 10));
    cr_assert_eq(errno, EINVAL);
    expect_report("not a block allocated");
    cr_assert_eq(tarn_region_check(r), 0);
    assert_same_stats(stats_of(r), before, "after the bad frees");
}

ALL_POLICIES(foreign_free_aborts_by_default)
ParameterizedTest(tarn_policy_t *p, region, foreign_free_aborts_by_default, .signal = SIGABRT) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    unsigned char *a = tarn_region_alloc(r, 256);
    tarn_region_free(r, a + 48);
}

/* An overflow that reaches the next block's bookkeeping is caught by check
 * and by the next free of that block. Buddy keeps no header in the blocks, so
 * its control byte is hit directly. */
ALL_POLICIES(overwritten_header_is_reported)
ParameterizedTest(tarn_policy_t *p, region, overwritten_header_is_reported) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    test_capture_errors();
    unsigned char *a = tarn_region_alloc(r, 64), *b = tarn_region_alloc(r, 64);
    tarn_region_alloc(r, 64);
    if (is_tagged(*p)) {
        memset(a, 0x41, (size_t)(b - a));
    } else {
        tarn__span_t *s = tarn__region_span_of(r, b);
        s->ctrl[(size_t)(b - (unsigned char *)s->start) / 16] = 0x3f;
    }
    cr_assert_eq(tarn_region_check(r), -1);
    cr_assert_eq(test_error_count, 1);
    cr_assert(strstr(test_last_error, "region"), "%s", test_last_error);
    test_error_count = 0;
    tarn_region_free(r, b);
    cr_assert_eq(test_error_count, 1, "%s: freeing the damaged block was not reported", names[*p]);
}

ALL_POLICIES(a_bad_region_pointer_is_reported)
ParameterizedTest(tarn_policy_t *p, region, a_bad_region_pointer_is_reported) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    test_capture_errors();
    tarn_region_t *bogus = (tarn_region_t *)(buf + 4096);
    errno = 0;
    cr_assert_null(tarn_region_alloc(bogus, 10));
    cr_assert_eq(errno, EINVAL);
    expect_report("not a tarn region");
    cr_assert_eq(tarn_region_check(bogus), -1);
    expect_report("not a tarn region");
    cr_assert_eq(tarn_region_add(NULL, buf2, sizeof buf2), -1);
    expect_report("not a tarn region");
    tarn_region_stats_t s;
    tarn_region_stats(bogus, &s);
    expect_report("not a tarn region");
    cr_assert_eq(s.total, 0);
    cr_assert_eq(tarn_region_check(r), 0);
}

ALL_POLICIES(add_gives_more_memory)
ParameterizedTest(tarn_policy_t *p, region, add_gives_more_memory) {
    size_t len = 1 << 15;
    tarn_region_t *r = make(*p, buf, len);
    void *a[64];
    int n = 0;
    while (n < 64 && (a[n] = tarn_region_alloc(r, 1000)))
        n++;
    cr_assert_lt(n, 64, "the first buffer should run out");
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_eq(tarn_region_add(r, buf + 100, 8192), -1, "overlaps the region");
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(tarn_region_add(r, buf2, 20), -1, "too small");
    cr_assert_eq(tarn_region_add(r, NULL, 8192), -1);
    cr_assert_eq(tarn_region_add(r, buf2 + 5, sizeof buf2 - 5), 0);
    cr_assert_eq(tarn_region_add(r, buf2 + 5, 100), -1, "overlaps the added span");
    unsigned char *more = tarn_region_alloc(r, 1000);
    cr_assert(more >= buf2 && more + 1000 <= buf2 + sizeof buf2, "%s: %p not in the new span",
              names[*p], (void *)more);
    cr_assert_eq(stats_of(r).total, len + sizeof buf2 - 5);
    cr_assert_eq(tarn_region_check(r), 0);
    tarn_region_free(r, more);
    for (int i = 0; i < n; i++)
        tarn_region_free(r, a[i]);
    cr_assert_eq(tarn_region_check(r), 0);
    cr_assert_eq(stats_of(r).used, 0);
}

ALL_POLICIES(stats_report_fragmentation)
ParameterizedTest(tarn_policy_t *p, region, stats_report_fragmentation) {
    tarn_region_t *r = make(*p, buf, 1 << 18);
    tarn_region_stats_t s = stats_of(r);
    cr_assert_eq(s.total, (size_t)1 << 18);
    cr_assert_eq(s.used, 0);
    cr_assert_gt(s.free, s.total * 9 / 10, "%s: bookkeeping takes %zu of %zu", names[*p],
                 s.overhead, s.total);
    void *a[100];
    for (int i = 0; i < 100; i++)
        a[i] = tarn_region_alloc(r, 200);
    s = stats_of(r);
    cr_assert_eq(s.allocations, 100);
    cr_assert_geq(s.used, (size_t)100 * 200);
    for (int i = 0; i < 100; i += 2)
        tarn_region_free(r, a[i]);
    s = stats_of(r);
    cr_assert_geq(s.free_blocks, (size_t)50);
    cr_assert_lt(s.largest_free, s.free);
    double expect = 1.0 - (double)s.largest_free / (double)s.free;
    cr_assert_float_eq(s.fragmentation, expect, 1e-12);
    cr_assert_gt(s.fragmentation, 0.0);
}

/* Fills the region with random sizes until the first ENOMEM, then frees all
 * in random order: the region must come back whole. */
ALL_POLICIES(fill_to_enomem_and_drain)
ParameterizedTest(tarn_policy_t *p, region, fill_to_enomem_and_drain) {
    tarn_region_t *r = make(*p, buf, 1 << 18);
    tarn_region_stats_t fresh = stats_of(r);
    static void *a[1 << 14];
    size_t n = 0, requested = 0;
    rng_state = 0x9e3779b97f4a7c15ull;
    for (;;) {
        size_t size = 16 + rnd() % 2000;
        errno = 0;
        if (!(a[n] = tarn_region_alloc(r, size))) break;
        requested += size;
        n++;
    }
    cr_assert_eq(errno, ENOMEM);
    cr_assert_gt(requested, fresh.total / 2, "%s filled only %zu of %zu", names[*p], requested,
                 fresh.total);
    cr_assert_eq(tarn_region_check(r), 0);
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd() % i;
        void *t = a[j];
        a[j] = a[i - 1];
        a[i - 1] = t;
    }
    for (size_t i = 0; i < n; i++)
        tarn_region_free(r, a[i]);
    cr_assert_eq(tarn_region_check(r), 0);
    assert_same_stats(stats_of(r), fresh, "after draining");
}

/* The random sequence: allocs, aligned allocs, reallocs and frees, with
 * every block's contents verified and tarn_region_check after every step;
 * halfway a second span is added. */
enum { SLOTS = 96, STEPS = 12000 };
typedef struct {
    unsigned char *p;
    size_t size;
    unsigned char fill;
} slot_t;

static void verify(const slot_t *s, tarn_policy_t policy, int step) {
    for (size_t i = 0; i < s->size; i++)
        cr_assert_eq(s->p[i], s->fill, "%s step %d: block %p byte %zu overwritten", names[policy],
                     step, (void *)s->p, i);
}

static size_t random_size(void) {
    uint64_t x = rnd();
    return x % 8 ? x % 300 : x % 3000;
}

static void random_step(tarn_region_t *r, slot_t *s, tarn_policy_t policy, int step) {
    unsigned op = (unsigned)(rnd() % 10);
    if (s->p) verify(s, policy, step);
    if (s->p && op < 5) {
        tarn_region_free(r, s->p);
        s->p = NULL;
        return;
    }
    size_t size = random_size();
    unsigned char *q;
    if (s->p && op < 8)
        q = tarn_region_realloc(r, s->p, size);
    else if (!s->p && op == 9)
        q = tarn_region_alloc_aligned(r, size, (size_t)8 << rnd() % 8);
    else if (!s->p)
        q = tarn_region_alloc(r, size);
    else
        return;
    if (!q) {
        cr_assert_eq(errno, ENOMEM, "%s step %d", names[policy], step);
        return;
    }
    size_t kept = s->p ? (s->size < size ? s->size : size) : 0;
    for (size_t i = 0; i < kept; i++)
        cr_assert_eq(q[i], s->fill, "%s step %d: realloc lost byte %zu", names[policy], step, i);
    s->p = q;
    s->size = size;
    s->fill = (unsigned char)(step * 31 + 7);
    memset(q, s->fill, size);
}

ALL_POLICIES(random_sequence_passes_check_every_step)
ParameterizedTest(tarn_policy_t *p, region, random_sequence_passes_check_every_step) {
    tarn_region_t *r = make(*p, buf, 1 << 16);
    slot_t slots[SLOTS] = {0};
    rng_state = 0x2545f4914f6cdd1dull + (uint64_t)*p;
    for (int step = 0; step < STEPS; step++) {
        if (step == STEPS / 2) cr_assert_eq(tarn_region_add(r, buf2, sizeof buf2), 0);
        random_step(r, &slots[rnd() % SLOTS], *p, step);
        cr_assert_eq(tarn_region_check(r), 0, "%s step %d", names[*p], step);
        if (step % 500) continue;
        tarn_region_stats_t s = stats_of(r);
        size_t live = 0;
        for (int i = 0; i < SLOTS; i++)
            live += slots[i].p != NULL;
        cr_assert_eq(s.allocations, live);
        cr_assert(s.fragmentation >= 0 && s.fragmentation < 1);
    }
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p) {
            verify(&slots[i], *p, STEPS);
            tarn_region_free(r, slots[i].p);
        }
    cr_assert_eq(tarn_region_check(r), 0);
    cr_assert_eq(stats_of(r).used, 0);
}

/* Each policy picks the hole it promises: two holes, a large one at the low
 * address and a small one above it, then the tail of the region. */
ALL_POLICIES(each_policy_picks_its_hole)
ParameterizedTest(tarn_policy_t *p, region, each_policy_picks_its_hole) {
    tarn_region_t *r = make(*p, buf, 1 << 18);
    void *big = tarn_region_alloc(r, 1000), *g1 = tarn_region_alloc(r, 16);
    void *small = tarn_region_alloc(r, 100), *g2 = tarn_region_alloc(r, 16);
    (void)g1, (void)g2;
    tarn_region_free(r, big);
    tarn_region_free(r, small);
    void *q = tarn_region_alloc(r, 90);
    switch (*p) {
    case TARN_FIRST_FIT:
        cr_assert_eq(q, big, "first fit takes the lowest hole that fits");
        break;
    case TARN_NEXT_FIT:
        cr_assert(q != big && q != small, "next fit goes on from the tail where it stopped");
        break;
    default:
        cr_assert_eq(q, small, "%s takes the smallest hole that fits", names[*p]);
    }
    cr_assert_eq(tarn_region_check(r), 0);
}

/* Three free blocks of one size class, the list head taken by an allocation
 * (TLSF and best fit then leave the new head's back link stale), and the new
 * head merged away by freeing its neighbour: the lists stay consistent. */
ALL_POLICIES(list_head_taken_then_merged)
ParameterizedTest(tarn_policy_t *p, region, list_head_taken_then_merged) {
    tarn_region_t *r = make(*p, buf, 1 << 18);
    tarn_region_stats_t fresh = stats_of(r);
    void *blk[3], *gap[3];
    for (int i = 0; i < 3; i++) {
        blk[i] = tarn_region_alloc(r, 100);
        gap[i] = tarn_region_alloc(r, 100);
    }
    for (int i = 0; i < 3; i++)
        tarn_region_free(r, blk[i]);
    cr_assert_eq(tarn_region_check(r), 0);
    void *again = tarn_region_alloc(r, 100);
    if (*p != TARN_NEXT_FIT) /* which goes on from where it stopped */
        cr_assert(again == blk[0] || again == blk[1] || again == blk[2], "%s reuses a hole",
                  names[*p]);
    cr_assert_eq(tarn_region_check(r), 0);
    for (int i = 0; i < 3; i++) {
        tarn_region_free(r, gap[i]);
        cr_assert_eq(tarn_region_check(r), 0, "%s: after freeing gap %d", names[*p], i);
    }
    tarn_region_free(r, again);
    cr_assert_eq(tarn_region_check(r), 0);
    assert_same_stats(stats_of(r), fresh, "all freed");
}

/* TLSF's size classes: every block size lies in its class, and the rounded
 * search size starts a class whose every block fits the request. */
Test(region, tlsf_classes_round_trip) {
    for (size_t size = 16; size < ((size_t)1 << 22); size += 16) {
        unsigned fl, sl;
        tarn__tlsf_class(size, &fl, &sl);
        cr_assert_lt(fl, TARN__TLSF_FL);
        cr_assert_lt(sl, TARN__TLSF_SL);
        size_t lo = tarn__tlsf_class_min(fl, sl);
        size_t hi = sl + 1 < TARN__TLSF_SL ? tarn__tlsf_class_min(fl, sl + 1)
                                           : tarn__tlsf_class_min(fl + 1, 0);
        cr_assert(lo <= size && size < hi, "size %zu in class %u.%u [%zu, %zu)", size, fl, sl, lo,
                  hi);
    }
    unsigned fl, sl;
    tarn__tlsf_class(TARN__TB_MAX_BLOCK, &fl, &sl);
    cr_assert_lt(fl, TARN__TLSF_FL, "the largest block has a class");
}
