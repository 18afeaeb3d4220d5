#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
static long vm(const char *key) { FILE *f = fopen("/proc/self/status", "r"); char l[256]; long v = -1; while (fgets(l, sizeof l, f)) if (!strncmp(l, key, strlen(key))) v = atol(l + strlen(key) + 1); fclose(f); return v; }
int main(void) {
    long d0 = vm("VmData");
    void *v[40];
    for (int i = 0; i < 40; i++) { v[i] = malloc(1 << 20); memset(v[i], 1, 1 << 20); }
    printf("40x1MiB: VmData +%ld KiB\n", vm("VmData") - d0);
    for (int i = 0; i < 40; i++) free(v[i]);
    d0 = vm("VmData");
    int n = 0; static void *w[3000];
    for (; n < 3000; n++) { w[n] = aligned_alloc(4 << 20, 100); if (!w[n]) break; }
    printf("far-aligned live: %d, VmData +%ld MiB\n", n, (vm("VmData") - d0) >> 10);
    for (int i = 0; i < n; i++) free(w[i]);
    d0 = vm("VmData");
    for (int i = 0; i < 40; i++) { v[i] = malloc(200 << 10); }
    printf("40x200KiB: VmData +%ld KiB\n", vm("VmData") - d0);
    /* grow a block by realloc steps to 50 MiB and back */
    void *p = NULL; for (size_t s = 4096; s < (50u << 20); s = s * 5 / 4) p = realloc(p, s);
    printf("realloc chain ok %p VmData %ld MiB\n", p, vm("VmData") >> 10);
    return 0;
}
