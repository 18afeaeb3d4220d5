#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
void free_sized(void *, size_t) __attribute__((weak));
void free_aligned_sized(void *, size_t, size_t) __attribute__((weak));
void *__libc_memalign(size_t, size_t);
int main(void) {
    errno = 1234;
    void *p = malloc(50 << 20); p = realloc(p, 100 << 20); p = realloc(p, 10); void *q = calloc(1, 1 << 20);
    void *r = memalign(64, 100); void *s = aligned_alloc(64, 128); void *t; posix_memalign(&t, 64, 64);
    void *u = valloc(100); void *w = pvalloc(100);
    printf("errno after successes: %d (want 1234)\n", errno);
    free(p); free(q); free(r); free(s); free(t); free(u); free(w);
    printf("errno after frees: %d\n", errno);
    for (size_t a = 3; a <= 200; a += 37) {
        void *m = memalign(a, 10);
        printf("memalign(%zu) -> %p mod pow2ceil %lu\n", a, m, m ? (unsigned long)((uintptr_t)m % (1UL << (64 - __builtin_clzl(a - 1)))) : 999UL);
        free(m);
    }
    errno = 0; void *x = aligned_alloc(24, 48); printf("aligned_alloc(24,48)=%p errno=%d\n", x, errno); free(x);
    errno = 0; x = aligned_alloc(0, 48); printf("aligned_alloc(0,48)=%p errno=%d\n", x, errno); free(x);
    errno = 0; x = aligned_alloc(64, 100); printf("aligned_alloc(64,100) (size not multiple)=%p errno=%d\n", x, errno); free(x);
    void *y; int rc = posix_memalign(&y, 24, 10); printf("posix_memalign(24)=%d\n", rc);
    rc = posix_memalign(&y, 4, 10); printf("posix_memalign(4)=%d\n", rc);
    errno = 0; x = memalign(0, 10); printf("memalign(0,10)=%p errno=%d\n", x, errno); free(x);
    errno = 0; x = memalign(SIZE_MAX / 2 + 2, 10); printf("memalign(huge)=%p errno=%d\n", x, errno);
    errno = 0; x = malloc(SIZE_MAX); printf("malloc(max)=%p errno=%d\n", x, errno);
    errno = 0; x = calloc(SIZE_MAX / 2, 3); printf("calloc overflow=%p errno=%d\n", x, errno);
    errno = 0; x = realloc(NULL, SIZE_MAX - 10); printf("realloc huge=%p errno=%d\n", x, errno);
    x = malloc(100); errno = 0; void *z = realloc(x, 0); printf("realloc(p,0)=%p errno=%d\n", z, errno); free(z);
    /* realloc same size stays */
    int moved = 0;
    for (int i = 0; i < 400; i++) { size_t n = 1 + (size_t)i * 997 % 300000; void *a = malloc(n); void *b = realloc(a, n); moved += a != b; free(b); }
    printf("same-size reallocs moved: %d of 400\n", moved);
    moved = 0;
    for (int i = 0; i < 400; i++) { size_t n = 16 + (size_t)i * 997 % 300000; void *a = malloc(n); void *b = realloc(a, malloc_usable_size(a)); moved += a != b; free(b); }
    printf("realloc to usable size moved: %d of 400\n", moved);
    printf("malloc_usable_size(malloc(100))=%zu\n", malloc_usable_size(p = malloc(100))); free(p);
    if (free_sized) { p = malloc(100); free_sized(p, 100); p = malloc(100); printf("free_sized wrong size:\n"); fflush(stdout); free_sized(p, 5000); }
    return 0;
}
