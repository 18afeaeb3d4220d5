/* Small buggy programs for bench/detect.sh, one per argv[1]: each does one
 * kind of memory bug and nothing else, so that whatever a tool reports is
 * about that bug ("clean" does none: a tool that reports it is wrong).
 * Built with -g -O0, plain and with -fsanitize=address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *held_by_global;
static char global_array[64];

/* Pointers and bytes go through here so the compiler cannot see the bug
 * (and cannot warn about it or fold it away). */
static void *volatile launder_slot;
static volatile char sink;

static void *launder(void *p) {
    launder_slot = p;
    return launder_slot;
}

static char *make(size_t n) { return malloc(n); }

static void overflow_write(void) {
    char *p = make(16);
    ((char *)launder(p))[16] = 'x';
    free(p);
}

static void underflow_write(void) {
    char *p = make(16);
    ((char *)launder(p))[-1] = 'x';
    free(p);
}

static void write_after_free(void) {
    char *p = make(32);
    free(p);
    ((char *)launder(p))[3] = 'x';
}

static void double_free(void) {
    char *p = make(4);
    char *q = launder(p);
    free(p);
    free(q);
}

/* A is freed again after B was freed in between: a check that compares a
 * pointer only with the last one freed misses it. */
static void aba(void) {
    char *a = make(24);
    char *b = make(24);
    free(a);
    free(b);
    free(launder(a));
}

static void free_stack(void) {
    char local[16];
    free(launder(local));
}

static void free_global(void) { free(launder(global_array + 16)); }

static void interior_free(void) {
    char *p = make(32);
    free((char *)launder(p) + 8);
    free(p);
}

/* Zeroes the stack below the caller, where dead frames still hold the
 * dropped pointer: a leak checker scanning the stack would see it there. */
static void scrub_stack(void) {
    volatile char area[16384];
    memset((char *)area, 0, sizeof area);
}

static void drop(void) {
    char *p = make(100);
    memset(p, 1, 100);
    launder(p);
    launder_slot = NULL;
}

static void leak_lost(void) {
    drop();
    scrub_stack();
}

static void leak_global(void) { held_by_global = make(200); }

static void read_overflow(void) {
    char *p = make(16);
    memset(p, 0, 16);
    sink = ((char *)launder(p))[16];
    free(p);
}

static void read_after_free(void) {
    char *p = make(32);
    memset(p, 0, 32);
    free(p);
    sink = ((char *)launder(p))[3];
}

/* The branch on the unwritten byte is what memcheck reports, not the read. */
static void uninit_read(void) {
    char *p = make(16);
    if (((char *)launder(p))[5] == 'q') puts("q");
    free(p);
}

static void clean(void) {
    char *p = make(16);
    memset(p, 0, 16);
    sink = p[15];
    free(p);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } cases[] = {
        {"overflow_write", overflow_write},
        {"underflow_write", underflow_write},
        {"write_after_free", write_after_free},
        {"double_free", double_free},
        {"aba", aba},
        {"free_stack", free_stack},
        {"free_global", free_global},
        {"interior_free", interior_free},
        {"leak_lost", leak_lost},
        {"leak_global", leak_global},
        {"read_overflow", read_overflow},
        {"read_after_free", read_after_free},
        {"uninit_read", uninit_read},
        {"clean", clean},
    };
    for (size_t i = 0; argc > 1 && i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].run();
            return 0;
        }
    fprintf(stderr, "usage: bugs CASE\n");
    return 2;
}
