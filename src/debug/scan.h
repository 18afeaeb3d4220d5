/* The leak scan: which live blocks the program can still reach.
 *
 * The caller (the debug library's leak report) hands over every live block
 * as an array sorted by start address; tarn__scan_mark sets, in each
 * block's flags, REACHABLE or INTERIOR or neither, the three classes
 * Valgrind's memcheck reports as "still reachable", "possibly lost" and
 * "definitely lost".
 *
 * Roots, scanned word by word (aligned words, any value that falls inside a
 * block counts, as memcheck and LeakSanitizer do):
 *   - the writable PT_LOAD segments (data, bss, and the RELRO part inside
 *     them) of every loaded module but the one options->skip_module names;
 *   - every thread's stack, from its stack pointer to the end of the mapping
 *     holding it, which for glibc's threads also covers their static TLS and
 *     thread descriptor; the calling thread from tarn__scan_mark's own frame
 *     up, with its callee-saved registers spilled there;
 *   - every other thread's registers, saved by a signal handler while the
 *     thread waits for the scan to end (threads that never answer are
 *     scanned conservatively: see docs/debug.md, "Leak scan");
 *   - the static TLS of each thread whose thread pointer lies outside its
 *     stack mapping (glibc's main thread);
 *   - the blocks the caller flags TARN__SCAN_ROOT (LeakSanitizer does this
 *     for the loader's allocations: dynamic TLS blocks and the DTV, which the
 *     loader points to only through interior or unscanned pointers).
 *
 * Marking: a block is REACHABLE when a pointer to its start lies in a root
 * or in a REACHABLE block. A block that is not REACHABLE but is pointed to,
 * at its start or inside, from a root, a REACHABLE block or an INTERIOR
 * block is INTERIOR (memcheck's "possibly lost", transitive as there).
 * Every other block is lost. ROOT blocks are REACHABLE.
 *
 * The scan allocates nothing from any heap (its worklist and tables come
 * from the OS), calls no stdio, and reads only ranges that /proc/self/maps
 * shows readable. It is meant to run once, at exit; it stops the other
 * threads of the process for its duration and resumes them before it
 * returns. It must not run in two threads at once. */
#ifndef TARN_DEBUG_SCAN_H
#define TARN_DEBUG_SCAN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tarn__scan_block {
    uintptr_t start; /* the address malloc returned */
    size_t size;     /* bytes the program may use; 0 is allowed */
    uint32_t flags;  /* TARN__SCAN_*: ROOT in, REACHABLE or INTERIOR out */
} tarn__scan_block_t;

enum {
    TARN__SCAN_REACHABLE = 1, /* a pointer to its start is reachable from a root */
    TARN__SCAN_INTERIOR = 2,  /* only pointers into it, or from INTERIOR blocks */
    TARN__SCAN_ROOT = 4,      /* set by the caller: the block is a root */
};

/* What one scan did, for the report and for measuring its cost. */
typedef struct tarn__scan_stats {
    size_t root_bytes;    /* bytes of roots read: modules, stacks, TLS, registers */
    size_t block_bytes;   /* bytes of blocks read */
    size_t threads;       /* threads found, the caller included */
    size_t threads_whole; /* of them, those that did not answer the signal and
                             whose stacks were scanned conservatively */
    size_t modules;       /* loaded modules whose segments were roots */
} tarn__scan_stats_t;

/* All zero means the defaults. */
typedef struct tarn__scan_options {
    /* The writable segments of the loaded module holding this address are
     * not roots: the debug library passes an address of its own, so that
     * its tables do not keep every block alive. NULL: every module is a root. */
    const void *skip_module;
    /* The signal that stops the other threads; 0: TARN__SCAN_SIGNAL. */
    int signal;
    /* How long a thread has to answer that signal before it is scanned
     * conservatively, in ms; 0: TARN__SCAN_WAIT_MS. */
    unsigned wait_ms;
    /* Filled when not NULL. */
    tarn__scan_stats_t *stats;
} tarn__scan_options_t;

/* Real-time signals are queued, never merged, and programs that use them
 * count up from SIGRTMIN: the high end is the least likely to be taken. */
#define TARN__SCAN_SIGNAL (SIGRTMAX - 3)
#define TARN__SCAN_WAIT_MS 500u

/* Sets REACHABLE or INTERIOR (never both) in the flags of blocks[0..n), which
 * must be sorted by start and not overlap; ROOT is kept, the other flags are
 * cleared first. Returns 0, or -1 with errno (ENOMEM: no memory from the OS
 * for the worklist; EINVAL: blocks not sorted or overlapping; other values
 * from reading /proc/self), the flags then being meaningless. */
int tarn__scan_mark(tarn__scan_block_t *blocks, size_t n, const tarn__scan_options_t *opt);

#endif
