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
 * page: free is the list, used counts pops, capacity pushes; `dirty` says
 * the direct slots point at it (kept, not derived from the direct table:
 * deriving it on every foreign free and slow-path malloc made larson 10%
 * slower, median of 15). */
#include "heap/internal.h"

void tarn__foreign_switch(tarn__heap_t *h, unsigned cls, bool on) {
    tarn__page_t *f = &h->foreign[cls];
    if (!f->free) f->capacity = f->used = 0;
    f->dirty = on && f->free;
    tarn__direct_update(h, cls);
}

size_t tarn__foreign_held(const tarn__heap_t *h) {
    size_t held = 0;
    for (unsigned cls = 0; cls < TARN__DIRECT_CLASSES; cls++)
        held += h->foreign[cls].capacity - h->foreign[cls].used;
    return held;
}

/* Whether h's foreign caches hold fewer than FOREIGN_TOTAL blocks. The fast
 * path pops without counting, so foreign_held only bounds them from above;
 * it is recounted when it reaches the limit. */
static bool foreign_room(tarn__heap_t *h) {
    if (h->foreign_held < TARN__FOREIGN_TOTAL) return true;
    h->foreign_held = (uint32_t)tarn__foreign_held(h);
    return h->foreign_held < TARN__FOREIGN_TOTAL;
}

/* Keeps block b (checked and marked free) of another heap's live page pg
 * for h's own allocations of its class; false (b still to be freed) when h
 * does not allocate that class (no page of it queued, no cache of it going)
 * or holds enough. A second free of a block kept here finds it marked. */
bool tarn__foreign_keep(tarn__heap_t *h, tarn__page_t *pg, tarn__block_t *b) {
    unsigned cls = pg->cls;
    if (cls >= TARN__DIRECT_CLASSES) return false;
    tarn__page_t *f = &h->foreign[cls];
    if (!h->queues[cls].first && !f->free && !f->dirty) return false;
    uint32_t held = f->capacity - f->used;
    if (held >= TARN__FOREIGN_MAX || !foreign_room(h)) return false;
    b->next = f->free;
    f->free = b;
    f->capacity++;
    h->foreign_held++;
    if (held + 1 == TARN__FOREIGN_FLIP && !f->dirty) tarn__foreign_switch(h, cls, true);
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
    if (cls < TARN__DIRECT_CLASSES && h->foreign[cls].dirty && !h->foreign[cls].free)
        tarn__foreign_switch(h, cls, false);
}

/* Gives every cached foreign block back to its owner. */
void tarn__foreign_flush(tarn__heap_t *h) {
    for (unsigned cls = 0; cls < TARN__DIRECT_CLASSES; cls++) {
        tarn__page_t *f = &h->foreign[cls];
        if (!f->free && !f->dirty) continue; /* leaves a class never cached untouched */
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
