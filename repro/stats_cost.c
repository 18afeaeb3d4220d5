#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static volatile int stop; static double worst;
static void *huge_loop(void *a) { (void)a; while (!stop) { double t = now(); void *p = malloc(8 << 20); free(p); t = now() - t; if (t > worst) worst = t; } return NULL; }
int main(int argc, char **argv) {
    size_t mib = argc > 1 ? atoi(argv[1]) : 400;
    size_t n = (mib << 20) / 1000;
    char **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) { v[i] = malloc(1000); v[i][0] = 1; }
    pthread_t t; pthread_create(&t, NULL, huge_loop, NULL);
    double best = 1e9, sum = 0;
    for (int r = 0; r < 20; r++) { double a = now(); struct mallinfo2 m = mallinfo2(); a = now() - a; sum += a; if (a < best) best = a; if (r == 0) printf("uordblks %zu MiB\n", m.uordblks >> 20); }
    stop = 1; pthread_join(t, NULL);
    printf("%zu MiB live: mallinfo2 best %.2f ms mean %.2f ms; worst 8 MiB malloc+free in the other thread meanwhile %.2f ms\n", mib, best * 1e3, sum / 20 * 1e3, worst * 1e3);
    return 0;
}
