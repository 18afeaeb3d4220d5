/* The checked calls: malloc, free, realloc and malloc_usable_size of
 * libtarn-debug.so, over the heap's public calls.
 *
 * Every block gets a header (its size, state and the depot ids of its
 * allocation and free stacks) and, with `check`, red zones of canary bytes
 * on both sides and a fill; a freed block keeps its header, is filled and
 * waits in the quarantine (quarantine.c). A pointer is looked up in the
 * registry before anything is read through it, so a pointer the layer never
 * handed out is reported without being touched. A state change (live to
 * freed) happens under the block's registry lock, so two threads freeing
 * one block report one double free. Reports are written with no registry
 * lock held. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <string.h>

#include "debug/depot.h"
#include "debug/internal.h"

tarn__dbg_config_t tarn__dbg;

/* ---- stacks -------------------------------------------------------------
 * The frames of this library (malloc, the layer) are dropped: the address
 * range of its code is found once, from the program headers. */
static uintptr_t self_lo, self_hi;

static int find_self(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    uintptr_t me = (uintptr_t)arg;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && me >= lo && me < lo + ph->p_memsz) {
            self_lo = lo;
            self_hi = lo + ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

uint32_t tarn__dbg_capture(void) {
    if (!tarn__dbg.frames) return 0;
    uintptr_t pcs[TARN__DEPOT_MAX_FRAMES + 16];
    int saved = errno;
    tarn__scratch_enter(); /* libunwind may allocate on its first calls */
    if (!self_hi) dl_iterate_phdr(find_self, (void *)(uintptr_t)tarn__dbg_capture);
    unsigned n = tarn__stack_unwind(pcs, tarn__dbg.frames + 16);
    tarn__scratch_leave();
    unsigned skip = 0;
    while (skip < n && pcs[skip] >= self_lo && pcs[skip] < self_hi)
        skip++;
    n -= skip;
    errno = saved;
    return tarn__depot_intern(pcs + skip, n < tarn__dbg.frames ? n : tarn__dbg.frames);
}

/* ---- what a bad pointer is ---------------------------------------------- */
typedef struct found {
    tarn__dblock_t copy; /* the header of the block holding it, if any */
    unsigned char *user;
} found_t;

static bool on_own_stack(const void *p) {
    pthread_attr_t attr;
    void *lo;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
    int rc = pthread_attr_getstack(&attr, &lo, &size);
    pthread_attr_destroy(&attr);
    return rc == 0 && (uintptr_t)p >= (uintptr_t)lo && (uintptr_t)p < (uintptr_t)lo + size;
}

/* Says where p points, for a pointer the registry does not know: into a
 * block (interior or red zone), the thread's stack, a module's data, or
 * nowhere the layer knows. Runs inside a report. */
static void describe(tarn__out_t *o, const void *p, const found_t *f) {
    if (f->user) {
        long off = (long)((const unsigned char *)p - f->user);
        tarn__out_printf(o, "  %p is %ld byte%s %s %s block %p (%zu bytes)\n", p,
                         off < 0 ? -off : off, (off == 1 || off == -1) ? "" : "s",
                         off < 0 ? "before" : "inside",
                         f->copy.magic == TARN__DBG_FREED_MAGIC ? "the freed" : "the",
                         (void *)f->user, (size_t)f->copy.size);
        tarn__out_printf(o, "  that block was allocated at:\n");
        tarn__stack_print(o, f->copy.alloc_stack, "    ");
        if (f->copy.magic == TARN__DBG_FREED_MAGIC) {
            tarn__out_printf(o, "  and freed at:\n");
            tarn__stack_print(o, f->copy.free_stack, "    ");
        }
        return;
    }
    Dl_info info;
    if (on_own_stack(p))
        tarn__out_printf(o, "  %p is on this thread's stack\n", p);
    else if (dladdr(p, &info) && info.dli_fname) {
        tarn__out_printf(o, "  %p is in the static data of %s", p,
                         info.dli_fname[0] ? info.dli_fname : "the program");
        tarn__out_printf(o, " (");
        if (!tarn__symbol_print(o, (uintptr_t)p)) tarn__out_printf(o, "no symbol");
        tarn__out_printf(o, ")\n");
    } else
        tarn__out_printf(o, "  %p was not allocated by malloc (or was freed long ago)\n", p);
}

static void report_invalid(tarn__bug_t kind, const void *p, uint32_t here) {
    found_t f = {0};
    tarn__registry_lock_all();
    tarn__dblock_t *b = tarn__registry_containing_locked(p);
    if (b) {
        f.copy = *b;
        f.user = tarn__dblock_user(b);
    }
    tarn__registry_unlock_all();
    tarn__out_t *o = tarn__report_begin(kind, tarn__report_key(here, f.copy.alloc_stack));
    if (!o) return;
    tarn__out_printf(o, "tarn: %s: %p\n", tarn__bug_name(kind), p);
    tarn__out_printf(o, "  called at:\n");
    tarn__stack_print(o, here, "    ");
    describe(o, p, &f);
    tarn__report_end(o);
}

/* A call on a block already freed: this call's, the free's and the
 * allocation's stacks. */
static void report_freed(tarn__bug_t kind, const void *p, const tarn__dblock_t *copy,
                         uint32_t here) {
    tarn__out_t *o = tarn__report_begin(kind, tarn__report_key(here, copy->alloc_stack));
    if (!o) return;
    tarn__out_printf(o, "tarn: %s: %p (%zu bytes)\n", tarn__bug_name(kind), p, (size_t)copy->size);
    tarn__out_printf(o, "  %s at:\n", kind == TARN__BUG_DOUBLE_FREE ? "freed again" : "called");
    tarn__stack_print(o, here, "    ");
    tarn__out_printf(o, "  first freed at:\n");
    tarn__stack_print(o, copy->free_stack, "    ");
    tarn__out_printf(o, "  allocated at:\n");
    tarn__stack_print(o, copy->alloc_stack, "    ");
    tarn__report_end(o);
}

/* A red zone found changed (at free, realloc or exit). */
static void report_canary(const void *p, const tarn__dblock_t *copy, long at, uint32_t here) {
    tarn__bug_t kind = at < 0 ? TARN__BUG_UNDERFLOW : TARN__BUG_OVERFLOW;
    tarn__out_t *o = tarn__report_begin(kind, tarn__report_key(here, copy->alloc_stack));
    if (!o) return;
    tarn__out_printf(o, "tarn: %s: byte %ld of block %p (%zu bytes) overwritten\n",
                     tarn__bug_name(kind), at, p, (size_t)copy->size);
    tarn__out_printf(o, "  found at:\n");
    if (here)
        tarn__stack_print(o, here, "    ");
    else
        tarn__out_printf(o, "    exit\n");
    tarn__out_printf(o, "  allocated at:\n");
    tarn__stack_print(o, copy->alloc_stack, "    ");
    tarn__report_end(o);
}

static void report_header(const void *p, uint32_t here) {
    tarn__out_t *o = tarn__report_begin(TARN__BUG_HEADER, tarn__report_key(here, 0));
    if (!o) return;
    tarn__out_printf(o, "tarn: %s: block %p (an underflow past its red zone); the block is kept\n",
                     tarn__bug_name(TARN__BUG_HEADER), p);
    tarn__out_printf(o, "  found at:\n");
    if (here)
        tarn__stack_print(o, here, "    ");
    else
        tarn__out_printf(o, "    exit\n");
    tarn__report_end(o);
}

/* ---- the calls ----------------------------------------------------------- */
void *tarn__dbg_alloc(size_t size, size_t align, bool zero) {
    size_t lead = align <= TARN__DBG_LEAD ? TARN__DBG_LEAD : align;
    if (size > SIZE_MAX / 2 || lead > UINT32_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    size_t total = lead + size + tarn__dblock_rear(size);
    unsigned char *raw = align <= 16 ? tarn_malloc(total) : tarn_memalign(align, total);
    if (!raw) return NULL;
    unsigned char *user = raw + lead;
    tarn__dblock_t *b = tarn__dblock_of(user);
    int fill = zero ? 0 : tarn__dbg.check ? TARN__DBG_FRESH : -1;
    tarn__dblock_arm(b, size, (uint32_t)lead, fill, tarn__dbg.check);
    b->alloc_stack = tarn__dbg_capture();
    tarn__stripe_t *s = tarn__registry_lock(user);
    int rc = tarn__registry_add_locked(s, user);
    tarn__registry_unlock(s);
    if (rc != 0) {
        tarn_free(raw);
        errno = ENOMEM;
        return NULL;
    }
    return user;
}

/* Looks p up and, when it is a live block, marks it freed (keeping it
 * registered only with check, for the quarantine). Returns the block, or
 * NULL after reporting what p is instead. */
static tarn__dblock_t *take(void *p, uint32_t here, tarn__bug_t freed_kind,
                            tarn__bug_t invalid_kind) {
    tarn__stripe_t *s = tarn__registry_lock(p);
    tarn__dblock_t *b = tarn__registry_find_locked(s, p);
    tarn__dblock_t copy;
    if (b && b->magic == TARN__DBG_LIVE_MAGIC) {
        b->magic = TARN__DBG_FREED_MAGIC;
        b->free_stack = here;
        if (!tarn__dbg.check) tarn__registry_remove_locked(s, p);
        tarn__registry_unlock(s);
        return b;
    }
    if (b) copy = *b;
    tarn__registry_unlock(s);
    if (!here) here = tarn__dbg_capture(); /* a free without check captured none */
    if (!b)
        report_invalid(invalid_kind, p, here);
    else if (copy.magic == TARN__DBG_FREED_MAGIC)
        report_freed(freed_kind, p, &copy, here);
    else
        report_header(p, here);
    return NULL;
}

/* Gives a block taken by take() back: verified, filled and quarantined with
 * check, else straight to the heap. */
static void release(tarn__dblock_t *b, uint32_t here) {
    unsigned char *user = tarn__dblock_user(b);
    if (!tarn__dbg.check) {
        tarn_free(user - b->offset);
        return;
    }
    long at;
    if (tarn__dblock_bad_canary(b, &at)) report_canary(user, b, at, here);
    memset(user, TARN__DBG_FREED, b->size);
    tarn__quarantine_push(b);
}

/* Without check a freed block is gone at once: nothing will show its free
 * stack, so none is captured (it is half the cost of a leaks-only run). */
void tarn__dbg_free(void *p) {
    uint32_t here = tarn__dbg.check ? tarn__dbg_capture() : 0;
    tarn__dblock_t *b = take(p, here, TARN__BUG_DOUBLE_FREE, TARN__BUG_INVALID_FREE);
    if (b) release(b, here);
}

/* Without check, a block whose heap block still holds the new size keeps
 * it: only its recorded size and stack change (the registry is keyed by
 * the address, which stays). Anything else takes the general path below,
 * which registers the new block before the old one goes, so a failure
 * leaves the caller's block as it was. */
static bool resize_in_place(tarn__dblock_t *b, size_t size) {
    unsigned char *user = tarn__dblock_user(b);
    if (size > SIZE_MAX / 2 ||
        tarn_usable_size(user - TARN__DBG_LEAD) < TARN__DBG_LEAD + size + tarn__dblock_rear(size))
        return false;
    b->size = size;
    b->alloc_stack = tarn__dbg_capture();
    return true;
}

void *tarn__dbg_realloc(void *p, size_t size) {
    tarn__stripe_t *s = tarn__registry_lock(p);
    tarn__dblock_t *b = tarn__registry_find_locked(s, p);
    bool live = b && b->magic == TARN__DBG_LIVE_MAGIC;
    size_t old = live ? b->size : 0;
    tarn__registry_unlock(s);
    if (live && !tarn__dbg.check && b->offset == TARN__DBG_LEAD && resize_in_place(b, size))
        return p;
    uint32_t here = tarn__dbg_capture();
    if (!live) {
        take(p, here, TARN__BUG_FREED_REALLOC, TARN__BUG_INVALID_REALLOC);
        errno = EINVAL;
        return NULL;
    }
    /* With check, always a new block, so a stale pointer to the old one
     * finds it freed. */
    unsigned char *q = tarn__dbg_alloc(size, 16, false);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    b = take(p, here, TARN__BUG_DOUBLE_FREE, TARN__BUG_INVALID_FREE);
    if (b) release(b, here);
    return q;
}

size_t tarn__dbg_usable(void *p) {
    tarn__stripe_t *s = tarn__registry_lock(p);
    tarn__dblock_t *b = tarn__registry_find_locked(s, p);
    bool live = b && b->magic == TARN__DBG_LIVE_MAGIC;
    size_t size = live ? b->size : 0;
    tarn__dblock_t copy;
    if (b) copy = *b;
    tarn__registry_unlock(s);
    if (live) return size;
    uint32_t here = tarn__dbg_capture();
    if (!b)
        report_invalid(TARN__BUG_INVALID_USABLE, p, here);
    else if (copy.magic == TARN__DBG_FREED_MAGIC)
        report_freed(TARN__BUG_FREED_USABLE, p, &copy, here);
    else
        report_header(p, here);
    return 0;
}

/* ---- at exit --------------------------------------------------------------- */
static void verify_live(tarn__dblock_t *b, void *arg) {
    (void)arg;
    long at;
    if (b->magic == TARN__DBG_LIVE_MAGIC && tarn__dblock_bad_canary(b, &at))
        report_canary(tarn__dblock_user(b), b, at, 0);
    else if (b->magic != TARN__DBG_LIVE_MAGIC && b->magic != TARN__DBG_FREED_MAGIC)
        report_header(tarn__dblock_user(b), 0);
}

void tarn__dbg_verify_all(void) {
    tarn__registry_each_locked(verify_live, NULL);
    tarn__quarantine_verify();
}
