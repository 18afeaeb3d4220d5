/* The only file that calls the kernel for memory: mmap, munmap, madvise,
 * mremap, mincore, sysconf, and the few reads tarn needs (stderr, /proc,
 * entropy), threads and signals for the leak scan. Contract in internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Relaxed atomic: threads may race to fill it, all with the same value. */
static _Atomic size_t page_size_cached;

size_t tarn__os_page_size(void) {
    size_t size = atomic_load_explicit(&page_size_cached, memory_order_relaxed);
    if (!size) {
        size = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page_size_cached, size, memory_order_relaxed);
    }
    return size;
}

/* Fault injection: requests still allowed to succeed (-1: injection off),
 * then failures still to give (-1: every request until turned off). */
static _Atomic long fail_skip = -1, fail_left = 0;

void tarn__os_fail(long after, long count) {
    atomic_store(&fail_left, after < 0 ? 0 : count);
    atomic_store(&fail_skip, after);
}

/* True when fault injection says this request must fail. */
static bool injected_failure(void) {
    long n = atomic_load_explicit(&fail_skip, memory_order_relaxed);
    while (n > 0)
        if (atomic_compare_exchange_weak(&fail_skip, &n, n - 1)) return false;
    if (n < 0) return false;
    long left = atomic_load(&fail_left);
    while (left != 0) {
        if (left < 0) return true;
        if (atomic_compare_exchange_weak(&fail_left, &left, left - 1)) return true;
    }
    return false;
}

static void *map_raw(size_t size, int extra_flags) {
    if (injected_failure()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

void *tarn__os_map(size_t size) { return map_raw(size, 0); }

/* Over-maps by align (and at least to a whole aligned frame) and trims both
 * ends, so the result is aligned, no address space is kept beyond size
 * (rounded to pages), and the rest of the aligned frame it starts is left
 * free at first: a mapping shorter than its frame can then grow in place
 * (tarn__os_extend), where after a bare over-map by align the room left
 * after it would be anything from nothing to the frame's end. */
static void *map_aligned_flags(size_t size, size_t align, int flags) {
    size_t page = tarn__os_page_size();
    size = tarn__align_up(size, page);
    if (align <= page) return map_raw(size, flags);
    size_t span = size > align ? size : align;
    if (span + align < span) {
        errno = ENOMEM;
        return NULL;
    }
    char *raw = map_raw(span + align, flags);
    if (!raw) return NULL;
    char *p = (char *)tarn__align_up((uintptr_t)raw, align);
    if (p > raw) munmap(raw, (size_t)(p - raw));
    size_t tail = (size_t)(raw + span + align - (p + size));
    if (tail) munmap(p + size, tail);
    return p;
}

void *tarn__os_map_aligned(size_t size, size_t align) { return map_aligned_flags(size, align, 0); }

void *tarn__os_reserve(size_t size, size_t align) {
    return map_aligned_flags(size, align, MAP_NORESERVE);
}

void tarn__os_unmap(void *p, size_t size) {
    int saved = errno;
    if (p) munmap(p, tarn__align_up(size, tarn__os_page_size()));
    errno = saved;
}

/* mincore, 1,024 pages a call: a 4 MiB segment of 4 KiB pages in one. */
size_t tarn__os_resident(void *p, size_t size) {
    size_t page = tarn__os_page_size(), pages = tarn__align_up(size, page) / page, count = 0;
    unsigned char vec[1024];
    int saved = errno;
    for (size_t i = 0; i < pages; i += sizeof vec) {
        size_t n = pages - i < sizeof vec ? pages - i : sizeof vec;
        if (mincore((char *)p + i * page, n * page, vec) != 0) {
            errno = saved;
            return size;
        }
        for (size_t j = 0; j < n; j++)
            count += vec[j] & 1;
    }
    return count * page;
}

void tarn__os_decommit(void *p, size_t size) {
    int saved = errno;
    madvise(p, size, MADV_DONTNEED);
    errno = saved;
}

void *tarn__os_remap(void *p, size_t old_size, size_t new_size) {
    if (injected_failure()) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    return q;
}

bool tarn__os_extend(void *p, size_t old_size, size_t new_size) {
    if (injected_failure()) return false;
    int saved = errno; /* a failure here is not the caller's failure */
    bool grown = mremap(p, old_size, new_size, 0) != MAP_FAILED;
    errno = saved;
    return grown;
}

void *tarn__os_remap_aligned(void *p, size_t old_size, size_t new_size, size_t align) {
    if (injected_failure()) {
        errno = ENOMEM;
        return NULL;
    }
    void *dest = map_aligned_flags(new_size, align, MAP_NORESERVE);
    if (!dest) return NULL;
    void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
    if (q == MAP_FAILED) {
        munmap(dest, tarn__align_up(new_size, tarn__os_page_size()));
        errno = ENOMEM;
        return NULL;
    }
    return q;
}

uint64_t tarn__os_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void tarn__os_write_stderr(const char *s, size_t n) {
    while (n) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

long tarn__os_pid(void) { return (long)getpid(); }

uint64_t tarn__os_random(void) {
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)&r;
    return r * TARN__FIB_MULT;
}

size_t tarn__os_rss(void) {
    int saved = errno;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    errno = saved;
    if (fd < 0) return 0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char *s = buf;
    while (*s && *s != ' ')
        s++;
    return (size_t)strtoull(s, NULL, 10) * tarn__os_page_size();
}

/* Keeps errno as it was when ret says success. */
static long kept_errno(long ret, int saved) {
    if (ret >= 0) errno = saved;
    return ret;
}

int tarn__os_open(const char *path, bool dir) {
    int saved = errno;
    return (int)kept_errno(open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0)), saved);
}

long tarn__os_read(int fd, void *buf, size_t n) {
    int saved = errno;
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return kept_errno(r, saved);
}

long tarn__os_read_dir(int fd, void *buf, size_t n) {
    int saved = errno;
    return kept_errno(syscall(SYS_getdents64, fd, buf, n), saved);
}

void tarn__os_close(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}

int tarn__os_gettid(void) { return (int)syscall(SYS_gettid); }

int tarn__os_signal_thread(int tid, int sig) {
    int saved = errno;
    return (int)kept_errno(syscall(SYS_tgkill, getpid(), tid, sig), saved);
}

static void (*_Atomic handler_fn)(void *);

static void on_signal(int sig, siginfo_t *info, void *ucontext) {
    (void)sig, (void)info;
    void (*fn)(void *) = atomic_load(&handler_fn);
    if (fn) fn(ucontext);
}

int tarn__os_set_handler(int sig, void (*fn)(void *ucontext), void *old) {
    atomic_store(&handler_fn, fn);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    int saved = errno;
    return (int)kept_errno(sigaction(sig, &sa, old), saved);
}

void tarn__os_restore_handler(int sig, const void *old) {
    int saved = errno;
    sigaction(sig, old, NULL);
    errno = saved;
}

bool tarn__os_handler_is_custom(const void *old) {
    const struct sigaction *sa = old;
    if (sa->sa_flags & SA_SIGINFO) return true;
    return sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN;
}

size_t tarn__os_handler_size(void) { return sizeof(struct sigaction); }

void tarn__os_wait_word(const _Atomic uint32_t *word, uint32_t expected, unsigned timeout_ms) {
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, timeout_ms ? &ts : NULL, NULL, 0);
    errno = saved;
}

void tarn__os_wake_word(const _Atomic uint32_t *word) {
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
    errno = saved;
}
