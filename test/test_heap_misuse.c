/* Heap misuse: every double free and every pointer that is not the start of
 * a block in use is reported, for each size range (small 16 and 48 B, 1000 B,
 * mid 20000 B, medium 100 KiB, large 1 MiB, huge 8 MiB), from the owning
 * thread and from others; after each report the heap is unchanged and goes
 * on handing out distinct blocks. Each case is its own test, so its own
 * process. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "heap/internal.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static bool is_large(size_t size) { return size > TARN__MEDIUM_MAX; } /* large or huge */
static bool is_huge(size_t size) { return size > TARN__LARGE_MAX; }

/* Asserts one report since the last check, containing `needle` and naming
 * pointer p. */
#define expect_report_about(needle, p)                                                             \
    do {                                                                                           \
        char ptr_[32];                                                                             \
        snprintf(ptr_, sizeof ptr_, "%p", (void *)(p));                                            \
        cr_assert(strstr(test_last_error, ptr_), "report \"%s\" does not name %s",                 \
                  test_last_error, ptr_);                                                          \
        expect_report(needle);                                                                     \
    } while (0)

/* The report for a second free of a block of `size`: a huge block's mapping
 * is gone, so its pointer is no longer tarn's. */
static const char *double_free_needle(size_t size) {
    return is_huge(size) ? "did not allocate (or already freed)" : "double free of";
}

/* An offset into a block that is not a block start: 16, as in the issue,
 * except in 16-byte blocks. */
static size_t inside(size_t bs) { return bs > 16 ? 16 : 8; }

/* Says "an interior pointer N bytes into a block of B at P" into text. */
static const char *interior_text(char *text, size_t cap, const void *p, size_t bs) {
    snprintf(text, cap, "an interior pointer %zu bytes into a block of %zu at %p", inside(bs), bs,
             p);
    return text;
}

static int by_address(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

/* Allocates many blocks of `size`, checks that no two overlap and that each
 * keeps what was written into it, frees them: no report on the way. */
static void heap_still_works(size_t size) {
    enum { MAX = 300 };
    static uintptr_t v[MAX];
    int n = size <= 1024 ? MAX : is_large(size) ? 4 : 40;
    for (int i = 0; i < n; i++) {
        char *p = tarn_malloc(size);
        cr_assert_not_null(p);
        cr_assert_geq(tarn_usable_size(p), size);
        memcpy(p, &i, sizeof i);
        memcpy(p + size - sizeof i, &i, sizeof i);
        v[i] = (uintptr_t)p;
    }
    for (int i = 0; i < n; i++) {
        int head, tail;
        memcpy(&head, (char *)v[i], sizeof head);
        memcpy(&tail, (char *)v[i] + size - sizeof tail, sizeof tail);
        cr_assert(head == i && tail == i, "block %d at %p was overwritten", i, (void *)v[i]);
    }
    qsort(v, (size_t)n, sizeof *v, by_address);
    for (int i = 1; i < n; i++)
        cr_assert_geq(v[i], v[i - 1] + size, "blocks %p and %p overlap", (void *)v[i - 1],
                      (void *)v[i]);
    for (int i = 0; i < n; i++)
        tarn_free((void *)v[i]);
    cr_assert_eq(test_error_count, 0, "no report while the heap is used rightly (%s)",
                 test_last_error);
}

/* One test per size range for each case below. */
#define EVERY_SIZE(body)                                                                           \
    Test(body, small_16) { body(16); }                                                             \
    Test(body, small_48) { body(48); }                                                             \
    Test(body, small_1000) { body(1000); }                                                         \
    Test(body, mid_20000) { body(20000); }                                                         \
    Test(body, medium_100k) { body(100 * KiB); }                                                   \
    Test(body, large_1m) { body(MiB); }                                                            \
    Test(body, huge_8m) { body(8 * MiB); }

/* free(a); free(b); free(a): glibc's tcache catches it; tarn did not. */
static void a_b_a(size_t size) {
    test_capture_errors();
    void *keep = tarn_malloc(size); /* the page stays in use */
    char *a = tarn_malloc(size), *b = tarn_malloc(size);
    size_t bs = tarn_usable_size(a);
    tarn_free(a);
    tarn_free(b);
    tarn_free(a);
    if (!is_large(size)) {
        char with_size[32];
        snprintf(with_size, sizeof with_size, "(size %zu)", bs);
        cr_assert(strstr(test_last_error, with_size), "\"%s\" names the size", test_last_error);
    }
    expect_report_about(double_free_needle(size), a);
    heap_still_works(size);
    tarn_free(keep);
}
EVERY_SIZE(a_b_a)

/* The second free comes after many others of the same class. The page a
 * lies in may have emptied and gone back to its segment meanwhile, which
 * the report then says ("not a live block (double free?)"). */
static void double_free_after_many(size_t size) {
    test_capture_errors();
    enum { N = 100 };
    void *keep = tarn_malloc(size), *v[N];
    int n = is_large(size) ? 3 : N;
    for (int i = 0; i < n; i++)
        v[i] = tarn_malloc(size);
    char *a = tarn_malloc(size);
    tarn_free(a);
    for (int i = 0; i < n; i++)
        tarn_free(v[i]);
    tarn_free(a);
    expect_report_about(is_huge(size) ? "did not allocate (or already freed)" : "double free", a);
    heap_still_works(size);
    tarn_free(keep);
}
EVERY_SIZE(double_free_after_many)

/* free(p + 16): the page's count would wrap and p + 16 be handed out. */
static void interior_pointer(size_t size) {
    test_capture_errors();
    char *p = tarn_malloc(size);
    size_t bs = tarn_usable_size(p);
    tarn_free(p + inside(bs));
    char text[96];
    expect_report_about(interior_text(text, sizeof text, p, bs), p + inside(bs));
    cr_assert_eq(tarn_usable_size(p), bs, "the block is still in use");
    tarn_free(p);
    cr_assert_eq(test_error_count, 0, "the block itself frees without a report");
    heap_still_works(size);
}
EVERY_SIZE(interior_pointer)

/* Blocks of a partly carved page never handed out: one carved and waiting
 * on the free list (if the page carves more than one at a time), one past
 * the carved end; for a large or huge block, addresses in its segment
 * outside the block. */
static void never_handed_out(size_t size) {
    test_capture_errors();
    char *p = tarn_malloc(size);
    tarn__segment_t *seg = tarn__segment_of(p);
    tarn__page_t *pg = tarn__page_of(seg, p);
    if (is_large(size)) {
        char *before = p - 4096; /* in the segment header's span */
        tarn_free(before);
        expect_report_about("not a block tarn handed out", before);
        if (!is_huge(size)) {
            char *after = p + size + 4096;
            tarn_free(after);
            expect_report_about("not a block tarn handed out", after);
        }
    } else {
        size_t bs = pg->block_size, carved = (size_t)pg->capacity * bs;
        cr_assert_eq(pg->used, 1, "p is the page's only block in use");
        cr_assert_lt(pg->capacity, pg->reserved, "the page is partly carved");
        if (carved > bs) {
            char *waiting = (char *)pg->start + carved - bs;
            tarn_free(waiting);
            expect_report_about("double free of", waiting);
        }
        char *uncarved = (char *)pg->start + carved;
        tarn_free(uncarved);
        expect_report_about("not a block tarn handed out", uncarved);
        cr_assert_eq(pg->used, 1, "nothing counted");
    }
    heap_still_works(size);
    tarn_free(p);
    cr_assert_eq(test_error_count, 0);
}
EVERY_SIZE(never_handed_out)

/* free(p) then free(p + 16). */
static void free_then_interior(size_t size) {
    test_capture_errors();
    void *keep = tarn_malloc(size);
    char *p = tarn_malloc(size);
    tarn__page_t *pg = tarn__page_of(tarn__segment_of(p), p);
    size_t bs = tarn_usable_size(p), in = inside(bs);
    tarn_free(p);
    uint32_t used = is_large(size) ? 0 : pg->used;
    tarn_free(p + in);
    char text[96];
    if (is_huge(size))
        expect_report_about("did not allocate", p + in);
    else if (is_large(size))
        expect_report_about("double free of", p + in);
    else
        expect_report_about(interior_text(text, sizeof text, p, bs), p + in);
    if (!is_large(size)) cr_assert_eq(pg->used, used, "the page's count did not move");
    heap_still_works(size);
    tarn_free(keep);
}
EVERY_SIZE(free_then_interior)

/* realloc and usable_size must not read or move what is not a block in use:
 * an interior pointer, then the block once freed. */
static void realloc_and_usable_size(size_t size) {
    test_capture_errors();
    void *keep = tarn_malloc(size);
    char *p = tarn_malloc(size);
    size_t bs = tarn_usable_size(p), in = inside(bs);
    char text[96];
    interior_text(text, sizeof text, p, bs);
    cr_assert_eq(tarn_usable_size(p + in), 0);
    cr_assert(!strncmp(test_last_error, "usable size of", 14), "%s", test_last_error);
    expect_report_about(text, p + in);
    cr_assert_null(tarn_realloc(p + in, 2 * size));
    cr_assert(!strncmp(test_last_error, "realloc of", 10), "%s", test_last_error);
    expect_report_about(text, p + in);
    cr_assert_eq(tarn_usable_size(p), bs, "p is untouched");
    tarn_free(p);
    const char *freed = is_huge(size) ? "did not allocate" : "already freed";
    cr_assert_eq(tarn_usable_size(p), 0);
    cr_assert(!strncmp(test_last_error, "usable size of", 14), "%s", test_last_error);
    expect_report_about(freed, p);
    cr_assert_null(tarn_realloc(p, 2 * size));
    cr_assert(!strncmp(test_last_error, "realloc of", 10), "%s", test_last_error);
    expect_report_about(freed, p);
    heap_still_works(size);
    tarn_free(keep);
}
EVERY_SIZE(realloc_and_usable_size)

/* ---- other threads ------------------------------------------------------ */

static void *free_once(void *p) {
    tarn_free(p);
    return NULL;
}

static void *free_twice(void *p) {
    tarn_free(p);
    tarn_free(p);
    return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fn, arg), 0);
    pthread_join(t, NULL);
}

/* The report for a second free of a block another thread freed first: that
 * thread has no heap of its own, so a large block it freed went straight
 * back to the OS. */
static const char *remote_double_needle(size_t size) {
    return is_large(size) ? "did not allocate (or already freed)" : "double free of";
}

/* A second free by the thread that freed another heap's block: it waits on
 * the page's thread_free list (the thread allocates nothing itself, so it
 * keeps nothing in a foreign cache). */
static void remote_twice(size_t size) {
    test_capture_errors();
    void *keep = tarn_malloc(size);
    char *p = tarn_malloc(size);
    run_thread(free_twice, p);
    expect_report_about(remote_double_needle(size), p);
    heap_still_works(size);
    tarn_free(keep);
}
EVERY_SIZE(remote_twice)

/* Another thread frees the block, then the owner frees it again before
 * collecting it. */
static void remote_then_owner(size_t size) {
    test_capture_errors();
    void *keep = tarn_malloc(size);
    char *p = tarn_malloc(size);
    run_thread(free_once, p);
    cr_assert_eq(test_error_count, 0);
    tarn_free(p);
    expect_report_about(remote_double_needle(size), p);
    heap_still_works(size);
    tarn_free(keep);
}
EVERY_SIZE(remote_then_owner)

/* A thread that allocates a class keeps the blocks of other heaps it frees
 * in its foreign cache; a second free of one, by it or by the owner, is
 * reported, and the cache hands the block out once (its slow path takes it
 * when its own page's carved blocks run out). The worker records, the test
 * asserts. */
enum { WORKER_ALLOCS = 300 };

typedef struct {
    void *victim;
    size_t size;
    bool cached; /* the victim sat in the worker's foreign cache */
    int reports; /* made by the worker's second free */
    char report[512];
    int handed_out; /* times the worker got the victim back from malloc */
} foreign_case_t;

static bool in_foreign_cache(const foreign_case_t *c) {
    return tarn__tls_heap->foreign[tarn__size_class(c->size)].free == c->victim;
}

/* Allocates WORKER_ALLOCS blocks, counting the victim among them. */
static void count_victim(foreign_case_t *c) {
    static void *v[WORKER_ALLOCS];
    for (int i = 0; i < WORKER_ALLOCS; i++) {
        v[i] = tarn_malloc(c->size);
        c->handed_out += v[i] == c->victim;
    }
    for (int i = 0; i < WORKER_ALLOCS; i++)
        tarn_free(v[i]);
}

static void *free_into_cache_twice(void *arg) {
    foreign_case_t *c = arg;
    void *own = tarn_malloc(c->size); /* this thread allocates the class */
    tarn_free(c->victim);
    c->cached = in_foreign_cache(c);
    int before = test_error_count;
    tarn_free(c->victim);
    c->reports = test_error_count - before;
    memcpy(c->report, test_last_error, sizeof c->report);
    test_error_count = before;
    count_victim(c);
    tarn_free(own);
    return NULL;
}

static void *keep_in_cache(void *arg) {
    foreign_case_t *c = arg;
    void *own = tarn_malloc(c->size);
    tarn_free(c->victim);
    c->cached = in_foreign_cache(c);
    tarn_free(own);
    return NULL; /* the cache goes back to the owner at exit */
}

Test(heap_misuse_foreign, second_free_by_the_caching_thread) {
    test_capture_errors();
    foreign_case_t c = {.size = 48};
    void *keep = tarn_malloc(c.size);
    c.victim = tarn_malloc(c.size);
    run_thread(free_into_cache_twice, &c);
    cr_assert(c.cached, "the block waited in the worker's foreign cache");
    cr_assert_eq(c.reports, 1, "the second free was reported once (%s)", c.report);
    char ptr[32];
    snprintf(ptr, sizeof ptr, "%p", c.victim);
    cr_assert(strstr(c.report, "double free of") && strstr(c.report, ptr), "%s", c.report);
    cr_assert_eq(c.handed_out, 1, "the cache handed the block out once");
    cr_assert_eq(test_error_count, 0, "the worker's exit gave its cache back silently");
    heap_still_works(c.size);
    tarn_free(keep);
}

/* The owner frees the block while another thread's cache holds it: a thread
 * that stays alive with the block cached. */
typedef struct {
    foreign_case_t c;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int step;
} parked_t;

static void step_to(parked_t *s, int step) {
    pthread_mutex_lock(&s->lock);
    s->step = step;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void wait_step(parked_t *s, int step) {
    pthread_mutex_lock(&s->lock);
    while (s->step < step)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

static void *cache_and_wait(void *arg) {
    parked_t *s = arg;
    void *own = tarn_malloc(s->c.size);
    tarn_free(s->c.victim);
    s->c.cached = in_foreign_cache(&s->c);
    step_to(s, 1);
    wait_step(s, 2);
    count_victim(&s->c);
    tarn_free(own);
    return NULL;
}

static void owner_frees_a_cached_block(size_t size) {
    test_capture_errors();
    parked_t s = {
        .c = {.size = size}, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    void *keep = tarn_malloc(size);
    s.c.victim = tarn_malloc(size);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, cache_and_wait, &s), 0);
    wait_step(&s, 1);
    cr_assert(s.c.cached, "the block waits in the worker's foreign cache");
    tarn_free(s.c.victim);
    expect_report_about("double free of", s.c.victim);
    step_to(&s, 2);
    pthread_join(t, NULL);
    cr_assert_eq(s.c.handed_out, 1, "the cache handed the block out once");
    heap_still_works(size);
    tarn_free(keep);
}

Test(heap_misuse_foreign, owner_frees_a_cached_16) { owner_frees_a_cached_block(16); }
Test(heap_misuse_foreign, owner_frees_a_cached_1000) { owner_frees_a_cached_block(1000); }

/* The cache gives its blocks back at thread exit without tripping the
 * check it made when they came in; the owner then reuses them. */
Test(heap_misuse_foreign, cache_flush_is_not_a_double_free) {
    test_capture_errors();
    foreign_case_t c = {.size = 1000};
    void *keep = tarn_malloc(c.size);
    c.victim = tarn_malloc(c.size);
    run_thread(keep_in_cache, &c);
    cr_assert(c.cached, "the block waited in the worker's foreign cache");
    cr_assert_eq(test_error_count, 0, "%s", test_last_error);
    tarn_free(c.victim);
    expect_report_about("double free of", c.victim);
    heap_still_works(c.size);
    tarn_free(keep);
}

/* ---- the default handler -------------------------------------------------- */

/* Runs fn in a child with stderr on a pipe; returns the child's status and
 * what it wrote. */
static int run_child(void (*fn)(void), char *out, size_t cap) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return status;
}

static void a_b_a_48(void) {
    void *keep = tarn_malloc(48), *a = tarn_malloc(48), *b = tarn_malloc(48);
    tarn_free(a);
    tarn_free(b);
    tarn_free(a);
    tarn_free(keep);
}

static void interior_64(void) {
    char *p = tarn_malloc(64);
    tarn_free(p + 16);
}

Test(heap_misuse_default, aborts_with_one_line_on_stderr) {
    char err[1024];
    int status = run_child(a_b_a_48, err, sizeof err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x", status);
    cr_assert(!strncmp(err, "tarn: double free of 0x", 23) && strstr(err, "(size 48) in heap 0x"),
              "stderr: %s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
    status = run_child(interior_64, err, sizeof err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x", status);
    cr_assert(strstr(err, "an interior pointer 16 bytes into a block of 64 at 0x"), "stderr: %s",
              err);
}

Test(heap_misuse_default, interior_free_aborts, .signal = SIGABRT) { interior_64(); }

/* ---- the block-start test ----------------------------------------------- */

/* For every class, over every offset from 64 KiB before its page (the header
 * span before a mid or medium page 0) to the end of the largest page it can
 * have: a block start k * d gives exactly k steps, any other offset more
 * than a full page of steps, so comparing with capacity steps is exact
 * whatever the capacity; checked against %. */
Test(heap_misuse_divide, block_start_test_matches_remainder_for_every_class) {
    tarn_free(tarn_malloc(1)); /* the thread's heap */
    for (unsigned cls = 0; cls < TARN__CLASSES; cls++) {
        size_t bs = tarn__class_size(cls);
        void *p = tarn__alloc_class(tarn__tls_heap, cls, true);
        tarn__page_t *pg = tarn__page_of(tarn__segment_of(p), p);
        cr_assert_eq(pg->block_size, bs);
        uint64_t m = pg->div_magic, step = tarn__div_step(bs);
        cr_assert(step >= 1 && step <= bs, "class %u: step %llu", cls, (unsigned long long)step);
        cr_assert_eq(pg->carved_limit, pg->capacity * step);
        int64_t span = (int64_t)1 << tarn__segment_of(p)->page_shift;
        uint64_t above = (uint64_t)(span / (int64_t)bs + 1) * step;
        for (int64_t n = -(int64_t)TARN__HEADER_SPAN; n < span; n++) {
            uint64_t q = (uint64_t)n * m;
            bool start = n >= 0 && n % (int64_t)bs == 0;
            if (start ? q != (uint64_t)(n / (int64_t)bs) * step : q < above)
                cr_assert_fail("class %u (%zu): offset %lld gives %llu", cls, bs, (long long)n,
                               (unsigned long long)q);
        }
        tarn_free(p);
    }
}
