#define _GNU_SOURCE
#include <tarn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
static void show(const char *what) {
    tarn_heap_stats_t s; tarn_heap_stats(&s);
    printf("%-28s alloc=%zu in_use=%zu committed=%zu resident=%zu mapped=%zu segs=%zu large=%zu/%zu huge=%zu/%zu heaps=%zu cls48=%zu/%zu cls1000 live=%zu\n", what,
        s.allocated, s.in_use, s.committed, s.resident, s.mapped, s.segments, s.large_blocks, s.large_bytes, s.huge_blocks, s.huge_bytes, s.heaps,
        s.classes[2].block_size, s.classes[2].live_blocks, s.classes[0].live_blocks);
}
static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) { void *p = tarn_malloc(48); memset(p, 1, 48); }   /* leaked on purpose: 1000 x 48 */
    void *l = tarn_malloc(1 << 20); memset(l, 1, 1 << 20);                           /* leaked large */
    return l;
}
int main(void) {
    show("start");
    void *v[1000];
    for (int i = 0; i < 1000; i++) v[i] = tarn_malloc(48);
    show("1000x48 main");
    pthread_t t; void *l;
    pthread_create(&t, NULL, worker, NULL); pthread_join(t, &l);
    show("+exited thread 1000x48+1MiB");
    void *h = tarn_malloc(10 << 20); memset(h, 1, 10 << 20);
    show("+10 MiB huge");
    tarn_free(h); tarn_free(l);
    for (int i = 0; i < 1000; i++) tarn_free(v[i]);
    show("freed main's + large + huge");
    return 0;
}
