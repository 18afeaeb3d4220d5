#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tarn.h>
static long vm(const char *key) { FILE *f = fopen("/proc/self/status", "r"); char l[256]; long v = -1; while (fgets(l, sizeof l, f)) if (!strncmp(l, key, strlen(key))) v = atol(l + strlen(key) + 1); fclose(f); return v; }
int main(void) {
    long d0 = vm("VmData");
    void *p = NULL; for (size_t s = 4096; s < (50u << 20); s = s * 5 / 4) { p = realloc(p, s); memset(p, 1, s); }
    printf("realloc chain: VmData +%ld MiB RSS %ld MiB\n", (vm("VmData") - d0) >> 10, vm("VmRSS") >> 10);
    tarn_heap_stats_t st; tarn_heap_stats(&st);
    printf("mapped %zu MiB, allocated %zu MiB, segments %zu cached %zu huge %zu large %zu unused %zu\n", st.mapped >> 20, st.allocated >> 20, st.segments, st.cached_segments, st.huge_blocks, st.large_blocks, st.unused >> 20);
    return 0;
}
