/* Stopping the other threads for the leak scan, as garbage collectors for
 * C do (the Boehm collector's suspend signal): a signal whose handler
 * records the thread's stack pointer, thread pointer and registers, then
 * sleeps until the scan is done. Unlike a tracer process (LeakSanitizer's
 * way), it needs no ptrace permission and no fork at exit.
 *
 * Protocol, between the scanning thread and each handler:
 *   scan:    publish the world, signal each thread in /proc/self/task (again
 *            until no new thread shows up), wait for answers until the
 *            deadline, scan;
 *   handler: find its slot by tid, fill it, set STOPPED (release), count
 *            itself in `answers`, sleep while `released` is 0, set LEFT;
 *   resume:  set `released`, withdraw the world, wait until no handler is
 *            inside (`inside`), then free the slots.
 * `inside` is counted before the world is read, so once the world is
 * withdrawn and `inside` is 0 no handler can touch the slots. */
#include <errno.h>

#include "debug/scan_internal.h"

/* Slots reserved for threads: address space only, committed as used. */
#define MAX_THREADS 65536

static tarn__scan_world_t *_Atomic stopping;
static _Atomic uint32_t inside, answers, released;

static tarn__scan_thread_t *find_slot(tarn__scan_world_t *w, int tid) {
    size_t n = atomic_load_explicit(&w->n, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (w->t[i].tid == tid) return &w->t[i];
    return NULL;
}

/* Runs in the stopped thread with every signal blocked. The kernel's signal
 * frame (the ucontext, vector registers included) lies between this frame
 * and the interrupted code's, so scanning from here up also covers the
 * x86-64 red zone the interrupted function may use. The frame address, not
 * a local's, since a sanitizer may move locals off the stack. */
static void on_stop(void *ucontext) {
    int saved = errno;
    atomic_fetch_add(&inside, 1);
    tarn__scan_world_t *w = atomic_load(&stopping);
    tarn__scan_thread_t *t = w ? find_slot(w, tarn__os_gettid()) : NULL;
    if (t && atomic_load(&t->state) == TARN__THREAD_SENT) {
        t->sp = (uintptr_t)__builtin_frame_address(0);
        t->tp = tarn__scan_thread_pointer();
        t->regs = ((ucontext_t *)ucontext)->uc_mcontext;
        atomic_store_explicit(&t->state, TARN__THREAD_STOPPED, memory_order_release);
        atomic_fetch_add(&answers, 1);
        tarn__os_wake_word(&answers);
        while (!atomic_load(&released))
            tarn__os_wait_word(&released, 0, 0);
        atomic_store(&t->state, TARN__THREAD_LEFT);
    }
    atomic_fetch_sub(&inside, 1);
    tarn__os_wake_word(&inside);
    errno = saved;
}

struct linux_dirent64 { /* getdents64's record */
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

static int parse_tid(const char *s) {
    int v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* Writes "/proc/self/task/TID/" then name into path (64 bytes). */
static void task_path(char *path, int tid, const char *name) {
    char digits[16];
    size_t at = 0, nd = 0;
    for (const char *s = "/proc/self/task/"; *s;)
        path[at++] = *s++;
    for (int v = tid; v; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    while (nd)
        path[at++] = digits[--nd];
    path[at++] = '/';
    while (*name)
        path[at++] = *name++;
    path[at] = 0;
}

/* Reads a small /proc file whole into text (NUL-terminated); its length,
 * or -1 with errno. */
static long read_small(const char *path, char *text, size_t cap) {
    int fd = tarn__os_open(path, false);
    if (fd < 0) return -1;
    long len = 0, r;
    while ((size_t)len < cap - 1 && (r = tarn__os_read(fd, text + len, cap - 1 - (size_t)len)) > 0)
        len += r;
    tarn__os_close(fd);
    text[len] = 0;
    return len;
}

/* The text after "name:" and its blanks on a line of text, or NULL. */
static const char *field(const char *text, const char *name) {
    for (const char *line = text; *line;) {
        const char *a = line, *b = name;
        while (*b && *a == *b)
            a++, b++;
        if (!*b && *a == ':') {
            while (*++a == '\t' || *a == ' ') {
            }
            return a;
        }
        while (*line && *line++ != '\n') {
        }
    }
    return NULL;
}

/* True when the thread blocks sig: bit sig - 1 of the hex mask "SigBlk" in
 * its status. It will not answer, so the scan need not wait for it. */
static bool blocks_signal(int tid, int sig) {
    char path[64], text[4096];
    task_path(path, tid, "status");
    const char *mask = read_small(path, text, sizeof text) > 0 ? field(text, "SigBlk") : NULL;
    if (!mask) return false;
    size_t len = 0, digit = (size_t)(sig - 1) / 4; /* counted from the mask's end */
    while (tarn__scan_hex_digit(mask[len]) >= 0)
        len++;
    return digit < len && ((tarn__scan_hex_digit(mask[len - 1 - digit]) >> (sig - 1) % 4) & 1);
}

/* Adds and signals the thread unless it has a slot already; true when new. */
static bool add_thread(tarn__scan_world_t *w, int tid) {
    if (find_slot(w, tid)) return false;
    size_t n = atomic_load(&w->n);
    if (n == MAX_THREADS) return false;
    tarn__scan_thread_t *t = &w->t[n];
    t->tid = tid;
    atomic_store(&t->state, TARN__THREAD_SENT);
    atomic_store_explicit(&w->n, n + 1, memory_order_release);
    if (tarn__os_signal_thread(tid, w->sig) != 0)
        t->gone = true;
    else
        t->blocked = blocks_signal(tid, w->sig);
    return true;
}

/* One pass over /proc/self/task; 1 when a new thread was signaled, 0 when
 * none, -1 with errno. */
static int signal_new_threads(tarn__scan_world_t *w, int self) {
    int fd = tarn__os_open("/proc/self/task", true);
    if (fd < 0) return -1;
    int added = 0;
    _Alignas(8) char buf[4096];
    long len;
    while ((len = tarn__os_read_dir(fd, buf, sizeof buf)) > 0) {
        for (long at = 0; at < len;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + at);
            int tid = parse_tid(d->name);
            if (tid > 0 && tid != self && add_thread(w, tid)) added = 1;
            at += d->reclen;
        }
    }
    tarn__os_close(fd);
    return len < 0 ? -1 : added;
}

/* Waits until every signaled thread answered or wait_ms passed. */
static void wait_answers(tarn__scan_world_t *w, unsigned wait_ms) {
    uint32_t sent = 0;
    for (size_t i = 0; i < w->n; i++)
        sent += !w->t[i].gone && !w->t[i].blocked;
    uint64_t deadline = tarn__os_now_ms() + wait_ms;
    for (uint32_t got; (got = atomic_load(&answers)) < sent;) {
        uint64_t now = tarn__os_now_ms();
        if (now >= deadline) return;
        tarn__os_wait_word(&answers, got, (unsigned)(deadline - now));
    }
}

/* From /proc/self/task/TID/syscall, "NR ARGS... SP PC" for a thread blocked
 * in a system call, "running" otherwise: the stack pointer or 0. Marks the
 * thread gone when the file is missing. */
static void read_blocked_sp(tarn__scan_thread_t *t) {
    char path[64], text[256];
    task_path(path, t->tid, "syscall");
    long len = read_small(path, text, sizeof text);
    if (len < 0) {
        t->gone = errno == ENOENT || errno == ESRCH;
        return;
    }
    if (len == 0 || text[0] == 'r') return;
    const char *tok[16];
    int ntok = 0;
    for (long i = 0; i < len && ntok < 16; i++)
        if (text[i] == '0' && i + 1 < len && text[i + 1] == 'x' && (i == 0 || text[i - 1] == ' '))
            tok[ntok++] = text + i + 2;
    if (ntok < 2) return;
    uintptr_t sp = 0;
    for (const char *s = tok[ntok - 2]; tarn__scan_hex_digit(*s) >= 0; s++)
        sp = sp << 4 | (uintptr_t)tarn__scan_hex_digit(*s);
    t->whole_sp = sp;
}

int tarn__scan_stop(tarn__scan_world_t *w, int sig, unsigned wait_ms) {
    *w = (tarn__scan_world_t){.sig = sig, .mapped = MAX_THREADS * sizeof *w->t};
    _Static_assert(sizeof w->old_action >= 152, "room for a struct sigaction");
    tarn_assert(tarn__os_handler_size() <= sizeof w->old_action, "saved action fits");
    w->t = tarn__os_reserve(w->mapped, tarn__os_page_size());
    if (!w->t) return -1;
    atomic_store(&released, 0);
    atomic_store(&answers, 0);
    atomic_store(&stopping, w);
    if (tarn__os_set_handler(sig, on_stop, w->old_action) != 0) {
        atomic_store(&stopping, NULL);
        tarn__os_unmap(w->t, w->mapped);
        return -1;
    }
    w->keep_handler = !tarn__os_handler_is_custom(w->old_action);
    int self = tarn__os_gettid(), r = 1;
    for (int round = 0; r == 1 && round < 100; round++)
        r = signal_new_threads(w, self);
    if (r < 0) {
        int err = errno;
        tarn__scan_resume(w);
        errno = err;
        return -1;
    }
    wait_answers(w, wait_ms);
    for (size_t i = 0; i < w->n; i++) {
        tarn__scan_thread_t *t = &w->t[i];
        if (t->gone) continue;
        t->answered = atomic_load_explicit(&t->state, memory_order_acquire) != TARN__THREAD_SENT;
        if (!t->answered) read_blocked_sp(t);
    }
    return 0;
}

void tarn__scan_resume(tarn__scan_world_t *w) {
    atomic_store(&released, 1);
    tarn__os_wake_word(&released);
    atomic_store(&stopping, NULL);
    for (uint32_t n; (n = atomic_load(&inside)) != 0;)
        tarn__os_wait_word(&inside, n, 10);
    if (!w->keep_handler) tarn__os_restore_handler(w->sig, w->old_action);
    tarn__os_unmap(w->t, w->mapped);
    w->t = NULL;
}
