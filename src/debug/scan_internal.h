/* Internals of the leak scan (scan.h): the table of this process's
 * mappings (scan_maps.c) and the stopping of the other threads
 * (scan_stop.c), which scan.c puts together.
 *
 *   tarn__scan_maps_t    every line of /proc/self/maps, sorted by address
 *                        (the kernel's order), as [start, end) with flags
 *   tarn__scan_thread_t  one other thread: its tid and, once it answered the
 *                        stop signal, its stack pointer, thread pointer and
 *                        registers; or the range to scan whole when it did not
 *   tarn__scan_world_t   the threads stopped for one scan
 *
 * All their memory comes from tarn__os_map: none of it is a root, and none
 * of it is a heap block. */
#ifndef TARN_DEBUG_SCAN_INTERNAL_H
#define TARN_DEBUG_SCAN_INTERNAL_H

#include <stdatomic.h>
#include <ucontext.h>

#include "debug/scan.h"
#include "internal.h"

/* ---- mappings (scan_maps.c) ------------------------------------------- */
enum {
    TARN__MAP_READ = 1,
    TARN__MAP_WRITE = 2,
    TARN__MAP_ANON = 4,    /* no file and no kernel name such as [vvar] */
    TARN__MAP_GUARD = 8,   /* ---p: no access at all */
    TARN__MAP_STACK = 16,  /* [stack], the main thread's */
    TARN__MAP_KERNEL = 32, /* [vvar], [vdso]...: never read (vvar pages can fault) */
};

typedef struct tarn__scan_map {
    uintptr_t start, end;
    uint32_t flags;
} tarn__scan_map_t;

/* Invariant: v[i].end <= v[i + 1].start, the order /proc/self/maps gives. */
typedef struct tarn__scan_maps {
    tarn__scan_map_t *v;
    size_t n;
    size_t mapped; /* bytes of v's mapping */
    char *text;    /* the file as read: kept mapped while the table is used,
                      since the table lists its mapping as readable */
    size_t text_mapped;
} tarn__scan_maps_t;

/* Reads /proc/self/maps into m; 0, or -1 with errno. */
int tarn__scan_maps_read(tarn__scan_maps_t *m);
void tarn__scan_maps_free(tarn__scan_maps_t *m);
/* The first mapping that ends after addr (it holds addr when its start is
 * <= addr), or NULL. */
const tarn__scan_map_t *tarn__scan_maps_from(const tarn__scan_maps_t *m, uintptr_t addr);
/* The mapping holding addr, or NULL. */
const tarn__scan_map_t *tarn__scan_maps_find(const tarn__scan_maps_t *m, uintptr_t addr);

/* The value of a lowercase hex digit (as /proc writes them), or -1. */
static inline int tarn__scan_hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The calling thread's thread pointer, the address its TLS is found from. */
static inline uintptr_t tarn__scan_thread_pointer(void) {
    uintptr_t tp;
#if defined(__x86_64__)
    __asm__("mov %%fs:0, %0" : "=r"(tp)); /* the TCB's pointer to itself */
#elif defined(__aarch64__)
    __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#else
    tp = (uintptr_t)__builtin_thread_pointer();
#endif
    return tp;
}

/* ---- stopping the other threads (scan_stop.c) -------------------------
 * Each other thread gets the signal; its handler saves where its stack
 * is, its thread pointer and its registers, says so, and sleeps until the
 * scan ends. Threads that block the signal (their /proc status says so)
 * are not waited for, and the others at most wait_ms; for those that did
 * not answer,
 * /proc/self/task/TID/syscall gives the stack pointer of one blocked in a
 * system call, and nothing for one that is running. */
enum { TARN__THREAD_SENT, TARN__THREAD_STOPPED, TARN__THREAD_LEFT };

typedef struct tarn__scan_thread {
    int tid;
    _Atomic uint32_t state; /* TARN__THREAD_* */
    uintptr_t sp;           /* in its stop handler: scan from here up */
    uintptr_t tp;           /* its thread pointer (TLS) */
    uintptr_t whole_sp;     /* did not answer: its stack pointer from
                               /proc, 0 if it was running */
    bool answered;          /* stopped in time: sp, tp, regs are valid */
    bool gone;              /* exited before it could be stopped */
    bool blocked;           /* blocks the signal: not waited for */
    mcontext_t regs;        /* as the signal found them */
} tarn__scan_thread_t;

typedef struct tarn__scan_world {
    tarn__scan_thread_t *t; /* the other threads, the caller excluded */
    _Atomic size_t n;       /* read by the handlers while it grows */
    size_t mapped;          /* bytes of t's reservation */
    int sig;
    bool keep_handler; /* the old action was SIG_DFL or SIG_IGN:
                          ours stays, for signals still pending */
    _Alignas(16) unsigned char old_action[256];
} tarn__scan_world_t;

/* Stops every other thread of the process with signal sig, waiting up to
 * wait_ms for each to answer; those that do not are described by
 * whole_sp. 0, or -1 with errno (then no thread is left stopped). */
int tarn__scan_stop(tarn__scan_world_t *w, int sig, unsigned wait_ms);
/* Lets the stopped threads go and frees w; they have left the handler when
 * it returns. */
void tarn__scan_resume(tarn__scan_world_t *w);

#endif
