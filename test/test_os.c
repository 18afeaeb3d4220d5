/* The OS layer and the error path every module stands on. */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>

#include "common.h"

Test(os, map_aligned_is_aligned_and_zeroed) {
    size_t align = (size_t)1 << 21;
    char *p = tarn__os_map_aligned(3 * 4096, align);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % align, 0);
    for (size_t i = 0; i < 3 * 4096; i += 512)
        cr_assert_eq(p[i], 0);
    p[3 * 4096 - 1] = 1;
    tarn__os_unmap(p, 3 * 4096);
}

Test(os, decommit_returns_pages_and_zeroes) {
    size_t len = (size_t)64 << 20;
    char *p = tarn__os_map(len);
    cr_assert_not_null(p);
    memset(p, 0xab, len);
    size_t before = tarn__os_rss();
    tarn__os_decommit(p, len);
    size_t after = tarn__os_rss();
    cr_assert(before - after >= len - (1 << 20), "rss %zu -> %zu", before, after);
    cr_assert_eq(p[12345], 0);
    tarn__os_unmap(p, len);
}

/* Resident is what was written, not what was mapped, and decommit clears it. */
Test(os, resident_counts_only_touched_pages) {
    size_t page = tarn__os_page_size(), len = 64 * page;
    char *p = tarn__os_map(len);
    cr_assert_not_null(p);
    madvise(p, len, MADV_NOHUGEPAGE); /* one write must fault in one page */
    cr_assert_eq(tarn__os_resident(p, len), 0);
    p[0] = p[5 * page + 7] = p[len - 1] = 1;
    cr_assert_eq(tarn__os_resident(p, len), 3 * page);
    cr_assert_eq(tarn__os_resident(p + page, 4 * page), 0, "a range between touched pages");
    tarn__os_decommit(p, len);
    cr_assert_eq(tarn__os_resident(p, len), 0);
    tarn__os_unmap(p, len);
}

/* A range the kernel cannot account for (here half unmapped) counts as
 * wholly resident: the budget then gives back too much, never too little. */
Test(os, resident_of_an_unmapped_range_counts_it_all) {
    size_t page = tarn__os_page_size();
    char *p = tarn__os_map(2 * page);
    cr_assert_not_null(p);
    tarn__os_unmap(p + page, page);
    cr_assert_eq(tarn__os_resident(p, 2 * page), 2 * page);
    tarn__os_unmap(p, page);
}

Test(os, fault_injection_fails_from_the_chosen_call_until_turned_off) {
    tarn__os_fail(1, -1);
    void *a = tarn__os_map(4096);
    errno = 0;
    void *b = tarn__os_map(4096);
    cr_assert_not_null(a);
    cr_assert_null(b);
    cr_assert_eq(errno, ENOMEM);
    cr_assert_null(tarn__os_reserve(1 << 20, 4096), "injection keeps failing");
    tarn__os_fail(-1, 0);
    void *c = tarn__os_map(4096);
    cr_assert_not_null(c);
    tarn__os_unmap(a, 4096);
    tarn__os_unmap(c, 4096);
}

Test(os, random_values_differ) { cr_assert_neq(tarn__os_random(), tarn__os_random()); }

Test(error, user_handler_receives_the_message) {
    test_capture_errors();
    tarn__report("double free of %p", (void *)0x1234);
    expect_report("double free of 0x1234");
}

Test(error, default_handler_aborts, .signal = SIGABRT) {
    tarn__report("corrupted header at %p", (void *)0x10);
}

Test(os, fault_injection_can_fail_a_given_number_of_calls) {
    tarn__os_fail(0, 2);
    cr_assert_null(tarn__os_map(4096));
    cr_assert_null(tarn__os_reserve(1 << 20, 4096));
    void *p = tarn__os_map(4096);
    cr_assert_not_null(p, "only two calls fail");
    tarn__os_unmap(p, 4096);
}

/* An aligned mapping leaves the rest of its frame free, so it can grow in
 * place to the frame's end; where the next addresses are taken it cannot,
 * and says so without touching errno. */
Test(os, an_aligned_mapping_extends_into_its_frame) {
    size_t page = tarn__os_page_size(), frame = (size_t)4 << 20;
    char *p = tarn__os_map_aligned(3 * page, frame);
    cr_assert_not_null(p);
    p[0] = 1;
    cr_assert(tarn__os_extend(p, 3 * page, frame), "grown to the frame's end");
    p[frame - 1] = 2;
    cr_assert_eq(p[0], 1);
    void *next =
        mmap(p + frame, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    cr_assert_eq(next, (void *)(p + frame), "the address after it was free");
    errno = 12345;
    cr_assert(!tarn__os_extend(p, frame, frame + page), "the next page is taken");
    cr_assert_eq(errno, 12345);
    cr_assert_eq(p[frame - 1], 2, "nothing changed");
    munmap(next, page);
    tarn__os_unmap(p, frame);
}
