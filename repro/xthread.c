#include <tarn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int nrep; static void rec(const char *m, void *a) { (void)a; if (__atomic_fetch_add(&nrep, 1, __ATOMIC_RELAXED) < 5) printf("report: %s\n", m); }
#define SLOTS 4096
static _Atomic(void *) slot[SLOTS];
static void *worker(void *arg) {
    unsigned x = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        size_t s = (x >> 20) % 5 == 0 ? (x % 300000) + 1 : (x % 2000) + 1;
        void *p = (x & 7) == 0 ? tarn_calloc(1, s) : (x & 7) == 1 ? tarn_memalign(64 << (x >> 29), s) : tarn_malloc(s);
        if (!p) continue;
        ((char *)p)[0] = 1; if (s >= 16) memset(p, 0xff, 16); /* word 1 gets user data */
        void *old = atomic_exchange(&slot[x % SLOTS], p);
        if (old) { if ((x >> 8) & 1) old = tarn_realloc(old, (x % 500) + 1); tarn_free(old); }
    }
    return NULL;
}
int main(void) {
    tarn_set_error_handler(rec, NULL);
    for (int round = 0; round < 6; round++) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(round * 4 + i + 1));
        for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    }
    for (int i = 0; i < SLOTS; i++) tarn_free(atomic_load(&slot[i]));
    tarn_heap_stats_t s; tarn_heap_stats(&s);
    printf("reports=%d allocated after freeing everything=%zu heaps=%zu\n", nrep, s.allocated, s.heaps);
    tarn_collect(true);
    tarn_heap_stats(&s);
    printf("after collect(true): allocated=%zu\n", s.allocated);
    return 0;
}
