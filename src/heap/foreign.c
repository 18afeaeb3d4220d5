/* The foreign cache: small blocks a thread frees for other heaps, kept to
 * be handed out again by that thread (glibc's tcache does the like with any
 * chunk).
 *
 * A block of another heap's page that this thread frees stays here, if this
 * thread allocates its class itself, instead of going onto the page's
 * thread_free list (free.c). From the FOREIGN_FLIP-th block kept, the
 * class's direct slots point at the cache, so the fast path hands these out
 * before the thread's own pages' blocks; below that, the slow path takes
 * them before carving. A server whose threads free what others allocated
 * (larson: what the main thread set up, what the previous worker left) then
 * reuses that memory instead of leaving it on pages whose owner is idle or
 * gone. The block never leaves its page's used count, so no owner state is
 * touched: to the owner it is simply still in use.
 *
 * The cost: a cached block pins its page until this thread reuses it, exits
 * or calls tarn_collect(true), and no other thread can take it back
 * (malloc_trim elsewhere does not reach it; a fork child never sees what
 * other threads held). So a thread holds at most FOREIGN_MAX blocks a class
 * and FOREIGN_TOTAL in all: an idle one pins at most that many pages of
 * others' (16 MiB of 64 KiB pages at worst, when each block is the last one
 * in use in its page).
 *
 * Each cache is a tarn__page_t, so the fast path pops from it as from a
 * page: free is the list, used counts pops, pushed pushes. A class's
 * cache is switched on while its bit in h->direct_pinned is set: the
 * class's direct slots then point at the cache, and the page layer leaves
 * them there (kept as a bit, not derived from the direct table, which was
 * slower: docs/heap.md, "The foreign cache"). */
#include "heap/internal.h"

/* Whether class cls's direct slots point at its cache. */
static bool switched_on(const tarn__heap_t *h, unsigned cls) { return h->direct_pinned >> cls & 1; }

void tarn__foreign_switch(tarn__heap_t *h, unsigned cls, bool on) {
    tarn__page_t *f = &h->foreign[cls];
    if (!f->free) f->pushed = f->used = 0;
    if (on && f->free) {
        h->direct_pinned |= (uint32_t)1 << cls;
        tarn__direct_point(h, cls, f);
        return;
    }
    h->direct_pinned &= ~((uint32_t)1 << cls);
    tarn__direct_update(h, cls);
}

size_t tarn__foreign_held(const tarn__heap_t *h) {
    size_t held = 0;
    for (unsigned cls = 0; cls < TARN__DIRECT_CLASSES; cls++)
        held += h->foreign[cls].pushed - h->foreign[cls].used;
    return held;
}

/* Recounts the blocks h's caches hold (the fast path pops without
 * counting, so foreign_held only bounds them from above); whether that is
 * below FOREIGN_TOTAL. Out of line, as is the switch below, so that the
 * common path of tarn__foreign_keep needs no stack frame. */
static tarn__noinline bool foreign_recount(tarn__heap_t *h) {
    h->foreign_held = (uint32_t)tarn__foreign_held(h);
    return h->foreign_held < TARN__FOREIGN_TOTAL;
}

static tarn__noinline void foreign_switch_on(tarn__heap_t *h, unsigned cls) {
    tarn__foreign_switch(h, cls, true);
}

/* Keeps block b (checked and marked free) of another heap's live page pg
 * for h's own allocations of its class; false (b still to be freed) when h
 * does not allocate that class (no page of it queued, no cache of it going)
 * or holds enough. A second free of a block kept here finds it marked. */
bool tarn__foreign_keep(tarn__heap_t *h, tarn__page_t *pg, tarn__block_t *b) {
    unsigned cls = pg->cls;
    if (cls >= TARN__DIRECT_CLASSES) return false;
    tarn__page_t *f = &h->foreign[cls];
    if (!h->queues[cls].first && !f->free && !switched_on(h, cls)) return false;
    uint32_t held = f->pushed - f->used;
    if (held >= TARN__FOREIGN_MAX) return false;
    if (h->foreign_held >= TARN__FOREIGN_TOTAL && !foreign_recount(h)) return false;
    b->next = f->free;
    f->free = b;
    f->pushed++;
    h->foreign_held++;
    if (tarn__unlikely(held + 1 == TARN__FOREIGN_FLIP) && !switched_on(h, cls))
        foreign_switch_on(h, cls);
    return true;
}

/* A cached block of class cls for the slow path, or NULL. */
void *tarn__foreign_take(tarn__heap_t *h, unsigned cls) {
    if (cls >= TARN__DIRECT_CLASSES || !h->foreign[cls].free) return NULL;
    return tarn__page_pop(&h->foreign[cls]);
}

/* The fast path may have found the class's cache switched on but spent:
 * its slots go back to the class's front page. */
void tarn__foreign_spent(tarn__heap_t *h, unsigned cls) {
    if (cls < TARN__DIRECT_CLASSES && switched_on(h, cls) && !h->foreign[cls].free)
        tarn__foreign_switch(h, cls, false);
}

/* Gives every cached foreign block back to its owner. */
void tarn__foreign_flush(tarn__heap_t *h) {
    for (unsigned cls = 0; cls < TARN__DIRECT_CLASSES; cls++) {
        tarn__page_t *f = &h->foreign[cls];
        if (!f->free && !switched_on(h, cls)) continue; /* leaves a class never cached untouched */
        while (f->free) {
            tarn__block_t *b = f->free;
            f->free = b->next;
            tarn__segment_t *seg = tarn__segment_of(b);
            tarn__remote_push(seg, tarn__page_of(seg, b), b); /* still marked free */
        }
        tarn__foreign_switch(h, cls, false);
    }
    h->foreign_held = 0;
}
