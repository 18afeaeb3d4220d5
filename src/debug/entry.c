/* The standard allocator symbols of libtarn-debug.so (the same names as
 * libtarn-override.so, see src/override.c), and the layer's start and exit.
 *
 * Options are read at the first call (tarn__option allocates nothing).
 * With neither `check` nor `leaks` every call goes straight to the heap.
 * A thread in scratch mode (capturing a stack, writing a report) is served
 * from scratch memory, and a scratch pointer goes back there whoever frees
 * it. At exit, after the program's own exit handlers (ours is registered
 * first, at load, so it runs last): verify every block, the leak report,
 * the summary, and the exit status when problems or leaks were found. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debug/internal.h"
#include "options.h"

enum { UNREAD, PLAIN, CHECKED };
static _Atomic int mode = UNREAD;

static tarn__cold int read_options(void) {
    tarn__dbg.check = tarn__option(TARN__OPT_CHECK) != 0;
    tarn__dbg.leaks = tarn__option(TARN__OPT_LEAKS) != 0;
    long frames = tarn__option(TARN__OPT_FRAMES);
    tarn__dbg.frames = frames < 0 ? 0 : frames > 64 ? 64 : (unsigned)frames;
    long q = tarn__option(TARN__OPT_QUARANTINE);
    tarn__dbg.quarantine = q < 0 ? 0 : (size_t)q;
    int m = tarn__dbg.check || tarn__dbg.leaks ? CHECKED : PLAIN;
    atomic_store_explicit(&mode, m, memory_order_release);
    return m;
}

static inline bool checked(void) {
    int m = atomic_load_explicit(&mode, memory_order_acquire);
    return (tarn__likely(m != UNREAD) ? m : read_options()) == CHECKED;
}

/* ---- allocation ------------------------------------------------------------ */
static void *alloc(size_t size, size_t align, bool zero) {
    if (tarn__unlikely(tarn__scratch_active())) {
        void *p = tarn__scratch_alloc(size, align);
        if (p && zero) memset(p, 0, size);
        if (!p) errno = ENOMEM;
        return p;
    }
    if (checked()) return tarn__dbg_alloc(size, align, zero);
    if (align <= 16) return zero ? tarn_calloc(1, size) : tarn_malloc(size);
    void *p = tarn_memalign(align, size);
    if (p && zero) memset(p, 0, size);
    return p;
}

TARN_API void *malloc(size_t size) { return alloc(size, 16, false); }

TARN_API void free(void *p) {
    if (!p) return;
    if (tarn__unlikely(tarn__scratch_owns(p)))
        tarn__scratch_free(p);
    else if (checked())
        tarn__dbg_free(p);
    else
        tarn_free(p);
}

TARN_API void *calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc(n * size, 16, true);
}

TARN_API void *realloc(void *p, size_t size) {
    if (tarn__unlikely(tarn__scratch_owns(p) || (!p && tarn__scratch_active())))
        return tarn__scratch_realloc(p, size);
    if (!checked()) return tarn_realloc(p, size);
    if (!p) return tarn__dbg_alloc(size, 16, false);
    if (!size) {
        tarn__dbg_free(p);
        return NULL;
    }
    return tarn__dbg_realloc(p, size);
}

TARN_API void *reallocarray(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

/* The alignment rules are the heap's (src/heap/alloc.c, docs/heap.md). */
TARN_API int posix_memalign(void **out, size_t align, size_t size) {
    if (!tarn__is_pow2(align) || align % sizeof(void *)) return EINVAL;
    int saved = errno;
    void *p = alloc(size, align, false);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

TARN_API void *aligned_alloc(size_t align, size_t size) {
    if (!tarn__is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc(size, align, false);
}

TARN_API void *memalign(size_t align, size_t size) {
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    return alloc(size, tarn__pow2_ceil(align ? align : 1), false);
}

TARN_API void *valloc(size_t size) { return alloc(size, tarn__os_page_size(), false); }

TARN_API void *pvalloc(size_t size) {
    size_t page = tarn__os_page_size();
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc(tarn__align_up(size ? size : 1, page), page, false);
}

TARN_API size_t malloc_usable_size(void *p) {
    if (!p || tarn__scratch_owns(p)) return 0;
    return checked() ? tarn__dbg_usable(p) : tarn_usable_size(p);
}

TARN_API int malloc_trim(size_t pad) {
    (void)pad;
    return tarn_collect(true) > 0;
}

/* glibc's other names for the same calls, and C23's sized frees (the size
 * is not checked: the header's size is what counts). */
TARN_API void *__libc_malloc(size_t size) { return malloc(size); }
TARN_API void __libc_free(void *p) { free(p); }
TARN_API void *__libc_calloc(size_t n, size_t size) { return calloc(n, size); }
TARN_API void *__libc_realloc(void *p, size_t size) { return realloc(p, size); }
TARN_API void *__libc_memalign(size_t align, size_t size) { return memalign(align, size); }
TARN_API void *__libc_valloc(size_t size) { return valloc(size); }
TARN_API void *__libc_pvalloc(size_t size) { return pvalloc(size); }
TARN_API int __posix_memalign(void **out, size_t align, size_t size) {
    return posix_memalign(out, align, size);
}
TARN_API void cfree(void *p) { free(p); }
TARN_API void free_sized(void *p, size_t size) {
    (void)size;
    free(p);
}
TARN_API void free_aligned_sized(void *p, size_t align, size_t size) {
    (void)align;
    (void)size;
    free(p);
}

/* ---- start and exit ------------------------------------------------------- */
/* Every lock of the layer, in the order its paths nest them. */
static void before_fork(void) {
    tarn__registry_fork_lock(true);
    tarn__quarantine_lock();
    tarn__report_fork_lock(true);
    tarn__scratch_fork_lock(true);
}
static void after_fork(void) {
    tarn__scratch_fork_lock(false);
    tarn__report_fork_lock(false);
    tarn__quarantine_unlock();
    tarn__registry_fork_lock(false);
}
static void after_fork_child(void) {
    tarn__scratch_fork_lock(false);
    tarn__report_fork_child();
    tarn__quarantine_unlock();
    tarn__registry_fork_lock(false);
}

/* The checks at exit, with every registry stripe held so threads still
 * running cannot change a block meanwhile (they wait in malloc or free). */
static void at_exit(void) {
    if (!checked()) return;
    tarn__registry_lock_all();
    if (tarn__dbg.check) tarn__dbg_verify_all();
    tarn__out_t *o = tarn__report_open();
    size_t lost = tarn__dbg.leaks ? tarn__leaks_report(o, tarn__option(TARN__OPT_LEAKS) == 2) : 0;
    unsigned long problems = tarn__report_summary(o);
    tarn__report_close(o);
    tarn__registry_unlock_all();
    long leak_code = tarn__option(TARN__OPT_LEAKS_EXITCODE);
    int code = lost == TARN__LEAKS_FAILED ? 1
               : lost && leak_code        ? (int)leak_code
               : problems                 ? 1
                                          : -1;
    if (code >= 0) {
        fflush(NULL);
        _exit(code);
    }
}

__attribute__((constructor)) static void start(void) {
    if (!checked()) return;
    atexit(at_exit);
    pthread_atfork(before_fork, after_fork, after_fork_child);
}
