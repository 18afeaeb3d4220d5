/* Shared internals: assertions, the error path and the OS contract.
 *
 * Layers, lowest first: os.c (the only file that talks to the kernel) ->
 * error.c -> fixed.c, arena.c, region/ -> heap/ -> override.c. A file may
 * include headers of its own layer or lower ones only. */
#ifndef TARN_INTERNAL_H
#define TARN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tarn.h"

#define tarn__likely(x) __builtin_expect(!!(x), 1)
#define tarn__unlikely(x) __builtin_expect(!!(x), 0)
#define tarn__noinline __attribute__((noinline))
#define tarn__cold __attribute__((cold, noinline))

/* ---- assertions --------------------------------------------------------
 * tarn_assert: cheap invariant checks, compiled in when TARN_DEBUG >= 1
 * (tests and debug builds). tarn_assert_slow: checks that walk a structure,
 * compiled in when TARN_DEBUG >= 2. Each carries the reason it must hold. */
#ifndef TARN_DEBUG
#define TARN_DEBUG 0
#endif

_Noreturn void tarn__assert_fail(const char *cond, const char *why, const char *file, int line);

#if TARN_DEBUG >= 1
#define tarn_assert(cond, why)                                                                     \
    ((cond) ? (void)0 : tarn__assert_fail(#cond, why, __FILE__, __LINE__))
#else
#define tarn_assert(cond, why) ((void)0)
#endif
#if TARN_DEBUG >= 2
#define tarn_assert_slow(cond, why) tarn_assert(cond, why)
#else
#define tarn_assert_slow(cond, why) ((void)0)
#endif

/* ---- misuse reports (error.c) -----------------------------------------
 * Formats one line and hands it to the installed handler. Returns only if a
 * user handler returned; the caller must then leave its state untouched. */
void tarn__report(const char *fmt, ...) __attribute__((format(printf, 1, 2), cold, noinline));

/* ---- the OS contract (os.c) -------------------------------------------
 * Every mapping is anonymous, private, zero-filled and page aligned.
 * Failures return NULL (or -1) with errno set and change nothing; success,
 * and the calls that cannot fail (unmap, decommit), leave errno as it was,
 * so that malloc & co leave it unchanged when they succeed.
 * tarn__os_fail(after, count) lets the next `after` maps, reserves,
 * remaps or extends succeed, then fails `count` of them (-1: all, until turned off)
 * with ENOMEM, so tests reach out-of-memory paths; after < 0 turns
 * injection off. */
size_t tarn__os_page_size(void);
/* size bytes of read-write memory, committed on first touch. */
void *tarn__os_map(size_t size);
/* size bytes starting at a multiple of align (a power of two >= page size);
 * the rest of that align-sized frame is left unmapped, free to grow into. */
void *tarn__os_map_aligned(size_t size, size_t align);
/* Address space that reads as zeros and is committed page by page on first
 * write; not charged against the commit limit where the kernel allows it. */
void *tarn__os_reserve(size_t size, size_t align);
void tarn__os_unmap(void *p, size_t size);
/* Gives the pages back to the OS; they stay mapped and read as zeros. */
void tarn__os_decommit(void *p, size_t size);
/* Bytes now resident in the pages of [p, p + size) (p page aligned), in
 * whole pages; size itself when the kernel cannot tell. A page swapped out
 * is not resident: the count says nothing about what reads as zero. */
size_t tarn__os_resident(void *p, size_t size);
/* Grows or moves a mapping (mremap); NULL with errno when it cannot. */
void *tarn__os_remap(void *p, size_t old_size, size_t new_size);
/* Grows a mapping in place when the addresses after it are free (mremap
 * without moving); false, with nothing changed (errno neither), when it
 * cannot. */
bool tarn__os_extend(void *p, size_t old_size, size_t new_size);
/* Like tarn__os_remap, but the result stays a multiple of align (a power of
 * two >= page size): moves the pages (no copy) to a fresh aligned range;
 * callers try tarn__os_extend first. */
void *tarn__os_remap_aligned(void *p, size_t old_size, size_t new_size, size_t align);
/* Milliseconds from a coarse monotonic clock (a few ms resolution, no
 * syscall): cheap enough for allocator slow paths. */
uint64_t tarn__os_now_ms(void);
/* Writes a whole message to stderr, retrying short writes. */
void tarn__os_write_stderr(const char *s, size_t n);
/* This process's id (getpid). */
long tarn__os_pid(void);
/* A 64-bit value that differs between processes and calls. */
uint64_t tarn__os_random(void);
/* Resident set size of this process in bytes, from /proc/self/statm. */
size_t tarn__os_rss(void);
void tarn__os_fail(long after, long count);

/* Fibonacci hashing's multiplier, 2^64 divided by the golden ratio: a
 * product's high bits spread keys that differ only in low bits (Knuth,
 * TAOCP vol. 3, 6.4). */
#define TARN__FIB_MULT 0x9e3779b97f4a7c15ull

/* Files, threads and signals, for the leak scan (src/debug/scan*.c), which
 * runs inside the malloc library at exit and may use no stdio. Each returns
 * -1 with errno on failure and leaves errno alone on success. */
/* open(2) read-only (O_DIRECTORY too when dir), close-on-exec. */
int tarn__os_open(const char *path, bool dir);
/* read(2), retried on EINTR; 0 at end of file. */
long tarn__os_read(int fd, void *buf, size_t n);
/* getdents64(2): struct linux_dirent64 records into buf; 0 at the end. */
long tarn__os_read_dir(int fd, void *buf, size_t n);
void tarn__os_close(int fd);
int tarn__os_gettid(void);
/* Sends sig to thread tid of this process (tgkill(2)). */
int tarn__os_signal_thread(int tid, int sig);
/* Makes fn(ucontext) sig's handler, with every signal blocked while it
 * runs and SA_RESTART so interrupted calls resume; the old action goes to
 * *old (tarn__os_handler_size() bytes) when old is not NULL. One such
 * handler at a time in the process. */
int tarn__os_set_handler(int sig, void (*fn)(void *ucontext), void *old);
/* Puts back an action tarn__os_set_handler saved. */
void tarn__os_restore_handler(int sig, const void *old);
/* True when the action saved in *old is a handler of the program's own,
 * not SIG_DFL or SIG_IGN. */
bool tarn__os_handler_is_custom(const void *old);
/* Bytes a saved action takes. */
size_t tarn__os_handler_size(void);
/* Sleeps while *word == expected, at most timeout_ms (0: no limit), or until
 * woken (futex(2), private); async-signal-safe. */
void tarn__os_wait_word(const _Atomic uint32_t *word, uint32_t expected, unsigned timeout_ms);
/* Wakes every thread sleeping on word. */
void tarn__os_wake_word(const _Atomic uint32_t *word);

static inline bool tarn__is_pow2(size_t x) { return x && !(x & (x - 1)); }
static inline size_t tarn__align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

/* Smallest power of two >= x, for 1 <= x <= 2^63. */
static inline size_t tarn__pow2_ceil(size_t x) {
    return x <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzll(x - 1));
}

#endif
