/* Heap stress: threads pass blocks to each other (producer/consumer), keep
 * some for themselves, exit while others still hold their blocks, get
 * replaced by new threads (which adopt the exited heaps), and the main
 * thread forks while all this runs. Every block carries its owner's tag,
 * checked by whoever frees it. Built plain, with ASan and with TSan.
 *
 * usage: heap_stress [threads=8] [scale=1] [iterations=2]  (exit 0 = pass) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tarn.h"

enum { MAILBOX = 512, KEPT = 256, MAX_THREADS = 64 };

typedef struct {
    pthread_mutex_t lock;
    void *slot[MAILBOX];
    int count;
} mailbox_t;

typedef struct {
    uint32_t tag;
    uint32_t size;
} header_t;

static mailbox_t boxes[MAX_THREADS];
static int n_threads;
static long rounds_per_thread;
static long rounds_of[MAX_THREADS]; /* set before each thread starts */
static atomic_long failures;

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mostly small, some medium, a few large: every path of the heap. */
static size_t pick_size(uint64_t *rng) {
    uint64_t r = next_rand(rng);
    if (r % 1000 == 0) return 200000 + r % 900000;
    if (r % 50 == 0) return 1024 + r % 60000;
    return sizeof(header_t) + r % 600;
}

static void *make_block(uint32_t tag, uint64_t *rng) {
    size_t size = pick_size(rng);
    header_t *h = tarn_malloc(size);
    if (!h) {
        atomic_fetch_add(&failures, 1);
        return NULL;
    }
    h->tag = tag;
    h->size = (uint32_t)size;
    memset(h + 1, (int)(tag & 0xff), size - sizeof *h < 64 ? size - sizeof *h : 64);
    return h;
}

static void check_and_free(void *p) {
    header_t *h = p;
    unsigned char *body = (unsigned char *)(h + 1);
    size_t n = h->size - sizeof *h < 64 ? h->size - sizeof *h : 64;
    for (size_t i = 0; i < n; i++)
        if (body[i] != (h->tag & 0xff)) {
            fprintf(stderr, "heap_stress: block %p of tag %u corrupted at byte %zu\n", p, h->tag,
                    i);
            atomic_fetch_add(&failures, 1);
            break;
        }
    if (tarn_usable_size(p) < h->size) atomic_fetch_add(&failures, 1);
    tarn_free(p);
}

static bool post(int to, void *p) {
    mailbox_t *m = &boxes[to];
    pthread_mutex_lock(&m->lock);
    bool ok = m->count < MAILBOX;
    if (ok) m->slot[m->count++] = p;
    pthread_mutex_unlock(&m->lock);
    return ok;
}

static void drain(int self) {
    mailbox_t *m = &boxes[self];
    void *got[MAILBOX];
    pthread_mutex_lock(&m->lock);
    int n = m->count;
    memcpy(got, m->slot, sizeof(void *) * (size_t)n);
    m->count = 0;
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < n; i++)
        check_and_free(got[i]);
}

static void *worker(void *arg) {
    int self = (int)(intptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(self + 1);
    void *kept[KEPT] = {0};
    for (long r = 0; r < rounds_of[self]; r++) {
        uint32_t tag = (uint32_t)(self * 1000003 + r);
        void *p = make_block(tag, &rng);
        if (!p) continue;
        int to = (int)(next_rand(&rng) % (uint64_t)n_threads);
        if (to == self || !post(to, p)) {
            int k = (int)(next_rand(&rng) % KEPT);
            if (kept[k]) check_and_free(kept[k]);
            kept[k] = p;
        }
        if (r % 64 == 0) drain(self);
    }
    /* Exit holding nothing of our own except what sits in other mailboxes:
     * those blocks are freed after this heap is abandoned. */
    for (int k = 0; k < KEPT; k++)
        if (kept[k]) check_and_free(kept[k]);
    drain(self);
    return NULL;
}

static void fork_and_check(void) {
    pid_t pid = fork();
    if (pid == 0) {
        uint64_t rng = 42;
        void *v[500];
        for (int i = 0; i < 500; i++)
            v[i] = make_block(7, &rng);
        for (int i = 0; i < 500; i++)
            if (v[i]) check_and_free(v[i]);
        _exit(atomic_load(&failures) ? 1 : 0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "heap_stress: forked child failed (status %d)\n", status);
        atomic_fetch_add(&failures, 1);
    }
}

/* One wave: all threads start; half of them get a short life and are
 * replaced by fresh threads while the rest keep sending them blocks. */
static void wave(void) {
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < n_threads; i++) {
        rounds_of[i] = i % 2 ? rounds_per_thread / 8 : rounds_per_thread;
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    }
    for (int f = 0; f < 3; f++)
        fork_and_check();
    for (int i = 1; i < n_threads; i += 2) {
        pthread_join(t[i], NULL);
        rounds_of[i] = rounds_per_thread;
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    }
    for (int i = 0; i < n_threads; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < n_threads; i++)
        drain(i);
}

int main(int argc, char **argv) {
    n_threads = argc > 1 ? atoi(argv[1]) : 8;
    long scale = argc > 2 ? atol(argv[2]) : 1;
    int iterations = argc > 3 ? atoi(argv[3]) : 2;
    if (n_threads < 1 || n_threads > MAX_THREADS || scale < 1) {
        fprintf(stderr, "usage: heap_stress [threads<=%d] [scale] [iterations]\n", MAX_THREADS);
        return 2;
    }
    for (int i = 0; i < n_threads; i++)
        pthread_mutex_init(&boxes[i].lock, NULL);
    rounds_per_thread = 20000 * scale;
    for (int it = 0; it < iterations; it++)
        wave();
    tarn_collect(true);
    long bad = atomic_load(&failures);
    printf("heap_stress: %d threads, %d waves of %ld rounds: %s\n", n_threads, iterations,
           rounds_per_thread, bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
