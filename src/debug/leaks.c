/* The leak report at exit: the live blocks, classified by the leak scan
 * (scan.h) as Valgrind's memcheck does, the definitely lost ones grouped by
 * allocation stack, largest total first.
 *
 * The caller holds every registry stripe, so the set of live blocks cannot
 * change while it is copied and scanned. The arrays come from the OS: a
 * program with millions of blocks must not run the scratch memory out.
 * Blocks the dynamic loader allocated (its TLS blocks and tables, which it
 * points to only in ways a scan does not see) are roots, as LeakSanitizer
 * treats them. */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "debug/depot.h"
#include "debug/internal.h"
#include "debug/scan.h"

#define TOP 20

typedef struct group {
    uint32_t stack;
    uint32_t flags;
    size_t blocks;
    size_t bytes;
} group_t;

typedef struct live {
    tarn__scan_block_t *blocks;
    uint32_t *stacks; /* allocation stack of blocks[i], once sorted */
    size_t n, cap;
} live_t;

static void count_live(tarn__dblock_t *b, void *arg) {
    if (b->magic == TARN__DBG_LIVE_MAGIC) ((live_t *)arg)->cap++;
}

static void copy_live(tarn__dblock_t *b, void *arg) {
    live_t *l = arg;
    if (b->magic != TARN__DBG_LIVE_MAGIC || l->n == l->cap) return;
    l->blocks[l->n++] = (tarn__scan_block_t){(uintptr_t)tarn__dblock_user(b), b->size, 0};
}

static int by_start(const void *a, const void *b) {
    uintptr_t x = ((const tarn__scan_block_t *)a)->start,
              y = ((const tarn__scan_block_t *)b)->start;
    return (x > y) - (x < y);
}

/* True when the innermost frame of stack id is in the dynamic loader. */
static bool from_loader(uint32_t id) {
    const uintptr_t *pcs;
    Dl_info info;
    if (!tarn__depot_get(id, &pcs) || !dladdr((void *)(pcs[0] - 1), &info) || !info.dli_fname)
        return false;
    return strstr(info.dli_fname, "/ld-linux") != NULL;
}

/* Copies the live blocks, sorted by start, with the loader's as roots. */
static int collect(live_t *l) {
    tarn__registry_each_locked(count_live, l);
    size_t bytes = l->cap * (sizeof *l->blocks + sizeof *l->stacks);
    if (!l->cap) return 0;
    if (!(l->blocks = tarn__os_map(bytes))) return -1;
    l->stacks = (uint32_t *)(l->blocks + l->cap);
    tarn__registry_each_locked(copy_live, l);
    qsort(l->blocks, l->n, sizeof *l->blocks, by_start);
    uint32_t last = 0;
    bool last_root = false;
    for (size_t i = 0; i < l->n; i++) {
        uint32_t id = tarn__dblock_of((void *)l->blocks[i].start)->alloc_stack;
        l->stacks[i] = id;
        if (id != last) last_root = from_loader(last = id);
        if (last_root) l->blocks[i].flags = TARN__SCAN_ROOT;
    }
    return 0;
}

static int by_stack(const void *a, const void *b) {
    const group_t *x = a, *y = b;
    if (x->flags != y->flags) return (x->flags > y->flags) - (x->flags < y->flags);
    return (x->stack > y->stack) - (x->stack < y->stack);
}

static int by_bytes(const void *a, const void *b) {
    const group_t *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

/* One group per (class, stack), largest first within each class; the
 * groups overwrite g, which holds one entry per block on entry. */
static size_t make_groups(group_t *g, size_t n) {
    qsort(g, n, sizeof *g, by_stack);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && g[k - 1].stack == g[i].stack && g[k - 1].flags == g[i].flags) {
            g[k - 1].blocks++;
            g[k - 1].bytes += g[i].bytes;
        } else {
            g[k++] = g[i];
        }
    }
    qsort(g, k, sizeof *g, by_bytes);
    return k;
}

static const char *class_name(uint32_t flags) {
    return flags & TARN__SCAN_REACHABLE  ? "still reachable"
           : flags & TARN__SCAN_INTERIOR ? "possibly lost"
                                         : "definitely lost";
}

/* Prints the groups of one class (top ones, or all); returns its bytes. */
static size_t print_class(tarn__out_t *o, const group_t *g, size_t k, uint32_t flags, bool list,
                          size_t limit) {
    size_t bytes = 0, blocks = 0, shown = 0, places = 0;
    for (size_t i = 0; i < k; i++) {
        if ((g[i].flags & (TARN__SCAN_REACHABLE | TARN__SCAN_INTERIOR)) != flags) continue;
        bytes += g[i].bytes;
        blocks += g[i].blocks;
        places++;
        if (!list || shown == limit) continue;
        shown++;
        tarn__out_printf(o, "tarn: %zu bytes in %zu block%s %s, allocated at:\n", g[i].bytes,
                         g[i].blocks, g[i].blocks == 1 ? "" : "s", class_name(flags));
        tarn__stack_print(o, g[i].stack, "    ");
    }
    if (list && shown < places)
        tarn__out_printf(o, "tarn: ... and %zu more places\n", places - shown);
    tarn__out_printf(o, "tarn: %s: %zu bytes in %zu block%s (%zu place%s)\n", class_name(flags),
                     bytes, blocks, blocks == 1 ? "" : "s", places, places == 1 ? "" : "s");
    return bytes;
}

size_t tarn__leaks_report(tarn__out_t *o, bool all) {
    live_t l = {0};
    if (collect(&l) != 0) {
        tarn__out_printf(o, "tarn: leak report: no memory for the list of blocks\n");
        return TARN__LEAKS_FAILED;
    }
    tarn__scan_stats_t stats = {0};
    tarn__scan_options_t opt = {.skip_module = (const void *)tarn__leaks_report, .stats = &stats};
    if (l.n && tarn__scan_mark(l.blocks, l.n, &opt) != 0) {
        tarn__out_printf(o, "tarn: leak report: the scan failed (%s)\n", strerror(errno));
        tarn__os_unmap(l.blocks, l.cap * (sizeof *l.blocks + sizeof *l.stacks));
        return TARN__LEAKS_FAILED;
    }
    if (stats.threads_whole)
        tarn__out_printf(o,
                         "tarn: %zu of %zu threads did not stop for the leak scan; their whole "
                         "stacks were scanned\n",
                         stats.threads_whole, stats.threads);
    group_t *g = l.n ? tarn__os_map(l.n * sizeof *g) : NULL;
    size_t lost = 0;
    if (l.n && !g) {
        tarn__out_printf(o, "tarn: leak report: no memory to group the blocks\n");
        lost = TARN__LEAKS_FAILED;
    } else {
        for (size_t i = 0; i < l.n; i++)
            g[i] = (group_t){l.stacks[i], l.blocks[i].flags & ~(uint32_t)TARN__SCAN_ROOT, 1,
                             l.blocks[i].size};
        for (size_t i = 0; i < l.n; i++)
            if (l.blocks[i].flags & TARN__SCAN_ROOT) g[i].flags = TARN__SCAN_REACHABLE;
        size_t k = make_groups(g, l.n);
        lost = print_class(o, g, k, 0, true, TOP);
        print_class(o, g, k, TARN__SCAN_INTERIOR, true, all ? SIZE_MAX : TOP);
        print_class(o, g, k, TARN__SCAN_REACHABLE, all, SIZE_MAX);
        tarn__os_unmap(g, l.n * sizeof *g);
    }
    if (l.cap) tarn__os_unmap(l.blocks, l.cap * (sizeof *l.blocks + sizeof *l.stacks));
    return lost;
}
