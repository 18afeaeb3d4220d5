/* The foreign cache: small blocks a thread frees for another heap wait
 * with it and come back on its own allocations of their class (free.c).
 * The test's main thread allocates the blocks; a second thread frees them. */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"
#include "heap/internal.h"

enum { SIZE = 48, N = TARN__FOREIGN_MAX + 8 };

static void *theirs[N];
static tarn__heap_t *owner;

static unsigned cls(void) { return tarn__size_class(SIZE); }

static tarn__page_t *cache(void) { return &tarn__tls_heap->foreign[cls()]; }

static size_t held(void) { return cache()->pushed - cache()->used; }

static tarn__page_t *direct(void) { return tarn__tls_heap->direct[(SIZE + 7) >> 3]; }

static bool is_theirs(const void *p) {
    for (int i = 0; i < N; i++)
        if (theirs[i] == p) return true;
    return false;
}

static bool owner_has_remote_frees(void) { return atomic_load(&owner->remote_pages) != NULL; }

/* Allocates N blocks here, then runs body(arg) in another thread. */
static void run_with(void *(*body)(void *), void *arg) {
    for (int i = 0; i < N; i++)
        theirs[i] = tarn_malloc(SIZE);
    owner = tarn__tls_heap;
    pthread_t t;
    pthread_create(&t, NULL, body, arg);
    pthread_join(t, NULL);
}

static void run(void *(*body)(void *)) { run_with(body, NULL); }

/* This thread allocates one block of own_size (so that it uses that class),
 * then frees the first n of theirs; returns its own block. */
static void *free_theirs(size_t own_size, int n) {
    void *own = tarn_malloc(own_size);
    for (int i = 0; i < n; i++)
        tarn_free(theirs[i]);
    return own;
}

/* Past FOREIGN_FLIP blocks, the fast path hands them out, newest first;
 * once they are spent the class's slots point at its own page again. */
static void *reuse(void *arg) {
    void *own = free_theirs(SIZE, 8);
    cr_assert_eq(held(), 8);
    cr_assert_eq(direct(), cache(), "the fast path takes them");
    void *got[8];
    for (int i = 0; i < 8; i++) {
        got[i] = tarn_malloc(SIZE);
        cr_assert_eq(got[i], theirs[7 - i], "allocation %d", i);
    }
    void *next = tarn_malloc(SIZE);
    cr_assert(!is_theirs(next), "the cache is spent");
    cr_assert_eq(direct(), tarn__tls_heap->queues[cls()].first, "and switched off");
    tarn_free(next);
    for (int i = 0; i < 8; i++)
        tarn_free(got[i]);
    tarn_free(own);
    return arg;
}

Test(heap_foreign, a_thread_reuses_what_it_freed_for_another) { run(reuse); }

/* Fewer than FOREIGN_FLIP stay off the fast path: the class's own page
 * comes first, then they come before carving more of it. */
static void *below_switch(void *arg) {
    void *own[256];
    int n = 0;
    own[n++] = tarn_malloc(SIZE);
    tarn__page_t *pg = tarn__page_of(tarn__segment_of(own[0]), own[0]);
    for (int i = 0; i < TARN__FOREIGN_FLIP - 1; i++)
        tarn_free(theirs[i]);
    cr_assert_neq(direct(), cache());
    while (pg->free && n < 255) {
        own[n] = tarn_malloc(SIZE);
        cr_assert(!is_theirs(own[n]), "own carved blocks first");
        n++;
    }
    uint32_t carved = pg->capacity;
    void *p = tarn_malloc(SIZE);
    cr_assert(is_theirs(p), "then a cached block");
    cr_assert_eq(pg->capacity, carved, "before carving");
    tarn_free(p);
    for (int i = 0; i < n; i++)
        tarn_free(own[i]);
    return arg;
}

Test(heap_foreign, below_the_switch_they_come_before_carving) { run(below_switch); }

/* The cache holds FOREIGN_MAX blocks a class; the rest go to their owner. */
static void *overflow(void *arg) {
    void *own = free_theirs(SIZE, N);
    cr_assert_eq(held(), TARN__FOREIGN_MAX);
    cr_assert(owner_has_remote_frees(), "the others went back");
    tarn_free(own);
    return arg;
}

Test(heap_foreign, the_cache_holds_a_bounded_number) { run(overflow); }

/* A thread that does not allocate the class keeps nothing of it. */
static void *other_class(void *arg) {
    void *own = free_theirs(4000, 8);
    cr_assert_eq(held(), 0);
    cr_assert(owner_has_remote_frees());
    tarn_free(own);
    return arg;
}

Test(heap_foreign, a_thread_without_the_class_frees_remotely) { run(other_class); }

/* tarn_stats_print counts them. */
static void *stats(void *arg) {
    void *own = free_theirs(SIZE, 8);
    char buf[2048] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    tarn_stats_print(f);
    fclose(f);
    cr_assert(strstr(buf, "8 blocks of other threads kept for reuse"), "%s", buf);
    tarn_free(own);
    return arg;
}

Test(heap_foreign, stats_count_them) { run(stats); }

/* tarn_collect(true) gives the cached blocks back to their owner. */
static void *collect(void *arg) {
    void *own = free_theirs(SIZE, 8);
    cr_assert(!owner_has_remote_frees());
    tarn_collect(true);
    cr_assert_eq(held(), 0);
    cr_assert(owner_has_remote_frees());
    cr_assert_eq(direct(), tarn__tls_heap->queues[cls()].first);
    tarn_free(own);
    return arg;
}

Test(heap_foreign, collect_gives_them_back) { run(collect); }

/* Thread exit does too: the owner collects every block. */
static void *keep_and_exit(void *arg) {
    void *own = free_theirs(SIZE, 8);
    cr_assert_eq(held(), 8, "kept until the exit");
    cr_assert(!owner_has_remote_frees());
    tarn_free(own);
    return arg;
}

Test(heap_foreign, an_exiting_thread_gives_them_back) {
    run(keep_and_exit);
    tarn__page_t *pg = tarn__page_of(tarn__segment_of(theirs[0]), theirs[0]);
    cr_assert_eq(pg->used, N, "remote frees still count until collected");
    tarn__heap_collect_remote(tarn__tls_heap);
    cr_assert_eq(pg->used, N - 8, "all eight came back");
    for (int i = 8; i < N; i++)
        tarn_free(theirs[i]);
}

/* A block freed twice in a row into the cache is reported, not cached twice
 * nor sent to its owner, whether the cache has room (one block in it) or
 * is full. */
static void *free_last_twice(void *arg) {
    int n = (int)(intptr_t)arg;
    void *own = free_theirs(SIZE, n);
    tarn_free(theirs[n - 1]);
    cr_assert_eq(held(), (size_t)n);
    cr_assert(!owner_has_remote_frees());
    tarn_free(own);
    return NULL;
}

Test(heap_foreign, a_double_free_into_the_cache_is_reported) {
    test_capture_errors();
    run_with(free_last_twice, (void *)(intptr_t)1);
    expect_report("double free of");
}

Test(heap_foreign, a_double_free_into_a_full_cache_is_reported) {
    test_capture_errors();
    run_with(free_last_twice, (void *)(intptr_t)TARN__FOREIGN_MAX);
    expect_report("double free of");
}

/* The same for the first block cached, with others cached after it (the
 * A-B-A pattern, which a check of the cache's head alone let through). */
static void *free_first_again(void *arg) {
    int n = (int)(intptr_t)arg;
    void *own = free_theirs(SIZE, n);
    tarn_free(theirs[0]);
    cr_assert_eq(held(), (size_t)n);
    cr_assert(!owner_has_remote_frees());
    tarn_free(own);
    return NULL;
}

Test(heap_foreign, a_double_free_under_other_cached_blocks_is_reported) {
    test_capture_errors();
    run_with(free_first_again, (void *)(intptr_t)8);
    expect_report("double free of");
}

/* While the cache is switched on, a queue change for the class (here its
 * front page filling up and leaving the queue) leaves the slots on it. */
static void *queue_change_while_on(void *arg) {
    static void *own[2048];
    int n = 0;
    own[n++] = tarn_malloc(SIZE);
    tarn__page_t *pg = tarn__page_of(tarn__segment_of(own[0]), own[0]);
    while ((pg->free || pg->capacity < pg->reserved) && n < 2048)
        own[n++] = tarn_malloc(SIZE);
    cr_assert_eq(tarn__tls_heap->queues[cls()].first, pg, "full but still queued");
    for (int i = 0; i < 8; i++)
        tarn_free(theirs[i]);
    cr_assert_eq(direct(), cache());
    void *p = tarn__alloc_class(tarn__tls_heap, cls(), true);
    cr_assert_neq(tarn__tls_heap->queues[cls()].first, pg, "the full page left the queue");
    cr_assert_eq(p, theirs[7]);
    cr_assert_eq(direct(), cache(), "the slots stayed on the cache");
    tarn_free(p);
    cr_assert_eq(held(), 8, "kept again, though no page of the class is queued now");
    for (int i = 0; i < n; i++)
        tarn_free(own[i]);
    return arg;
}

Test(heap_foreign, a_queue_change_leaves_the_cache_on) { run(queue_change_while_on); }

/* The caches of one thread hold FOREIGN_TOTAL blocks in all, whatever the
 * classes: 10 classes of FOREIGN_MAX blocks each are more than that. */
enum { CLASSES = 10 };
static void *spread[CLASSES][TARN__FOREIGN_MAX];

static void *total_cap(void *arg) {
    void *own[CLASSES];
    for (int c = 0; c < CLASSES; c++)
        own[c] = tarn_malloc((size_t)(c + 1) * 16);
    for (int c = 0; c < CLASSES; c++)
        for (int i = 0; i < TARN__FOREIGN_MAX; i++)
            tarn_free(spread[c][i]);
    cr_assert_eq(tarn__foreign_held(tarn__tls_heap), TARN__FOREIGN_TOTAL);
    cr_assert(owner_has_remote_frees(), "the rest went back");
    for (int c = 0; c < CLASSES; c++)
        tarn_free(own[c]);
    return arg;
}

Test(heap_foreign, a_thread_holds_a_bounded_total) {
    _Static_assert(CLASSES * TARN__FOREIGN_MAX > TARN__FOREIGN_TOTAL, "more than the total");
    for (int c = 0; c < CLASSES; c++)
        for (int i = 0; i < TARN__FOREIGN_MAX; i++)
            spread[c][i] = tarn_malloc((size_t)(c + 1) * 16);
    owner = tarn__tls_heap;
    pthread_t t;
    pthread_create(&t, NULL, total_cap, NULL);
    pthread_join(t, NULL);
}
