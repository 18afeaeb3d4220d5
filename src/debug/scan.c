/* The leak scan: conservative marking from the roots, as Valgrind's
 * memcheck and LeakSanitizer do (contract and roots in scan.h).
 *
 * Every aligned word of a root is looked up, by binary search, in the
 * sorted block array. Marking runs in two phases over one worklist of
 * block indices, each block pushed at most once per phase, so the worklist
 * has room for n and never grows, and no recursion bounds the depth of a
 * chain (a list of a million nodes is a loop, not a million frames):
 *   1. from the roots and the ROOT blocks, a word equal to a block's start
 *      makes it REACHABLE (pushed, scanned in turn); a word inside it only
 *      notes INTERIOR;
 *   2. from each INTERIOR block not REACHABLE, any word inside an unmarked
 *      block makes that one INTERIOR too (memcheck's "possibly lost" spreads
 *      the same way).
 * Phase 2 cannot reach a REACHABLE block, so the two flags never meet at
 * the end (INTERIOR noted on a block later found REACHABLE is dropped).
 *
 * Order of the work, for the locks it must not wait on: the loader's
 * module list (dl_iterate_phdr, which takes the loader's lock) is read
 * before the other threads stop, since one of them may hold that lock;
 * /proc/self/maps is read after, so that it shows their stacks as they are. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>

#include "debug/scan_internal.h"

/* Root ranges of the loaded modules: address space reserved for this many,
 * committed as used (a process has a few hundred writable segments). */
#define MAX_SEGMENTS 65536
/* A mapping larger than this is not taken for a thread's stack when one is
 * guessed (glibc's default stack is 8 MiB): a huge anonymous mapping, such
 * as sanitizer shadow memory, is never read whole by a guess. */
#define MAX_GUESSED_STACK ((uintptr_t)256 << 20)
/* Above the thread pointer lies glibc's thread descriptor (2,304 bytes on
 * x86-64 in glibc 2.36), whose pointers (pthread_setspecific's tables, the
 * DTV) are roots. */
#define TCB_SPAN 4096
/* glibc puts a thread's descriptor this close to the top of its stack
 * mapping: the descriptor's size plus the static TLS alignment. */
#define TCB_SEARCH (16 << 10)
/* Static TLS size to assume when the loader cannot say. */
#define DEFAULT_STATIC_TLS (64 << 10)

typedef uintptr_t __attribute__((may_alias)) word_t;

typedef struct range {
    uintptr_t start, end;
} range_t;

typedef struct scan {
    tarn__scan_block_t *b;
    size_t n;
    uintptr_t lo, span; /* every block lies in [lo, lo + span) */
    size_t *work, top, work_mapped;
    bool interior_phase;
    tarn__scan_maps_t maps;
    range_t *segments;
    size_t nsegments;
    size_t static_tls;
    const void *skip_module;
    tarn__scan_stats_t st;
} scan_t;

/* The block holding v, counting v == start for a block of size 0, or NULL. */
static inline tarn__scan_block_t *block_at(const scan_t *s, uintptr_t v) {
    if (v - s->lo >= s->span) return NULL;
    size_t lo = 0, hi = s->n; /* first block starting after v */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->b[mid].start <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return NULL;
    tarn__scan_block_t *b = &s->b[lo - 1];
    return v - b->start < b->size || v == b->start ? b : NULL;
}

static inline void push(scan_t *s, tarn__scan_block_t *b) {
    tarn_assert(s->top < s->n, "each block is pushed at most once per phase");
    s->work[s->top++] = (size_t)(b - s->b);
}

/* What one word found: see the two phases above. */
static inline void found(scan_t *s, uintptr_t v) {
    tarn__scan_block_t *b = block_at(s, v);
    if (!b) return;
    if (!s->interior_phase) {
        if (v != b->start)
            b->flags |= TARN__SCAN_INTERIOR;
        else if (!(b->flags & TARN__SCAN_REACHABLE)) {
            b->flags |= TARN__SCAN_REACHABLE;
            push(s, b);
        }
    } else if (!(b->flags & (TARN__SCAN_REACHABLE | TARN__SCAN_INTERIOR))) {
        b->flags |= TARN__SCAN_INTERIOR;
        push(s, b);
    }
}

/* Reads words the sanitizers would call out of bounds or racy: other
 * threads' stacks, red zones, whole mappings. [from, to) is aligned and
 * readable. */
__attribute__((no_sanitize("address", "thread"))) static void scan_words(scan_t *s, uintptr_t from,
                                                                         uintptr_t to) {
    for (const word_t *p = (const word_t *)from; p < (const word_t *)to; p++)
        found(s, *p);
}

/* Scans the readable parts of [from, to), word-aligned; the bytes read are
 * added to *bytes. */
static void scan_range(scan_t *s, uintptr_t from, uintptr_t to, size_t *bytes) {
    from = tarn__align_up(from, sizeof(word_t));
    to &= ~(uintptr_t)(sizeof(word_t) - 1);
    while (from < to) {
        const tarn__scan_map_t *m = tarn__scan_maps_from(&s->maps, from);
        if (!m || m->start >= to) return;
        uintptr_t a = m->start > from ? m->start : from, z = m->end < to ? m->end : to;
        if ((m->flags & TARN__MAP_READ) && !(m->flags & TARN__MAP_KERNEL)) {
            scan_words(s, a, z);
            *bytes += z - a;
        }
        from = z;
    }
}

/* Scans the blocks on the worklist, and those they push, until none is left. */
static void drain(scan_t *s) {
    while (s->top) {
        tarn__scan_block_t *b = &s->b[s->work[--s->top]];
        scan_range(s, b->start, b->start + b->size, &s->st.block_bytes);
    }
}

/* ---- roots: loaded modules --------------------------------------------- */

static bool module_holds(const struct dl_phdr_info *info, const void *addr) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (uintptr_t)addr - start < ph->p_memsz) return true;
    }
    return false;
}

/* Keeps each writable PT_LOAD segment whole, its RELRO part included: the
 * loader writes that part before making it read-only, and LeakSanitizer
 * scans it too; it holds link-time addresses, a few KiB, and costs nothing
 * to read, while leaving it out would need PT_GNU_RELRO arithmetic for no
 * block found or lost. */
static int add_module(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    scan_t *s = arg;
    if (s->skip_module && module_holds(info, s->skip_module)) return 0;
    s->st.modules++;
    for (int i = 0; i < info->dlpi_phnum && s->nsegments < MAX_SEGMENTS; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        s->segments[s->nsegments++] = (range_t){start, start + ph->p_memsz};
    }
    return 0;
}

/* The loader's static TLS size, from glibc's private hook (LeakSanitizer
 * asks it the same way); the default when it is missing. */
static size_t static_tls_size(void) {
    void (*get)(size_t *, size_t *) =
        (void (*)(size_t *, size_t *))(uintptr_t)dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    size_t size = 0, align = 0;
    if (get) get(&size, &align);
    return size ? size : DEFAULT_STATIC_TLS;
}

/* Before the threads stop: the module list and the TLS size, both from the
 * loader, which takes locks. */
static int read_loader(scan_t *s) {
    s->segments = tarn__os_reserve(MAX_SEGMENTS * sizeof *s->segments, tarn__os_page_size());
    if (!s->segments) return -1;
    dl_iterate_phdr(add_module, s);
    s->static_tls = static_tls_size();
    return 0;
}

/* ---- roots: threads ----------------------------------------------------- */

/* A thread's TLS when its thread pointer lies outside the stack range just
 * scanned (glibc's main thread: the loader allocated it elsewhere), kept
 * inside the mapping that holds it so no neighbour is read. */
static void scan_tls(scan_t *s, uintptr_t tp, uintptr_t stack_from, uintptr_t stack_to) {
    if (tp >= stack_from && tp < stack_to) return;
    const tarn__scan_map_t *m = tarn__scan_maps_find(&s->maps, tp);
    if (!m) return;
    uintptr_t from = tp - m->start > s->static_tls ? tp - s->static_tls : m->start;
    uintptr_t to = m->end - tp > TCB_SPAN ? tp + TCB_SPAN : m->end;
    scan_range(s, from, to, &s->st.root_bytes);
}

/* A stack from sp to the end of the mapping holding it; returns that end. */
static uintptr_t scan_stack(scan_t *s, uintptr_t sp) {
    const tarn__scan_map_t *m = tarn__scan_maps_find(&s->maps, sp);
    if (!m) return sp;
    scan_range(s, sp, m->end, &s->st.root_bytes);
    return m->end;
}

/* True when some block overlaps [start, end): ends are sorted too, since
 * blocks do not overlap. */
static bool holds_block(const scan_t *s, uintptr_t start, uintptr_t end) {
    size_t lo = 0, hi = s->n; /* first block ending after start */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->b[mid].start + s->b[mid].size <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->b[lo].start < end;
}

/* True when one of the threads that answered has its stack in m. */
static bool claimed(const tarn__scan_world_t *w, const tarn__scan_map_t *m) {
    for (size_t i = 0; i < w->n; i++) {
        const tarn__scan_thread_t *t = &w->t[i];
        uintptr_t sp = t->answered ? t->sp : t->whole_sp;
        if (sp >= m->start && sp < m->end) return true;
    }
    return false;
}

/* True when m holds a thread descriptor: a TCB whose first word (the TCB
 * itself) and third (its `self`) both hold its own address, the thread
 * pointer. A table of the program's or of the debug library's will not
 * look like that. glibc puts one at the top of each thread's stack
 * mapping, and the main thread's anywhere in the small mapping the loader
 * allocated it from; so the top TCB_SEARCH bytes of m are searched, or all
 * of m when it is no bigger than 4 * TCB_SEARCH. */
__attribute__((no_sanitize("address", "thread"))) static bool holds_tcb(const tarn__scan_map_t *m) {
    uintptr_t size = m->end - m->start;
    uintptr_t from = size > 4 * TCB_SEARCH ? m->end - TCB_SEARCH : m->start;
    for (const word_t *p = (const word_t *)from; p + 3 <= (const word_t *)m->end; p++)
        if (p[0] == (uintptr_t)p && p[2] == (uintptr_t)p) return true;
    return false;
}

/* For threads that neither answered nor sit in a system call: every
 * mapping that is a thread's stack (anonymous, read-write, with a thread
 * descriptor at its top; or [stack], the main thread's) and is no one
 * else's, holds no block and is not huge, scanned whole. Errs towards
 * reachable. */
static void scan_stack_guesses(scan_t *s, const tarn__scan_world_t *w, uintptr_t own_stack) {
    uint32_t rw = TARN__MAP_READ | TARN__MAP_WRITE;
    for (size_t i = 0; i < s->maps.n; i++) {
        const tarn__scan_map_t *m = &s->maps.v[i];
        if ((m->flags & rw) != rw || !(m->flags & TARN__MAP_ANON)) continue;
        if (m->end - m->start > MAX_GUESSED_STACK || own_stack - m->start < m->end - m->start)
            continue;
        if (claimed(w, m) || holds_block(s, m->start, m->end)) continue;
        if (!(m->flags & TARN__MAP_STACK) && !holds_tcb(m)) continue;
        scan_range(s, m->start, m->end, &s->st.root_bytes);
    }
}

/* Stacks, registers and TLS of the other threads. */
static void scan_threads(scan_t *s, const tarn__scan_world_t *w, uintptr_t own_stack) {
    bool guess = false;
    for (size_t i = 0; i < w->n; i++) {
        const tarn__scan_thread_t *t = &w->t[i];
        if (t->gone) continue;
        s->st.threads++;
        if (t->answered) {
            uintptr_t end = scan_stack(s, t->sp);
            scan_range(s, (uintptr_t)&t->regs, (uintptr_t)(&t->regs + 1), &s->st.root_bytes);
            scan_tls(s, t->tp, t->sp, end);
            continue;
        }
        s->st.threads_whole++;
        const tarn__scan_map_t *m =
            t->whole_sp ? tarn__scan_maps_find(&s->maps, t->whole_sp) : NULL;
        if (m) scan_range(s, m->start, m->end, &s->st.root_bytes);
        /* Guessing also finds the TLS of a main thread that did not answer:
         * its descriptor, away from [stack], marks that mapping too. */
        guess |= !m || (m->flags & TARN__MAP_STACK);
    }
    if (guess) scan_stack_guesses(s, w, own_stack);
}

/* ---- the scan ----------------------------------------------------------- */

/* Blocks sorted by start, distinct starts, no overlap; flags reset. */
static bool prepare_blocks(tarn__scan_block_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        b[i].flags &= TARN__SCAN_ROOT;
        if (b[i].start + b[i].size < b[i].start) return false;
        if (i + 1 < n && (b[i + 1].start <= b[i].start || b[i].start + b[i].size > b[i + 1].start))
            return false;
    }
    return true;
}

/* Every root, then both phases; the other threads are stopped. */
static void mark(scan_t *s, const tarn__scan_world_t *w, uintptr_t here) {
    for (size_t i = 0; i < s->n; i++)
        if (s->b[i].flags & TARN__SCAN_ROOT) {
            s->b[i].flags |= TARN__SCAN_REACHABLE;
            push(s, &s->b[i]);
        }
    for (size_t i = 0; i < s->nsegments; i++)
        scan_range(s, s->segments[i].start, s->segments[i].end, &s->st.root_bytes);
    s->st.threads = 1;
    uintptr_t own_end = scan_stack(s, here);
    scan_tls(s, tarn__scan_thread_pointer(), here, own_end);
    scan_threads(s, w, here);
    drain(s);
    s->interior_phase = true;
    for (size_t i = 0; i < s->n; i++)
        if ((s->b[i].flags & (TARN__SCAN_REACHABLE | TARN__SCAN_INTERIOR)) == TARN__SCAN_INTERIOR)
            push(s, &s->b[i]);
    drain(s);
    for (size_t i = 0; i < s->n; i++)
        if (s->b[i].flags & TARN__SCAN_REACHABLE) s->b[i].flags &= ~(uint32_t)TARN__SCAN_INTERIOR;
}

/* Stops the world, reads the maps, marks, resumes. */
static int stop_and_mark(scan_t *s, const tarn__scan_options_t *opt, uintptr_t here) {
    tarn__scan_world_t w;
    if (tarn__scan_stop(&w, opt->signal ? opt->signal : TARN__SCAN_SIGNAL,
                        opt->wait_ms ? opt->wait_ms : TARN__SCAN_WAIT_MS) != 0)
        return -1;
    int r = tarn__scan_maps_read(&s->maps);
    int err = errno;
    if (r == 0) {
        mark(s, &w, here);
        tarn__scan_maps_free(&s->maps);
    }
    tarn__scan_resume(&w);
    errno = err;
    return r;
}

/* `here`, this function's frame address, lies above its own locals (which
 * hold block addresses: the scan's state) and below its caller's frame. */
static tarn__noinline int scan_marked(tarn__scan_block_t *blocks, size_t n,
                                      const tarn__scan_options_t *opt) {
    static const tarn__scan_options_t defaults;
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (!opt) opt = &defaults;
    if (!prepare_blocks(blocks, n)) {
        errno = EINVAL;
        return -1;
    }
    if (!n) return 0;
    scan_t s = {.b = blocks, .n = n, .skip_module = opt->skip_module};
    s.lo = blocks[0].start;
    s.span = blocks[n - 1].start + (blocks[n - 1].size ? blocks[n - 1].size : 1) - s.lo;
    s.work_mapped = n * sizeof *s.work;
    s.work = tarn__os_map(s.work_mapped);
    if (!s.work) return -1;
    int r = read_loader(&s);
    if (r == 0) r = stop_and_mark(&s, opt, here);
    int err = errno;
    tarn__os_unmap(s.segments, MAX_SEGMENTS * sizeof *s.segments);
    tarn__os_unmap(s.work, s.work_mapped);
    if (opt->stats) *opt->stats = s.st;
    errno = err;
    return r;
}

/* __builtin_unwind_init spills every callee-saved register into this frame,
 * which scan_marked's scan of the calling thread's stack starts below: the
 * caller's registers are scanned with its frames, and none of the scan's
 * own frames, which hold block addresses of their own, are. */
tarn__noinline int tarn__scan_mark(tarn__scan_block_t *blocks, size_t n,
                                   const tarn__scan_options_t *opt) {
    __builtin_unwind_init();
    int saved = errno;
    int r = scan_marked(blocks, n, opt);
    if (r == 0) errno = saved;
    __asm__ volatile("" ::: "memory"); /* no tail call: this frame must outlive the scan */
    return r;
}
