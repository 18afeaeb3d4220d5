/* The general heap: size classes, every entry point at its edge sizes,
 * alignment, realloc, zeroing, misuse reports, out of memory, purge,
 * thread exit and fork. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "heap/internal.h"

/* The overflow tests pass sizes gcc can see are too large; with the
 * alloc_size attributes of heap.h it says so, as it would for malloc. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/* Writes a pattern over the whole usable area and checks it reads back. */
static void fill_and_check(void *p, size_t n, unsigned char seed) {
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)(seed + i * 7);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(c[i], (unsigned char)(seed + i * 7), "byte %zu of %p", i, p);
}

/* Sizes every API is tried at: 0, 1, each class boundary +-1, the page and
 * segment sizes and their neighbours. */
static size_t edge_sizes(size_t *out) {
    size_t n = 0;
    out[n++] = 0;
    out[n++] = 1;
    for (unsigned c = 0; c < TARN__CLASSES; c++) {
        size_t s = tarn__class_size(c);
        out[n++] = s - 1;
        out[n++] = s;
        out[n++] = s + 1;
    }
    size_t big[] = {4 * KiB, 64 * KiB, 512 * KiB, TARN__LARGE_MAX, TARN__SEG_SIZE, 9 * MiB};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        out[n++] = big[i] - 1;
        out[n++] = big[i];
        out[n++] = big[i] + 1;
    }
    return n;
}

Test(heap_classes, every_size_round_trips) {
    cr_assert_eq(tarn__size_class(TARN__MEDIUM_MAX) + 1, TARN__CLASSES);
    cr_assert_eq(tarn__size_class(TARN__SMALL_MAX) + 1, TARN__SMALL_CLASSES);
    cr_assert_eq(tarn__size_class(TARN__DIRECT_MAX) + 1, TARN__DIRECT_CLASSES);
    for (size_t s = 0; s <= TARN__MEDIUM_MAX; s++) {
        unsigned c = tarn__size_class(s);
        size_t cs = tarn__class_size(c);
        cr_assert(cs >= s, "size %zu -> class %u of %zu", s, c, cs);
        cr_assert(c == 0 || tarn__class_size(c - 1) < s, "size %zu not in its smallest class", s);
        if (s > 128) cr_assert(cs - s <= cs / 8, "waste of %zu in %zu above 12.5%%", s, cs);
        cr_assert_eq(cs % 16, 0, "class %zu breaks 16-byte alignment", cs);
        cr_assert_eq(TARN__SIZE_CLASS(s), c, "size %zu: the constant form agrees", s);
    }
    for (unsigned c = 0; c < TARN__CLASSES; c++) {
        cr_assert_eq(tarn__size_class(tarn__class_size(c)), c);
        cr_assert_eq(TARN__CLASS_SIZE(c), tarn__class_size(c), "class %u: the constant form", c);
    }
}

Test(heap_api, malloc_at_edge_sizes) {
    static size_t sizes[400];
    size_t n = edge_sizes(sizes);
    for (size_t i = 0; i < n; i++) {
        void *p = tarn_malloc(sizes[i]);
        cr_assert_not_null(p, "malloc(%zu)", sizes[i]);
        size_t u = tarn_usable_size(p);
        cr_assert(u >= sizes[i], "usable %zu < %zu", u, sizes[i]);
        cr_assert_eq((uintptr_t)p % 16, 0, "malloc(%zu) = %p", sizes[i], p);
        fill_and_check(p, u < 256 * KiB ? u : 256 * KiB, (unsigned char)i);
        ((char *)p)[u - (u > 0)] = 1;
        tarn_free(p);
    }
}

Test(heap_api, one_gib_and_its_neighbours) {
    size_t sizes[] = {GiB - 1, GiB, GiB + 1};
    for (int i = 0; i < 3; i++) {
        char *p = tarn_malloc(sizes[i]);
        cr_assert_not_null(p);
        cr_assert(tarn_usable_size(p) >= sizes[i]);
        p[0] = 1;
        p[sizes[i] / 2] = 2;
        p[sizes[i] - 1] = 3;
        char *z = tarn_calloc(1, sizes[i]);
        cr_assert_not_null(z);
        cr_assert_eq(z[0] | z[sizes[i] / 3] | z[sizes[i] - 1], 0);
        tarn_free(z);
        tarn_free(p);
    }
}

Test(heap_api, calloc_zeroes_recycled_memory) {
    static size_t sizes[400];
    size_t n = edge_sizes(sizes);
    for (size_t i = 0; i < n; i++) {
        if (sizes[i] > 8 * MiB) continue;
        void *dirty[8];
        for (int k = 0; k < 8; k++) {
            dirty[k] = tarn_malloc(sizes[i]);
            memset(dirty[k], 0xa5, sizes[i]);
        }
        for (int k = 0; k < 8; k++)
            tarn_free(dirty[k]);
        for (int k = 0; k < 8; k++) {
            unsigned char *z = tarn_calloc(1, sizes[i]);
            cr_assert_not_null(z);
            for (size_t b = 0; b < sizes[i]; b += 1 + b / 64)
                cr_assert_eq(z[b], 0, "calloc(%zu) byte %zu", sizes[i], b);
            dirty[k] = z;
        }
        for (int k = 0; k < 8; k++)
            tarn_free(dirty[k]);
    }
}

Test(heap_api, realloc_keeps_contents_through_every_kind) {
    size_t steps[] = {1,        24,       200,     5000,      70 * KiB, 300 * KiB, 3 * MiB,
                      20 * MiB, 90 * MiB, 5 * MiB, 100 * KiB, 900,      8};
    unsigned char *p = NULL;
    size_t have = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        p = tarn_realloc(p, steps[i]);
        cr_assert_not_null(p, "realloc to %zu", steps[i]);
        size_t keep = have < steps[i] ? have : steps[i];
        for (size_t b = 0; b < keep; b += 1 + b / 256)
            cr_assert_eq(p[b], (unsigned char)(b * 13), "byte %zu after realloc to %zu", b,
                         steps[i]);
        for (size_t b = 0; b < steps[i]; b++)
            p[b] = (unsigned char)(b * 13);
        have = steps[i];
    }
    tarn_free(p);
}

Test(heap_api, realloc_edge_cases) {
    char *p = tarn_realloc(NULL, 40);
    cr_assert_not_null(p);
    cr_assert_null(tarn_realloc(p, 0), "realloc(p, 0) frees p, as glibc does");
    p = tarn_malloc(100);
    cr_assert_eq(tarn_realloc(p, 90), p, "a small shrink stays in place");
    char *big = tarn_malloc(200 * KiB);
    cr_assert_eq(tarn_realloc(big, 2 * MiB), big,
                 "a large block grows in place: its frame is free after it");
    errno = 0;
    cr_assert_null(tarn_realloc(p, SIZE_MAX));
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(tarn_usable_size(p) >= 90, 1, "a failed realloc leaves the block");
    tarn_free(p);
    tarn_free(big);
}

Test(heap_api, overflow_and_huge_sizes_fail_with_enomem) {
    size_t bad[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX, (size_t)1 << 50};
    for (int i = 0; i < 4; i++) {
        errno = 0;
        cr_assert_null(tarn_malloc(bad[i]));
        cr_assert_eq(errno, ENOMEM);
        errno = 0;
        cr_assert_null(tarn_aligned_alloc(4096, bad[i]));
        cr_assert_eq(errno, ENOMEM);
    }
    errno = 0;
    cr_assert_null(tarn_calloc(SIZE_MAX / 2, 3));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(tarn_reallocarray(NULL, (size_t)1 << 40, (size_t)1 << 40));
    cr_assert_eq(errno, ENOMEM);
    void *q = NULL;
    cr_assert_eq(tarn_posix_memalign(&q, 64, SIZE_MAX), ENOMEM);
    cr_assert_null(q);
    char *p = tarn_reallocarray(NULL, 10, 10);
    cr_assert_not_null(p);
    cr_assert(tarn_usable_size(p) >= 100);
    tarn_free(p);
}

Test(heap_align, every_power_of_two_up_to_one_mib) {
    size_t sizes[] = {0, 1, 8, 100, 5000, 70 * KiB, 300 * KiB, 5 * MiB};
    for (size_t a = 8; a <= MiB; a *= 2)
        for (int i = 0; i < 8; i++) {
            void *p = tarn_aligned_alloc(a, sizes[i]);
            cr_assert_not_null(p, "aligned_alloc(%zu, %zu)", a, sizes[i]);
            cr_assert_eq((uintptr_t)p % a, 0, "aligned_alloc(%zu, %zu) = %p", a, sizes[i], p);
            cr_assert(tarn_usable_size(p) >= sizes[i]);
            memset(p, 0x5a, sizes[i]);
            void *m = tarn_memalign(a, sizes[i]);
            cr_assert_eq((uintptr_t)m % a, 0);
            void *q = NULL;
            cr_assert_eq(tarn_posix_memalign(&q, a, sizes[i]), 0);
            cr_assert_eq((uintptr_t)q % a, 0);
            tarn_free(q);
            tarn_free(m);
            tarn_free(p);
        }
}

Test(heap_align, alignments_of_a_segment_and_more) {
    test_capture_errors();
    size_t aligns[] = {2 * MiB, 4 * MiB, 8 * MiB, 64 * MiB};
    size_t sizes[] = {1, 100 * KiB, 5 * MiB};
    for (int a = 0; a < 4; a++)
        for (int s = 0; s < 3; s++) {
            char *p = tarn_aligned_alloc(aligns[a], sizes[s]);
            cr_assert_not_null(p, "aligned_alloc(%zu, %zu)", aligns[a], sizes[s]);
            cr_assert_eq((uintptr_t)p % aligns[a], 0);
            cr_assert(tarn_usable_size(p) >= sizes[s]);
            memset(p, 7, sizes[s]);
            char *q = tarn_realloc(p, sizes[s] + 10);
            cr_assert_not_null(q);
            cr_assert_eq(q[sizes[s] - 1], 7, "realloc keeps the contents");
            tarn_free(q);
        }
    char *p = tarn_memalign(16 * MiB, 64);
    tarn_free(p);
    tarn_free(p);
    expect_report("did not allocate");
}

/* posix_memalign's rule; memalign rounds such alignments
 * up (test_heap_stats.c) and refuse only those past 2^63. */
Test(heap_align, bad_alignment_is_einval) {
    size_t bad[] = {0, 3, 24, 100, 4097};
    for (int i = 0; i < 2; i++) {
        size_t align = i ? SIZE_MAX : SIZE_MAX / 2 + 2;
        errno = 0;
        cr_assert_null(tarn_aligned_alloc(align, 64));
        cr_assert_eq(errno, EINVAL);
        errno = 0;
        cr_assert_null(tarn_memalign(align, 64));
        cr_assert_eq(errno, EINVAL);
    }
    for (int i = 0; i < 5; i++) {
        void *q = (void *)1;
        cr_assert_eq(tarn_posix_memalign(&q, bad[i], 64), EINVAL);
        cr_assert_eq(q, (void *)1, "posix_memalign leaves *out on failure");
    }
    void *q = (void *)1;
    cr_assert_eq(tarn_posix_memalign(&q, 4, 64), EINVAL, "below sizeof(void *)");
}

Test(heap_misuse, double_free_is_reported_and_ignored) {
    test_capture_errors();
    void *keep = tarn_malloc(24);
    void *p = tarn_malloc(24);
    tarn_free(p);
    tarn_free(p);
    expect_report("double free of");
    cr_assert_eq(tarn_usable_size(keep), 32);
    void *a = tarn_malloc(24), *b = tarn_malloc(24);
    cr_assert_neq(a, b, "the rejected free did not corrupt the free list");
    tarn_free(a);
    tarn_free(b);
    tarn_free(keep);
}

Test(heap_misuse, double_free_aborts_by_default, .signal = SIGABRT) {
    void *keep = tarn_malloc(40);
    void *p = tarn_malloc(40);
    tarn_free(p);
    tarn_free(p);
    tarn_free(keep);
}

Test(heap_misuse, free_of_a_block_in_a_released_page) {
    test_capture_errors();
    void *pin = tarn_malloc(100); /* another class: the 1000-byte pages can empty */
    void *blocks[200];
    for (int i = 0; i < 200; i++)
        blocks[i] = tarn_malloc(1000);
    for (int i = 0; i < 200; i++)
        tarn_free(blocks[i]);
    tarn_free(blocks[0]);
    expect_report("not a live block");
    tarn_free(pin);
}

/* Page headers are set up as pages are first used: a pointer into a page
 * of a live segment that was never used must still be refused, and the
 * segment must go on serving allocations. */
Test(heap_misuse, free_into_a_page_never_used_is_rejected) {
    test_capture_errors();
    char *p = tarn_malloc(32);
    tarn__segment_t *seg = tarn__segment_of(p);
    cr_assert_lt(seg->page_next, seg->page_count, "the last pages are not set up yet");
    char *never = (char *)seg + ((size_t)(seg->page_count - 1) << seg->page_shift) + 64;
    tarn_free(never);
    expect_report("not a live block");
    void *q = tarn_malloc(32);
    cr_assert_not_null(q);
    cr_assert_eq(tarn__segment_of(q), seg);
    tarn_free(q);
    tarn_free(p);
}

Test(heap_misuse, large_and_huge_double_free) {
    test_capture_errors();
    void *keep = tarn_malloc(300 * KiB);
    void *p = tarn_malloc(300 * KiB);
    tarn_free(p);
    tarn_free(p);
    expect_report("double free of");
    void *h = tarn_malloc(16 * MiB);
    tarn_free(h);
    tarn_free(h);
    expect_report("did not allocate");
    tarn_free(keep);
}

Test(heap_misuse, foreign_pointers_are_rejected) {
    test_capture_errors();
    int on_stack;
    tarn_free(&on_stack);
    expect_report("tarn did not allocate");
    void *from_libc = malloc(64);
    tarn_free(from_libc);
    expect_report("tarn did not allocate");
    cr_assert_eq(tarn_usable_size(from_libc), 0);
    expect_report("did not allocate");
    cr_assert_null(tarn_realloc(from_libc, 100));
    expect_report("did not allocate");
    free(from_libc);
    tarn_free((void *)((uintptr_t)1 << 60));
    expect_report("did not allocate");
    tarn_free(NULL);
    cr_assert_eq(test_error_count, 0, "free(NULL) is fine");
}

Test(heap_misuse, foreign_free_aborts_by_default, .signal = SIGABRT) {
    int on_stack;
    tarn_free(&on_stack);
}

static void *free_twice_remote(void *p) {
    tarn_free(p);
    tarn_free(p);
    return NULL;
}

Test(heap_misuse, double_free_from_another_thread) {
    test_capture_errors();
    void *keep = tarn_malloc(48);
    void *p = tarn_malloc(48);
    pthread_t t;
    pthread_create(&t, NULL, free_twice_remote, p);
    pthread_join(t, NULL);
    expect_report("double free of");
    tarn_free(keep);
}

Test(heap_oom, first_allocation_without_memory) {
    tarn__os_fail(0, 1);
    errno = 0;
    cr_assert_null(tarn_malloc(100));
    cr_assert_eq(errno, ENOMEM);
    cr_assert_not_null(tarn_malloc(100), "the next map works again");
}

Test(heap_oom, first_segment_without_memory) {
    tarn__os_fail(1, 1); /* the heap's own map works, its first segment's fails */
    errno = 0;
    cr_assert_null(tarn_malloc(16));
    cr_assert_eq(errno, ENOMEM);
    cr_assert_not_null(tarn_malloc(16));
}

Test(heap_oom, every_kind_fails_cleanly) {
    void *warm = tarn_malloc(16);
    size_t sizes[] = {20 * KiB, 300 * KiB, 64 * MiB};
    for (int i = 0; i < 3; i++) {
        tarn__os_fail(0, 1); /* medium, large and huge each need a new mapping */
        errno = 0;
        cr_assert_null(tarn_malloc(sizes[i]), "size %zu", sizes[i]);
        cr_assert_eq(errno, ENOMEM);
    }
    char *p = tarn_malloc(300 * KiB);
    cr_assert_not_null(p);
    p[0] = 42;
    tarn__os_fail(0, 1);
    char *q = tarn_realloc(p, 64 * MiB);
    cr_assert_not_null(q, "when mremap fails, realloc falls back to a copy");
    cr_assert_eq(q[0], 42);
    errno = 0;
    cr_assert_null(tarn_realloc(q, (size_t)1 << 46), "64 TiB: neither mremap nor a copy fits");
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(q[0], 42, "a failed realloc keeps the block");
    tarn_free(q);
    tarn_free(warm);
}

/* Allocates `size`-byte blocks into v until page A is full and page B, the
 * next, has carved at least b_min; returns the count. */
static int fill_a_page(size_t size, void **v, int max, uint32_t b_min, tarn__page_t **a,
                       tarn__page_t **b) {
    int n = 0;
    *a = *b = NULL;
    while (n < max && (!*b || (*b)->capacity < b_min)) {
        v[n] = tarn_malloc(size);
        tarn__page_t *pg = tarn__page_of(tarn__segment_of(v[n]), v[n]);
        if (!*a)
            *a = pg;
        else if (pg != *a)
            *b = pg;
        n++;
    }
    cr_assert(*b && ((*a)->flags & TARN__PAGE_FULL), "the first page filled up");
    return n;
}

/* Each size lands in the page kind meant for it: 64 KiB pages up to
 * 8 KiB, 256 KiB up to 32 KiB, 512 KiB up to 128 KiB, then a mapping of
 * its own. */
Test(heap_pages, each_size_range_gets_its_page_kind) {
    const struct {
        size_t size;
        unsigned shift;
    } want[] = {
        {8 * KiB, TARN__SMALL_PAGE_SHIFT},    {8 * KiB + 1, TARN__MID_PAGE_SHIFT},
        {32 * KiB, TARN__MID_PAGE_SHIFT},     {32 * KiB + 1, TARN__MEDIUM_PAGE_SHIFT},
        {128 * KiB, TARN__MEDIUM_PAGE_SHIFT},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        void *p = tarn_malloc(want[i].size);
        cr_assert_not_null(p);
        cr_assert_eq(tarn__segment_of(p)->page_shift, want[i].shift, "size %zu", want[i].size);
        tarn_free(p);
    }
    void *p = tarn_malloc(128 * KiB + 1);
    tarn__segment_t *seg = tarn__segment_of(p);
    cr_assert_eq(seg->kind, TARN__SEG_LARGE);
    size_t page = tarn__os_page_size();
    cr_assert_eq(seg->size, tarn__align_up(page + 128 * KiB + 1, page),
                 "a mapping as long as the block");
    tarn_free(p);
}

/* Page A fills up and leaves the queue; page B is carved a little at a
 * time. Once B's carved blocks run out, blocks freed into A are handed out
 * before B carves more: carving would touch new memory while A's free
 * blocks sit committed. */
Test(heap_pages, freed_blocks_are_reused_before_carving) {
    enum { SIZE = 1000, MAX = 200 };
    void *v[MAX];
    tarn__page_t *a, *b;
    int n = fill_a_page(SIZE, v, MAX, 8, &a, &b);
    int freed = 0;
    for (int i = 0; i < n && freed < 5; i++)
        if (tarn__page_of(tarn__segment_of(v[i]), v[i]) == a) {
            tarn_free(v[i]);
            v[i] = NULL;
            freed++;
        }
    while (b->free)
        v[n++] = tarn_malloc(SIZE);
    uint32_t carved = b->capacity;
    for (int k = 0; k < freed; k++) {
        void *p = tarn_malloc(SIZE);
        cr_assert_eq(tarn__page_of(tarn__segment_of(p), p), a, "block %d reused from page A", k);
        v[n++] = p;
    }
    cr_assert_eq(b->capacity, carved, "page B carved nothing more");
    for (int i = 0; i < n; i++)
        tarn_free(v[i]);
}

/* Page A fills up, page B becomes the front; all of A's blocks but one are
 * freed. A realloc of that one to its own size keeps it; one that a smaller
 * class holds moves it out, and A empties and goes back to its segment. */
Test(heap_pages, realloc_moves_a_block_out_of_a_sparse_page) {
    enum { SIZE = 1000, MAX = 200 };
    char *v[MAX];
    tarn__page_t *a, *b;
    int n = fill_a_page(SIZE, (void **)v, MAX, 1, &a, &b);
    int kept = -1;
    for (int i = 0; i < n; i++) {
        if (tarn__page_of(tarn__segment_of(v[i]), v[i]) != a) continue;
        if (kept < 0) {
            kept = i;
            memset(v[i], 0x5a, SIZE);
            continue;
        }
        tarn_free(v[i]);
        v[i] = NULL;
    }
    cr_assert_eq(a->used, 1, "page A holds one block");
    cr_assert_eq(tarn_realloc(v[kept], SIZE), v[kept], "its own size: it stays");
    char *q = tarn_realloc(v[kept], 600);
    cr_assert_neq(q, v[kept], "the block left the sparse page");
    for (int i = 0; i < 600; i++)
        cr_assert_eq(q[i], 0x5a, "byte %d moved with it", i);
    cr_assert_eq(a->flags & TARN__PAGE_LIVE, 0, "page A emptied and was released");
    v[kept] = q;
    cr_assert_eq(tarn_realloc(q, 600), q, "in a page in use it stays put");
    for (int i = 0; i < n; i++)
        tarn_free(v[i]);
}

/* A block that fits moves out of a sparse page into a smaller class, whose
 * first page needs a new segment, and the OS has none: realloc keeps the
 * block where it is, as if it had not tried, instead of failing. */
Test(heap_oom, a_fitting_block_stays_when_its_move_finds_no_memory) {
    enum { MAX = 200, FILL = 600 };
    char *v[MAX];
    static void *fill[FILL];
    tarn__page_t *a, *b;
    int n = fill_a_page(1000, (void **)v, MAX, 1, &a, &b);
    int kept = -1;
    for (int i = 0; i < n; i++) {
        if (tarn__page_of(tarn__segment_of(v[i]), v[i]) != a) continue;
        if (kept < 0) {
            kept = i;
            continue;
        }
        tarn_free(v[i]);
        v[i] = NULL;
    }
    memset(v[kept], 0x5a, 600);
    tarn__segment_t *seg = tarn__segment_of(v[kept]);
    int nfill = 0;
    while (nfill < FILL && (seg->unused_pages || seg->page_next < seg->page_count))
        fill[nfill++] = tarn_malloc(8192); /* takes the segment's other pages */
    cr_assert_lt(nfill, FILL, "the segment filled up");
    tarn__os_fail(0, -1);
    errno = 0;
    char *q = tarn_realloc(v[kept], 600);
    tarn__os_fail(-1, 0);
    cr_assert_eq(q, v[kept], "the block stayed");
    cr_assert_eq(errno, 0, "and errno too");
    for (int i = 0; i < 600; i++)
        cr_assert_eq(q[i], 0x5a, "byte %d", i);
    for (int i = 0; i < n; i++)
        tarn_free(v[i]);
    for (int i = 0; i < nfill; i++)
        tarn_free(fill[i]);
}

/* Carves class `size` until its front page has no free block left; returns
 * the count kept in v. */
static int exhaust_class(size_t size, void **v, int max) {
    int n = 0;
    do {
        v[n] = tarn_malloc(size);
        n++;
    } while (n < max && tarn__page_of(tarn__segment_of(v[0]), v[0])->free);
    return n;
}

/* Carves class `size` dry while class `up_size` holds 39 freed blocks, then
 * asks once more: returns the usable size given, and whether the class's
 * own page carved more for it. */
static size_t ask_past_a_dry_class(size_t up_size, size_t size, bool *carved) {
    void *up[40], *v[64];
    for (int i = 0; i < 40; i++)
        up[i] = tarn_malloc(up_size);
    int n = exhaust_class(size, v, 64);
    for (int i = 1; i < 40; i++)
        tarn_free(up[i]);
    tarn__page_t *own = tarn__page_of(tarn__segment_of(v[0]), v[0]);
    uint32_t before = own->capacity;
    void *p = tarn_malloc(size);
    size_t got = tarn_usable_size(p);
    *carved = own->capacity != before;
    memset(p, 1, size);
    tarn_free(p);
    for (int i = 0; i < n; i++)
        tarn_free(v[i]);
    tarn_free(up[0]);
    return got;
}

/* Class 208 has run out of carved blocks; class 224 holds freed ones. */
Test(heap_pages, a_class_borrows_a_freed_block_of_the_next_class) {
    bool carved;
    cr_assert_eq(ask_past_a_dry_class(224, 200, &carved), 224, "the next class lent a block");
    cr_assert(!carved, "class 208 carved nothing more");
}

/* Past the direct table's sizes a class also borrows two classes up: class
 * 1152 has run out, 1280 has no page, 1408 holds freed blocks. */
Test(heap_pages, a_class_above_1_kib_borrows_two_classes_up) {
    bool carved;
    cr_assert_eq(ask_past_a_dry_class(1408, 1100, &carved), 1408, "two classes up lent one");
    cr_assert(!carved, "class 1152 carved nothing more");
}

/* A small class borrows from the next class only: with class 224 empty,
 * class 208 carves rather than take class 240's freed blocks. */
Test(heap_pages, a_small_class_borrows_from_the_next_class_only) {
    bool carved;
    cr_assert_eq(ask_past_a_dry_class(240, 200, &carved), 208, "its own class");
    cr_assert(carved, "carved from its own page");
}

/* An aligned request relies on its class's block size for alignment, so it
 * never borrows: 256-byte blocks are 64-aligned, the next class's 288 not. */
Test(heap_pages, aligned_requests_never_borrow) {
    void *up[40], *v[64];
    for (int i = 0; i < 40; i++)
        up[i] = tarn_malloc(288);
    for (int i = 1; i < 40; i++)
        tarn_free(up[i]);
    int n = exhaust_class(256, v, 64);
    for (int i = 0; i < 8; i++) {
        void *p = tarn_aligned_alloc(64, 200);
        cr_assert_eq((uintptr_t)p % 64, 0, "%p is 64-aligned", p);
        cr_assert_eq(tarn_usable_size(p), 256);
        tarn_free(p);
    }
    for (int i = 0; i < n; i++)
        tarn_free(v[i]);
    tarn_free(up[0]);
}
