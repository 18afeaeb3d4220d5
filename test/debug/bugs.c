/* Small buggy programs for test/debug_test.sh, one per argv[1]: each does
 * one thing the checking layer must report (or, for "clean" and "threads",
 * nothing). Built with -g -O0 so the stacks name these functions. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *held_by_global;
static char global_array[64];

/* Pointers go through here so the compiler cannot see the bug. */
static void *volatile launder_slot;
static void *launder(void *p) {
    launder_slot = p;
    return launder_slot;
}

static void release_twice(char *p, char *q) {
    free(p);
    free(q);
}

static void double_free(void) {
    char *p = malloc(4);
    char *q = p;
    printf("block %p\n", (void *)p);
    fflush(stdout);
    release_twice(p, q);
}

static void first_free(char *a) { free(a); }
static void second_free(char *a) { free(a); }

static void aba(void) {
    char *a = malloc(24);
    printf("block %p\n", (void *)a);
    fflush(stdout);
    first_free(a);
    char *b = malloc(24); /* B: the same size, so a heap without a quarantine reuses A */
    second_free(a);
    free(b);
}

static void free_pointer(void *p) {
    printf("pointer %p\n", p);
    fflush(stdout);
    free(p);
}

static void interior(void) {
    char *p = malloc(32);
    printf("block %p\n", (void *)p);
    free_pointer(p + 8);
}

static void on_stack(void) {
    char local[16];
    free_pointer(launder(local));
}

static void in_global(void) { free_pointer(launder(global_array + 16)); }
static void never(void) { free_pointer((void *)0x12345670); }

static char *make_buffer(size_t n) { return malloc(n); }

static void show(const char *what, void *p) {
    printf("%s %p\n", what, p);
    fflush(stdout);
}

static void overflow(void) {
    char *p = make_buffer(16);
    show("block", p);
    ((char *)launder(p))[16] = 'x';
    free(p);
}

static void underflow(void) {
    char *p = make_buffer(16);
    show("block", p);
    ((char *)launder(p))[-1] = 'x';
    free(p);
}

static void write_after_free(void) {
    char *p = make_buffer(32);
    show("block", p);
    free(p);
    ((char *)launder(p))[3] = 'x';
    free(make_buffer(64)); /* pushes p out of a quarantine of 192 bytes a shard */
}

static void realloc_freed(void) {
    char *p = make_buffer(16);
    show("block", p);
    free(p);
    p = realloc(launder(p), 32);
    show("result", p);
}

static void usable_freed(void) {
    char *p = make_buffer(16);
    show("block", p);
    free(p);
    printf("usable %zu\n", malloc_usable_size(launder(p)));
}

static char *make_leak(void) {
    char *p = malloc(100);
    memset(p, 1, 100);
    return p;
}

static void leak(void) {
    char *p = make_leak();
    show("lost", p);
    launder_slot = NULL;
    held_by_global = malloc(200);
    show("held", held_by_global);
    p = NULL;
}

/* A block only a running thread's stack points to: reachable at exit. */
static void *holder(void *arg) {
    char *volatile mine = malloc(300);
    memset(mine, 2, 300);
    sem_post(arg);
    for (;;)
        pause();
    return mine;
}

static void running(void) {
    static sem_t ready;
    pthread_t t;
    sem_init(&ready, 0, 0);
    pthread_create(&t, NULL, holder, &ready);
    sem_wait(&ready);
    printf("exiting with the thread running\n");
}

/* A child of fork leaks a block of its own and reports for itself. */
static void forked(void) {
    char *before = make_buffer(48);
    pid_t pid = fork();
    if (pid == 0) {
        launder(make_leak());
        launder_slot = NULL;
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    free(before);
    printf("child %d exited %d\n", (int)pid, WEXITSTATUS(status));
}

/* Zeroes the stack below the caller, where dead frames of the calls it made
 * still hold pointers a conservative leak scan would see (the frames of
 * exit and of the scan itself reuse that memory without writing all of it). */
static void scrub_stack(void) {
    volatile char area[32768];
    memset((char *)area, 0, sizeof area);
}

/* Blocks grown by realloc (in place without check), one of them lost: the
 * lost one is named by the realloc that made it. */
static char *grow(char *p, size_t n) { return realloc(p, n); }

static void regrow(void) {
    char *p = NULL;
    for (size_t n = 1; n < 20000; n += 7) {
        p = grow(p, n);
        p[n - 1] = 1;
    }
    free(realloc(p, 10));
    launder(grow(malloc(10), 77));
    launder_slot = NULL;
    scrub_stack();
}

static void repeat(void) {
    for (int i = 0; i < 3; i++) {
        char *p = malloc(8);
        release_twice(p, p);
    }
    overflow();
    printf("still running\n");
}

static void *worker(void *arg) {
    char **slots = arg;
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(i * 7919) % 300 + 1;
        char *p = malloc(n);
        memset(p, i, n);
        unsigned at = (unsigned)i % 64;
        free(__atomic_exchange_n(&slots[at], p, __ATOMIC_ACQ_REL));
        if (i % 100 == 0) free(realloc(calloc(1, 40), 80));
    }
    return NULL;
}

static void threads(void) {
    static char *slots[64];
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, slots);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 64; i++)
        free(slots[i]);
    printf("threads done\n");
}

static void clean(void) {
    char *p = calloc(10, 10);
    p = realloc(p, 1000);
    void *q;
    if (posix_memalign(&q, 256, 100) != 0 || ((size_t)q & 255)) return;
    free(q);
    free(aligned_alloc(4096, 4096));
    free(p);
    printf("clean\n");
}

/* A realloc to a size no block can have fails and keeps the block. */
static void realloc_huge(void) {
    char *p = malloc(16);
    memcpy(p, "kept", 5);
    errno = 0;
    volatile size_t huge = SIZE_MAX - 10; /* hidden from gcc's size warning */
    char *q = realloc(p, huge);
    printf("realloc huge: %s, errno %s, block %s\n", q ? "a block" : "NULL",
           errno == ENOMEM ? "ENOMEM" : "other", strcmp(p, "kept") ? "changed" : "kept");
    free(q ? q : p);
}

/* Two million malloc(0)/free pairs: the quarantine's bound must hold for
 * blocks of no bytes too (each still holds its header and red zones). */
static void zero_churn(void) {
    for (int i = 0; i < 2000000; i++)
        free(malloc(0));
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) printf("rss %ld kB\n", strtol(line + 6, NULL, 10));
    if (f) fclose(f);
}

/* A problem reported before fork belongs to the parent: the child, which
 * has none, must not count it or write into the parent's log. */
static void fork_after_report(void) {
    char *p = malloc(8);
    release_twice(p, p);
    pid_t pid = fork();
    if (pid == 0) exit(0);
    int status;
    waitpid(pid, &status, 0);
    printf("child %d exited %d\n", (int)pid, WEXITSTATUS(status));
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } cases[] = {
        {"double_free", double_free},
        {"aba", aba},
        {"interior", interior},
        {"stack", on_stack},
        {"global", in_global},
        {"never", never},
        {"overflow", overflow},
        {"underflow", underflow},
        {"write_after_free", write_after_free},
        {"realloc_freed", realloc_freed},
        {"usable_freed", usable_freed},
        {"leak", leak},
        {"repeat", repeat},
        {"threads", threads},
        {"clean", clean},
        {"running", running},
        {"fork", forked},
        {"regrow", regrow},
        {"realloc_huge", realloc_huge},
        {"zero_churn", zero_churn},
        {"fork_after_report", fork_after_report},
    };
    for (size_t i = 0; argc > 1 && i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].run();
            return 0;
        }
    fprintf(stderr, "usage: bugs CASE\n");
    return 2;
}
