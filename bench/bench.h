/* Shared by the benchmark programs: a clock, medians, and the one-line
 * machine description printed above every table. Benchmarks report ratios
 * against the system allocator measured in the same process and run. */
#ifndef TARN_BENCH_H
#define TARN_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n samples (sorts them in place). */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* True when the program was started with --full (make bench FULL=1). */
static inline int bench_full(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--full")) return 1;
    return 0;
}

/* Keeps the compiler from deleting work whose result is otherwise unused. */
#define bench_use(p) __asm__ volatile("" : : "r"(p) : "memory")

static inline void bench_machine_line(void) {
    char model[128] = "unknown cpu";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) snprintf(model, sizeof model, "%s", c + 2);
                model[strcspn(model, "\n")] = 0;
                break;
            }
        fclose(f);
    }
    time_t t = time(NULL);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%d", gmtime(&t));
    printf("machine: %s, %ld cores, %s\n", model, sysconf(_SC_NPROCESSORS_ONLN), day);
}

#endif
