/* The checking layer of libtarn-debug.so: a block layout with red zones
 * around the heap's blocks, a registry of them, a quarantine of freed ones,
 * and reports. It allocates with the heap's public calls; the heap knows
 * nothing of it.
 *
 * Map of the types:
 *   tarn__dblock_t   the header in front of every block the layer hands out
 *                    (block.c): raw = user - offset, header = user - 64.
 *   registry         user address -> header, striped open-addressed tables
 *                    in OS memory (registry.c); a block is in it from
 *                    malloc until it leaves the quarantine.
 *   quarantine       FIFO of freed blocks, bounded in bytes (quarantine.c).
 *   scratch          the memory reports and stack capture allocate from
 *                    (scratch.c), never the heap being checked.
 *   tarn__out_t      a report being written (report.c).
 *
 * Invariants: a registered block's header has magic LIVE or FREED; FREED
 * blocks are exactly those in the quarantine; the state changes only under
 * the block's registry stripe lock. */
#ifndef TARN_DEBUG_INTERNAL_H
#define TARN_DEBUG_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../internal.h" /* src/internal.h: this file shares its name */

/* ---- block layout (block.c) -------------------------------------------
 *  raw           user-64        user-32         user        user+size
 *  | align pad  | header 32 B  | front canary  | the block | rear canary ...|
 * The rear canary runs from user+size to the next 16-byte boundary plus
 * 16 bytes, so an overflow by one byte always lands in it. */
#define TARN__DBG_FRESH 0xbe  /* fills a new block (malloc, realloc's growth) */
#define TARN__DBG_FREED 0xfd  /* fills a freed block in the quarantine */
#define TARN__DBG_CANARY 0xca /* the red zones */
#define TARN__DBG_FRONT 32    /* front red zone bytes */
#define TARN__DBG_REAR 16     /* rear red zone bytes past the 16-byte granule */
#define TARN__DBG_LEAD 64     /* header + front red zone: user - header */
#define TARN__DBG_LIVE_MAGIC 0x6576696c6e726174ull  /* "tarnlive" */
#define TARN__DBG_FREED_MAGIC 0x6465657266726174ull /* "tarfreed" */

typedef struct tarn__dblock {
    uint64_t size;        /* bytes asked for */
    uint32_t alloc_stack; /* depot ids, 0 when none */
    uint32_t free_stack;
    uint32_t offset;   /* user - raw: what tarn_free gets back */
    uint32_t reported; /* problem kinds already reported for it (bits) */
    uint64_t magic;    /* LIVE or FREED; last, next to the front red zone */
} tarn__dblock_t;
_Static_assert(sizeof(tarn__dblock_t) + TARN__DBG_FRONT == TARN__DBG_LEAD,
               "the header and the front red zone fill the lead exactly");

static inline tarn__dblock_t *tarn__dblock_of(const void *user) {
    return (tarn__dblock_t *)((uintptr_t)user - TARN__DBG_LEAD);
}
static inline unsigned char *tarn__dblock_user(const tarn__dblock_t *b) {
    return (unsigned char *)b + TARN__DBG_LEAD;
}
/* Rear red zone bytes of a block of size bytes. */
static inline size_t tarn__dblock_rear(size_t size) {
    return tarn__align_up(size, 16) - size + TARN__DBG_REAR;
}
/* Writes header and canaries; fills the block with fill unless fill < 0. */
void tarn__dblock_arm(tarn__dblock_t *b, size_t size, uint32_t offset, int fill, bool canaries);
/* Offset from user of the first red-zone byte that is not a canary
 * (negative: before the block), or false when both zones are intact. */
bool tarn__dblock_bad_canary(const tarn__dblock_t *b, long *at);
/* Offset of the first byte of a freed block that is not TARN__DBG_FREED. */
bool tarn__dblock_bad_fill(const tarn__dblock_t *b, long *at);

/* ---- the registry (registry.c) ----------------------------------------- */
typedef struct tarn__stripe tarn__stripe_t;
tarn__stripe_t *tarn__registry_lock(const void *user);
void tarn__registry_unlock(tarn__stripe_t *s);
/* The header of the registered block at user, or NULL. */
tarn__dblock_t *tarn__registry_find_locked(tarn__stripe_t *s, const void *user);
/* 0, or -1 when no memory could be had for the table. */
int tarn__registry_add_locked(tarn__stripe_t *s, const void *user);
void tarn__registry_remove_locked(tarn__stripe_t *s, const void *user);
/* Holds every stripe (fork, the checks at exit); nests. While a thread
 * holds them, its own tarn__registry_lock calls take nothing. */
void tarn__registry_lock_all(void);
void tarn__registry_unlock_all(void);
/* Takes (lock) or gives back every registry lock around fork. */
void tarn__registry_fork_lock(bool lock);
/* Calls fn on every registered block; the caller holds every stripe. */
void tarn__registry_each_locked(void (*fn)(tarn__dblock_t *b, void *arg), void *arg);
/* The registered block whose red zones or bytes hold p, or NULL; the
 * caller holds every stripe. A walk of everything: for reports only. */
tarn__dblock_t *tarn__registry_containing_locked(const void *p);

/* ---- the quarantine (quarantine.c) -------------------------------------
 * Takes a FREED block; blocks pushed out by the byte bound are verified,
 * unregistered and given back to the heap. */
void tarn__quarantine_push(tarn__dblock_t *b);
/* Verifies every block still held (at exit). */
void tarn__quarantine_verify(void);
void tarn__quarantine_lock(void);
void tarn__quarantine_unlock(void);

/* ---- scratch memory (scratch.c) ----------------------------------------
 * While a thread is inside tarn__scratch_enter/leave (capturing a stack,
 * writing a report), its malloc & co come from here. */
void tarn__scratch_enter(void);
void tarn__scratch_leave(void);
bool tarn__scratch_active(void);
bool tarn__scratch_owns(const void *p);
void *tarn__scratch_alloc(size_t size, size_t align);
void *tarn__scratch_realloc(void *p, size_t size);
void tarn__scratch_free(void *p);
void tarn__scratch_fork_lock(bool lock);

/* ---- reports (report.c, symbolize.c) ----------------------------------- */
typedef enum tarn__bug {
    TARN__BUG_OVERFLOW,
    TARN__BUG_UNDERFLOW,
    TARN__BUG_AFTER_FREE, /* a write after free */
    TARN__BUG_DOUBLE_FREE,
    TARN__BUG_INVALID_FREE,
    TARN__BUG_FREED_REALLOC,
    TARN__BUG_FREED_USABLE,
    TARN__BUG_INVALID_REALLOC,
    TARN__BUG_INVALID_USABLE,
    TARN__BUG_HEADER, /* a header overwritten: an underflow past the red zone */
    TARN__BUG_COUNT
} tarn__bug_t;

typedef struct tarn__out {
    int fd;
    size_t len;
    char buf[4096];
} tarn__out_t;

void tarn__out_printf(tarn__out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tarn__out_flush(tarn__out_t *o);
/* Prints stack id, one frame a line, each line starting with indent. */
void tarn__stack_print(tarn__out_t *o, uint32_t id, const char *indent);
/* Prints the name of the symbol holding addr (code or data) and the offset
 * into it; false, printing nothing, when no symbol holds it. */
bool tarn__symbol_print(tarn__out_t *o, uintptr_t addr);
/* Ends the symbolizer's session (it is opened by the first stack printed). */
void tarn__symbolize_end(void);

/* What makes two reports of one kind the same problem: the stacks of the
 * call that found it and of the block's allocation (a bug in a loop is
 * reported once, not once per block). */
static inline uint64_t tarn__report_key(uint32_t here, uint32_t alloc) {
    return (uint64_t)here << 32 | alloc;
}
/* A report of bug kind about a problem identified by key: NULL when continue is set and it was
 * reported already; else the output to write it to, with the report lock held and this thread on
 * scratch memory. */
tarn__out_t *tarn__report_begin(tarn__bug_t kind, uint64_t key);
/* Writes it out; aborts unless continue is set. */
void tarn__report_end(tarn__out_t *o);
/* The output for the reports at exit (leaks, summary), lock held. */
tarn__out_t *tarn__report_open(void);
void tarn__report_close(tarn__out_t *o);
/* Around fork: the report lock; in the child, also a fresh log and counts. */
void tarn__report_fork_lock(bool lock);
void tarn__report_fork_child(void);
/* Problems reported so far; writes the summary line when there are any. */
unsigned long tarn__report_summary(tarn__out_t *o);
const char *tarn__bug_name(tarn__bug_t kind);

/* ---- the checked calls (check.c) and the leak report (leaks.c) --------- */
typedef struct tarn__dbg_config {
    bool check; /* red zones, fills, quarantine */
    bool leaks;
    unsigned frames; /* frames per stack */
    size_t quarantine;
} tarn__dbg_config_t;
extern tarn__dbg_config_t tarn__dbg;

void *tarn__dbg_alloc(size_t size, size_t align, bool zero);
void tarn__dbg_free(void *p);
void *tarn__dbg_realloc(void *p, size_t size);
size_t tarn__dbg_usable(void *p);
/* The id of the calling thread's stack, the checking layer's frames left out. */
uint32_t tarn__dbg_capture(void);
/* Verifies every live and quarantined block (at exit). */
void tarn__dbg_verify_all(void);
/* The leak report at exit; returns the bytes definitely lost. */
/* TARN__LEAKS_FAILED when the report could not be made (no memory, the scan
 * failed): the exit status must then not say "no leaks". */
#define TARN__LEAKS_FAILED SIZE_MAX
size_t tarn__leaks_report(tarn__out_t *o, bool all);

#endif
