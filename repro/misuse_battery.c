/* Throwaway battery against build/libtarn.a: each case in a fork child,
 * prints the number of reports and the last one. */
#define _GNU_SOURCE
#include <tarn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int nrep;
static char last[512];
static void rec(const char *m, void *a) { (void)a; nrep++; snprintf(last, sizeof last, "%s", m); }

typedef void (*case_fn)(void);
static void run(const char *name, case_fn f, int want) {
    fflush(stdout);
    pid_t pid = fork();
    if (!pid) {
        tarn_set_error_handler(rec, NULL);
        f();
        printf("%-40s reports=%d want=%d %s | %s\n", name, nrep, want, nrep == want ? "ok" : "MISMATCH", last);
        fflush(stdout);
        _exit(0);
    }
    int st; waitpid(pid, &st, 0);
    if (!WIFEXITED(st)) printf("%-40s CRASHED status=%d\n", name, st);
}

static void *thr_free(void *p) { tarn_free(p); return NULL; }
static void remote_free(void *p) { pthread_t t; pthread_create(&t, NULL, thr_free, p); pthread_join(t, NULL); }

static size_t sizes[] = {16, 48, 1000, 20000, 100000, 1 << 20, 8 << 20};

/* double free after the page emptied and its page got reused by another class */
static void df_reused_class(void) {
    enum { N = 5000 };
    static void *v[N];
    for (int i = 0; i < N; i++) v[i] = tarn_malloc(48);
    void *victim = v[N / 2];
    for (int i = 0; i < N; i++) tarn_free(v[i]);
    tarn_collect(true);
    static void *w[N];
    for (int i = 0; i < N; i++) w[i] = tarn_malloc(64);
    nrep = 0;
    tarn_free(victim); /* victim may now be inside or at a live 64-byte block */
    int inside = 0;
    for (int i = 0; i < N; i++) if ((char *)victim >= (char *)w[i] && (char *)victim < (char *)w[i] + 64) inside = (char*)victim == (char*)w[i] ? 2 : 1;
    printf("  (victim %s a live 64 block)\n", inside == 2 ? "is the start of" : inside ? "is inside" : "is not in");
}
static void interior_all(void) {
    for (unsigned k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        char *p = tarn_malloc(sizes[k]);
        int before = nrep;
        tarn_free(p + 16);
        tarn_free(p + 8);
        tarn_free(p + sizes[k] - 16);
        tarn_free(p + 1);
        if (nrep - before != 4) printf("  interior size %zu: %d reports\n", sizes[k], nrep - before);
        tarn_free(p);
    }
}
static void df_remote_all(void) {
    for (unsigned k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        void *p = tarn_malloc(sizes[k]);
        int before = nrep;
        remote_free(p);
        remote_free(p);
        tarn_free(p);
        if (nrep - before != 2) printf("  remote df size %zu: %d reports\n", sizes[k], nrep - before);
    }
}
static void df_aba_all(void) {
    for (unsigned k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        void *a = tarn_malloc(sizes[k]), *b = tarn_malloc(sizes[k]);
        int before = nrep;
        tarn_free(a); tarn_free(b); tarn_free(a);
        void *c = tarn_malloc(sizes[k]), *d = tarn_malloc(sizes[k]);
        if (nrep - before != 1 || c == d) printf("  aba size %zu: %d reports c=%p d=%p\n", sizes[k], nrep - before, c, d);
    }
}
static void far_cases(void) {
    void *p = tarn_aligned_alloc((size_t)8 << 20, 1000);
    int before = nrep;
    tarn_free((char *)p + 16);
    tarn_free((char *)p + 4096);
    printf("  far interior: %d reports (want 2)\n", nrep - before);
    tarn_free(p);
    before = nrep;
    tarn_free(p);
    printf("  far double free: %d reports (want 1)\n", nrep - before);
}
static void header_gap_unused(void) {
    char *p = tarn_malloc(48);
    uintptr_t seg = (uintptr_t)p & ~(uintptr_t)((4 << 20) - 1);
    int before = nrep;
    tarn_free((void *)(seg + 64));       /* segment header */
    tarn_free((void *)(seg + 4096));
    tarn_free((void *)(seg + (3 << 20))); /* likely unused page */
    tarn_free((void *)(seg + 65536 - 16)); /* end of page 0? */
    printf("  header/unused: %d reports (want 4)\n", nrep - before);
    /* gap after last block of a page: 1000-byte class in 64 KiB page */
    char *q = tarn_malloc(1000);
    uintptr_t pgs = (uintptr_t)q & ~(uintptr_t)65535;
    before = nrep;
    tarn_free((void *)(pgs + 65536 - 8));
    tarn_free((void *)((uintptr_t)q + 1));
    printf("  gap: %d reports (want 2)\n", nrep - before);
}
static void null_misaligned(void) {
    tarn_free(NULL);
    tarn_free((void *)1);
    tarn_free((void *)0x1000);
    int x; tarn_free(&x);
    static int g; tarn_free(&g);
}
static void falsepos_word1(void) {
    /* user data in word 1 equal to... can't know the key; use many patterns */
    for (int r = 0; r < 100000; r++) {
        uintptr_t *p = tarn_malloc(16 + (r % 200) * 8);
        p[0] = (uintptr_t)p; p[1] = (uintptr_t)p; 
        tarn_free(p);
    }
    for (int r = 0; r < 1000; r++) {
        void *p = tarn_calloc(1, 48 + r);
        p = tarn_realloc(p, 100 + r * 7);
        p = tarn_realloc(p, 10 + r);
        tarn_free(p);
    }
    for (size_t al = 1; al <= ((size_t)16 << 20); al <<= 1) {
        for (size_t s = 1; s < 300000; s = s * 3 + 1) {
            void *p = tarn_memalign(al, s);
            if (!p) { printf("  memalign(%zu,%zu) NULL\n", al, s); continue; }
            if ((uintptr_t)p % al) printf("  memalign(%zu) misaligned\n", al);
            memset(p, 0xa5, s);
            if (tarn_usable_size(p) < s) printf("  usable small\n");
            void *q = tarn_realloc(p, s + 5);
            tarn_free(q);
        }
    }
}
static void *thr_alloc(void *arg) { (void)arg; void **v = malloc(1000 * sizeof *v); for (int i = 0; i < 1000; i++) v[i] = tarn_malloc(16 + i % 500 * 16); return v; }
static void moved_threads(void) {
    for (int r = 0; r < 20; r++) {
        pthread_t t; void **v;
        pthread_create(&t, NULL, thr_alloc, NULL); pthread_join(t, (void **)&v);
        for (int i = 0; i < 1000; i++) v[i] = tarn_realloc(v[i], 16 + (i * 7) % 2000);
        for (int i = 0; i < 1000; i++) tarn_free(v[i]);
        free(v);
    }
}
static void fork_child(void) {
    void *p = tarn_malloc(48), *q = tarn_malloc(200000);
    pid_t pid = fork();
    if (!pid) { tarn_free(p); tarn_free(q); void *a = tarn_malloc(48); tarn_free(a); if (nrep) printf("  child reported %s\n", last); _exit(0); }
    waitpid(pid, NULL, 0);
    tarn_free(p); tarn_free(q);
}
static void df_cached_segment(void) {
    void *p = tarn_malloc(200000);
    tarn_free(p);
    tarn_collect(false);
    void *q = tarn_malloc(300000);
    tarn_free(p); /* stale pointer of a cached / reused large mapping */
    printf("  q==p %d\n", q == p);
    tarn_free(q);
}
static void realloc_freed(void) {
    for (unsigned k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        char *p = tarn_malloc(sizes[k]);
        char *keep = tarn_malloc(sizes[k]);
        tarn_free(p);
        int before = nrep;
        void *r = tarn_realloc(p, sizes[k] / 2 + 1);
        size_t u = tarn_usable_size(p);
        if (nrep - before != 2) printf("  realloc/usable after free size %zu: %d reports r=%p u=%zu\n", sizes[k], nrep - before, r, u);
        before = nrep;
        r = tarn_realloc(keep + 16, 10);
        if (nrep - before != 1) printf("  realloc interior size %zu: %d reports\n", sizes[k], nrep - before);
    }
}
int main(void) {
    run("df after page reused by another class", df_reused_class, 1);
    run("interior every size (4 each)", interior_all, 28);
    run("remote double free every size", df_remote_all, 14);
    run("A-B-A every size", df_aba_all, 7);
    run("far aligned", far_cases, 3);
    run("headers, gap, unused", header_gap_unused, 6);
    run("NULL and misaligned/foreign", null_misaligned, 4);
    run("false positives: word1 / calloc / realloc / memalign", falsepos_word1, 0);
    run("false positives: blocks moved between threads", moved_threads, 0);
    run("fork child frees", fork_child, 0);
    run("stale free of a cached large mapping", df_cached_segment, 1);
    run("realloc/usable of freed/interior", realloc_freed, 21);
    return 0;
}
