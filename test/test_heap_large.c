/* Large blocks (above 128 KiB up to 4 MiB) in mappings of their own, and
 * far-aligned blocks (4 MiB and more) in their growable table: the address
 * space they cost (VmData from /proc), reuse of cached mappings, realloc in
 * place, zeroing, out of memory, fork, frees from another thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "heap/internal.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* A size field of /proc/self/status in bytes: VmData (private writable
 * mappings) or VmSize (all mappings, what RLIMIT_AS limits). */
static size_t vm_field(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    size_t kib = 0, n = strlen(name);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, n) && line[n] == ':') kib = strtoull(line + n + 1, NULL, 10);
    fclose(f);
    cr_assert(kib > 0, "%s read", name);
    return kib * KiB;
}

static size_t vm_data(void) { return vm_field("VmData"); }

static size_t segment_maps(void) { return atomic_load(&tarn__counters.segment_maps); }

/* n blocks of the sizes given (cycled) cost at most 1.1x their total in
 * address space, plus 1 MiB; each written at both ends. */
static void expect_footprint(const size_t *sizes, int kinds, int n) {
    void *warm = tarn_malloc(16); /* the heap itself is not what is measured */
    size_t before = vm_data(), total = 0;
    void *p[64];
    cr_assert(n <= 64);
    for (int i = 0; i < n; i++) {
        size_t size = sizes[i % kinds];
        p[i] = tarn_malloc(size);
        cr_assert_not_null(p[i]);
        ((char *)p[i])[0] = ((char *)p[i])[size - 1] = 1;
        total += size;
    }
    size_t grown = vm_data() - before;
    cr_assert(grown <= total + total / 10 + MiB, "%d blocks of %zu KiB in all: VmData +%zu KiB", n,
              total / KiB, grown / KiB);
    cr_assert(grown >= total, "the blocks themselves are mapped: +%zu KiB", grown / KiB);
    for (int i = 0; i < n; i++)
        tarn_free(p[i]);
    tarn_free(warm);
}

Test(large_footprint, forty_blocks_of_one_mib) {
    size_t sizes[] = {MiB};
    expect_footprint(sizes, 1, 40);
}

Test(large_footprint, forty_blocks_of_200_kib) {
    size_t sizes[] = {200 * KiB};
    expect_footprint(sizes, 1, 40);
}

Test(large_footprint, a_mix_from_128_kib_to_4_mib) {
    size_t sizes[] = {128 * KiB + 1, 300 * KiB, 777 * KiB, MiB + 5, 2 * MiB, TARN__LARGE_MAX};
    expect_footprint(sizes, 6, 48);
}

static size_t vm_size(void) { return vm_field("VmSize"); }

/* Under an address-space limit 64 MiB above what the process maps, 40
 * blocks of 1 MiB fit (they took 160 MiB when each had a segment). */
Test(large_footprint, forty_mib_under_an_address_space_limit) {
    void *warm = tarn_malloc(16);
    struct rlimit lim = {vm_size() + 64 * MiB, vm_size() + 64 * MiB};
    cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
    void *p[40];
    for (int i = 0; i < 40; i++) {
        p[i] = tarn_malloc(MiB);
        cr_assert_not_null(p[i], "block %d under the limit", i);
    }
    for (int i = 0; i < 40; i++)
        tarn_free(p[i]);
    tarn_free(warm);
}

/* A freed large block's mapping is kept and taken by the next request it
 * fits: no new mapping. */
Test(large_cache, a_freed_mapping_is_reused) {
    void *warm = tarn_malloc(16);
    char *p = tarn_malloc(MiB);
    size_t maps = segment_maps();
    tarn_free(p);
    char *q = tarn_malloc(MiB - 1000);
    cr_assert_eq(q, p, "the same mapping, same block start");
    cr_assert_eq(segment_maps(), maps, "no mapping made");
    tarn_free(q);
    tarn_free(warm);
}

/* A cached mapping more than twice the request is cut to twice it; one at
 * most twice is kept whole (docs/heap.md: cutting to an eighth cost a
 * munmap per reuse and faults later). */
Test(large_cache, a_much_larger_mapping_is_trimmed) {
    void *warm = tarn_malloc(16);
    size_t page = tarn__os_page_size(), total = tarn__align_up(page + 200 * KiB, page);
    char *p = tarn_malloc(3 * MiB);
    tarn_free(p);
    size_t maps = segment_maps();
    char *q = tarn_malloc(200 * KiB);
    cr_assert_eq(q, p);
    cr_assert_eq(segment_maps(), maps);
    cr_assert_eq(tarn__segment_of(q)->size, 2 * total, "cut to twice the block");
    cr_assert(tarn_usable_size(q) >= 2 * total - page, "the whole mapping is usable");
    tarn_free(q);
    char *r = tarn_malloc(300 * KiB);
    cr_assert_eq(r, p);
    cr_assert_eq(tarn__segment_of(r)->size, 2 * total, "kept whole");
    tarn_free(r);
    tarn_free(warm);
}

/* A cached mapping too small for the request grows in place (the rest of
 * its 4 MiB frame was left free when it was mapped). */
Test(large_cache, a_smaller_mapping_grows_in_place) {
    void *warm = tarn_malloc(16);
    char *p = tarn_malloc(200 * KiB);
    memset(p, 0x5a, 200 * KiB);
    tarn_free(p);
    size_t maps = segment_maps();
    char *q = tarn_malloc(3 * MiB);
    cr_assert_eq(q, p, "grown in place");
    cr_assert_eq(segment_maps(), maps, "no mapping made");
    q[3 * MiB - 1] = 1;
    tarn_free(q);
    tarn_free(warm);
}

/* calloc from a cached mapping the last block wrote clears it. */
Test(large_cache, calloc_of_a_reused_mapping_is_zero) {
    void *warm = tarn_malloc(16);
    unsigned char *p = tarn_malloc(MiB);
    memset(p, 0xab, MiB);
    tarn_free(p);
    unsigned char *q = tarn_calloc(1, MiB);
    cr_assert_eq(q, p, "the cached mapping");
    for (size_t i = 0; i < MiB; i += 512)
        cr_assert_eq(q[i], 0, "byte %zu", i);
    tarn_free(q);
    tarn_free(warm);
}

/* A cached segment of pages may serve a large block, never the other way:
 * the block writes where page headers 1.. lie, and those must not read
 * LIVE before they are set up; nor do its page headers read as zeros. */
Test(large_cache, a_segment_of_pages_serves_a_large_block_only_once) {
    tarn__heap_t *h = tarn__heap_init_thread();
    tarn__page_t *pg = tarn__segment_page_alloc(h, TARN__SEG_MEDIUM);
    cr_assert_not_null(pg);
    tarn__segment_t *pages = tarn__segment_of(pg);
    tarn__segment_page_free(h, pg); /* its last page: into the cache, no block carved */
    cr_assert_eq(h->cache, pages);
    unsigned char *p = tarn_malloc(3 * MiB);
    cr_assert_eq(tarn__segment_of(p), pages, "the cached segment, kept whole");
    memset(p, 0xff, 3 * MiB);
    tarn_free(p);
    tarn__segment_t *next = tarn__segment_alloc(h, TARN__SEG_SMALL);
    cr_assert_neq(next, pages, "a segment of pages does not take the large block's mapping");
    tarn__segment_unmap(next);
    unsigned char *z = tarn_calloc(1, 3 * MiB);
    cr_assert_eq(tarn__segment_of(z), pages);
    for (size_t i = 0; i < 3 * MiB; i += 256)
        cr_assert_eq(z[i], 0, "byte %zu", i);
    tarn_free(z);
}

/* A cached mapping goes back to the OS after its delay. */
Test(large_cache, a_cached_mapping_is_unmapped_after_the_delay) {
    void *warm = tarn_malloc(16);
    char *p = tarn_malloc(MiB);
    tarn_free(p);
    size_t cached = vm_data();
    tarn_collect(false);
    cr_assert_eq(vm_data(), cached, "kept before its delay");
    usleep((tarn__purge_delay(true) + 50) * 1000);
    tarn_collect(false); /* what the slow paths call: it keeps to the delay */
    cr_assert(vm_data() <= cached - MiB, "the mapping is gone: %zu -> %zu", cached, vm_data());
    tarn_free(warm);
}

Test(large_realloc, grows_and_shrinks_in_place) {
    void *warm = tarn_malloc(16);
    size_t page = tarn__os_page_size();
    unsigned char *p = tarn_malloc(200 * KiB);
    for (size_t i = 0; i < 200 * KiB; i++)
        p[i] = (unsigned char)(i * 13);
    size_t maps = segment_maps();
    unsigned char *q = tarn_realloc(p, 3 * MiB);
    cr_assert_eq(q, p, "grown in place");
    cr_assert_eq(segment_maps(), maps);
    cr_assert(tarn_usable_size(q) >= 3 * MiB);
    q[3 * MiB - 1] = 7;
    unsigned char *r = tarn_realloc(q, 150 * KiB);
    cr_assert_eq(r, p, "shrunk in place");
    cr_assert_eq(tarn__segment_of(r)->size, tarn__align_up(page + 150 * KiB, page),
                 "tail unmapped");
    for (size_t i = 0; i < 150 * KiB; i++)
        cr_assert_eq(r[i], (unsigned char)(i * 13), "byte %zu", i);
    unsigned char *h = tarn_realloc(r, 9 * MiB);
    cr_assert_not_null(h);
    cr_assert_eq(tarn__segment_of(h)->kind, TARN__SEG_HUGE, "past LARGE_MAX it is huge");
    for (size_t i = 0; i < 150 * KiB; i++)
        cr_assert_eq(h[i], (unsigned char)(i * 13), "byte %zu", i);
    tarn_free(h);
    tarn_free(warm);
}

/* The block's live bytes follow it through realloc and free. */
Test(large_realloc, live_bytes_follow_the_block) {
    tarn__heap_t *h = tarn__heap_init_thread();
    size_t live = atomic_load(&h->live_bytes);
    char *p = tarn_malloc(300 * KiB);
    cr_assert(atomic_load(&h->live_bytes) >= live + 300 * KiB);
    p = tarn_realloc(p, 2 * MiB);
    cr_assert(atomic_load(&h->live_bytes) >= live + 2 * MiB);
    tarn_free(p);
    cr_assert_eq(atomic_load(&h->live_bytes), live);
}

Test(large_oom, a_cached_mapping_serves_without_the_os) {
    void *warm = tarn_malloc(16);
    char *p = tarn_malloc(MiB);
    tarn_free(p);
    tarn__os_fail(0, -1);
    errno = 0;
    cr_assert_null(tarn_malloc(3 * MiB), "neither the cache (grow) nor the OS has it");
    cr_assert_eq(errno, ENOMEM);
    char *q = tarn_malloc(MiB);
    cr_assert_eq(q, p, "the cached mapping needs no call");
    errno = 0;
    cr_assert_null(tarn_realloc(q, 3 * MiB), "no in-place growth, no move, no copy");
    cr_assert_eq(errno, ENOMEM);
    q[MiB - 1] = 3;
    tarn__os_fail(-1, 0);
    cr_assert_eq(tarn_usable_size(q) >= MiB, 1, "a failed realloc keeps the block");
    tarn_free(q);
    tarn_free(warm);
}

/* The child inherits the parent's large blocks and cache and uses both. */
Test(large_fork, the_child_frees_and_reuses) {
    char *live = tarn_malloc(MiB);
    char *cached = tarn_malloc(2 * MiB);
    live[0] = 9;
    tarn_free(cached);
    pid_t pid = fork();
    if (pid == 0) {
        if (live[0] != 9) _exit(1);
        tarn_free(live);
        char *again = tarn_malloc(2 * MiB);
        if (again != cached) _exit(2);
        tarn_free(again);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_assert_eq(live[0], 9);
    tarn_free(live);
}

static void *free_and_reuse(void *arg) {
    void **blocks = arg;
    tarn_free(tarn_malloc(16)); /* a heap of its own, to cache into */
    tarn_free(blocks[0]);
    blocks[1] = tarn_malloc(MiB);
    return NULL;
}

/* Another thread's free takes the mapping into its own cache: that thread's
 * next large block reuses it, and the owner's live bytes drop. */
Test(large_threads, a_block_freed_by_another_thread) {
    tarn__heap_t *h = tarn__heap_init_thread();
    size_t live = atomic_load(&h->live_bytes);
    void *blocks[2] = {tarn_malloc(MiB), NULL};
    cr_assert(atomic_load(&h->live_bytes) > live);
    pthread_t t;
    pthread_create(&t, NULL, free_and_reuse, blocks);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&h->live_bytes), live, "the owner's count dropped");
    cr_assert_eq(blocks[1], blocks[0], "the freeing thread reused the mapping");
    tarn_free(blocks[1]);
}

static void *free_only(void *arg) {
    tarn_free(arg); /* this thread never allocated: it has no heap to cache into */
    return NULL;
}

/* A thread without a heap unmaps the block it frees. */
Test(large_threads, a_block_freed_by_a_thread_without_a_heap) {
    void *p = tarn_malloc(MiB);
    size_t unmaps = atomic_load(&tarn__counters.segment_unmaps);
    pthread_t t;
    pthread_create(&t, NULL, free_only, p);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&tarn__counters.segment_unmaps), unmaps + 1);
    cr_assert(!tarn__segment_known((uintptr_t)p), "its map bit is cleared");
}

/* ---- far-aligned blocks ------------------------------------------------ */
enum { FAR_N = 1200 };

static size_t far_size(int i) { return i % 3 == 0 ? 100 : i % 3 == 1 ? 8 * KiB : 70 * KiB; }

Test(far, more_than_a_thousand_live_blocks) {
    test_capture_errors();
    static char *p[FAR_N];
    size_t base = tarn__far_count();
    for (int i = 0; i < FAR_N; i++) {
        size_t align = i % 5 == 0 ? 8 * MiB : 4 * MiB;
        p[i] = tarn_aligned_alloc(align, far_size(i));
        cr_assert_not_null(p[i], "block %d", i);
        cr_assert_eq((uintptr_t)p[i] % align, 0);
        memset(p[i], i & 0xff, far_size(i));
    }
    cr_assert_eq(tarn__far_count(), base + FAR_N);
    for (int i = 0; i < FAR_N; i += 2)
        tarn_free(p[i]); /* every other one */
    for (int i = 1; i < FAR_N; i += 2) {
        cr_assert(tarn_usable_size(p[i]) >= far_size(i), "block %d", i);
        cr_assert_eq((unsigned char)p[i][far_size(i) - 1], i & 0xff, "block %d", i);
    }
    for (int i = 0; i < FAR_N; i += 2) { /* the freed ones: refused */
        cr_assert_eq(tarn_usable_size(p[i]), 0);
        expect_report("did not allocate");
    }
    for (int i = 0; i < FAR_N; i += 2) { /* and taken again */
        p[i] = tarn_memalign(4 * MiB, far_size(i));
        cr_assert_not_null(p[i]);
    }
    for (int i = 1; i < FAR_N; i += 4) { /* realloc moves them to the heap */
        char *q = tarn_realloc(p[i], far_size(i) + 10);
        cr_assert_not_null(q);
        cr_assert_eq((unsigned char)q[far_size(i) - 1], i & 0xff, "block %d", i);
        p[i] = q;
    }
    cr_assert_eq(tarn__far_count(), base + FAR_N - (FAR_N + 2) / 4);
    for (int i = 0; i < FAR_N; i++)
        tarn_free(p[i]);
    cr_assert_eq(tarn__far_count(), base);
    cr_assert_eq(test_error_count, 0, "no other report");
}

Test(far, double_free_is_reported) {
    test_capture_errors();
    void *p = tarn_aligned_alloc(4 * MiB, 100);
    cr_assert_not_null(p);
    tarn_free(p);
    tarn_free(p);
    expect_report("did not allocate");
}

Test(far, a_block_of_size_zero_is_a_block) {
    test_capture_errors();
    /* Called through a pointer: alloc_size(2) would tell UBSan the block
     * holds 0 bytes, while the point is that its usable bytes are there. */
    void *(*volatile aligned_alloc_)(size_t, size_t) = tarn_aligned_alloc;
    char *p = aligned_alloc_(4 * MiB, 0);
    cr_assert_not_null(p);
    cr_assert(tarn_usable_size(p) > 0);
    p[0] = 1;
    tarn_free(p);
    cr_assert_eq(test_error_count, 0, "%s", test_last_error);
}

Test(far, out_of_memory_for_the_block_or_the_table) {
    void *first = tarn_aligned_alloc(4 * MiB, 100); /* the table's first page */
    cr_assert_not_null(first);
    tarn__os_fail(0, 1);
    errno = 0;
    cr_assert_null(tarn_aligned_alloc(4 * MiB, 100));
    cr_assert_eq(errno, ENOMEM);
    /* Fill the first table to half, then let the block map but not the
     * doubled table: the block is given back. */
    static void *p[200];
    int n = 0;
    while (tarn__far_count() < 128)
        p[n++] = tarn_aligned_alloc(4 * MiB, 100);
    size_t count = tarn__far_count();
    tarn__os_fail(1, 1);
    errno = 0;
    cr_assert_null(tarn_aligned_alloc(4 * MiB, 100), "no room for the table");
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(tarn__far_count(), count);
    void *q = tarn_aligned_alloc(4 * MiB, 100);
    cr_assert_not_null(q, "the table grows once the OS gives memory");
    tarn_free(q);
    for (int i = 0; i < n; i++)
        tarn_free(p[i]);
    tarn_free(first);
}

static atomic_bool far_stop;

static void *far_churn(void *arg) {
    (void)arg;
    while (!atomic_load(&far_stop)) {
        void *p = tarn_aligned_alloc(4 * MiB, 100);
        if (p) tarn_free(p);
    }
    return NULL;
}

/* fork while another thread allocates and frees far-aligned blocks: the
 * table's lock is held across the fork, so the child finds it free and
 * consistent. */
Test(far, fork_while_another_thread_uses_the_table) {
    pthread_t t;
    pthread_create(&t, NULL, far_churn, NULL);
    void *kept = tarn_aligned_alloc(4 * MiB, 100);
    cr_assert_not_null(kept);
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            size_t live = tarn__far_count(); /* kept, and maybe the other thread's */
            void *p = tarn_aligned_alloc(8 * MiB, 100);
            bool ok = p && tarn__far_count() == live + 1 && tarn_usable_size(kept) >= 100;
            tarn_free(p);
            tarn_free(kept);
            _exit(ok && tarn__far_count() == live - 1 ? 0 : 1);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", i, status);
    }
    atomic_store(&far_stop, true);
    pthread_join(t, NULL);
    tarn_free(kept);
}
