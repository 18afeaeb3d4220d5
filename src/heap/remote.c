/* Remote frees: blocks freed by a thread that does not own their page.
 *
 * Such a block is pushed onto the page's atomic thread_free list (how one
 * thread frees into another's page without a lock: mimalloc's answer). The
 * first push onto an empty list also pushes the page onto its heap's
 * remote_pages list, so the owner finds the pages to collect without
 * scanning. A page reaches the heap list at most once between collections,
 * and the owner never takes thread_free except through that list, so a
 * page with pending remote frees can never be retired under the pusher.
 * A heap whose thread exited has no owner to collect: the pusher that wins
 * it (ABANDONED -> BUSY) collects and purges it. */
#include "heap/internal.h"

void tarn__remote_push(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b) {
    tarn__heap_t *h = seg->heap;
    tarn__block_t *head = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    do
        b->next = head;
    while (!atomic_compare_exchange_weak_explicit(&pg->thread_free, &head, b, memory_order_acq_rel,
                                                  memory_order_relaxed));
    if (head) return; /* the page is already on its heap's list */
    tarn__page_t *top = atomic_load_explicit(&h->remote_pages, memory_order_relaxed);
    do
        pg->remote_next = top;
    while (!atomic_compare_exchange_weak_explicit(&h->remote_pages, &top, pg, memory_order_release,
                                                  memory_order_relaxed));
    if (atomic_load_explicit(&h->state, memory_order_acquire) == TARN__HEAP_ABANDONED)
        tarn__heap_collect_abandoned(h, false);
}

/* Owner only: moves blocks other threads freed back into their pages (they
 * stay marked free). */
void tarn__heap_collect_remote(tarn__heap_t *h) {
    tarn__page_t *pg = atomic_exchange_explicit(&h->remote_pages, NULL, memory_order_acquire);
    while (pg) {
        /* Read before thread_free is emptied: from then on a pusher may
         * queue the page again and rewrite remote_next. */
        tarn__page_t *next = pg->remote_next;
        tarn__block_t *list =
            atomic_exchange_explicit(&pg->thread_free, NULL, memory_order_acq_rel);
        tarn_assert(list != NULL, "a page is queued only with a block on thread_free");
        uint32_t n = 1;
        tarn__block_t *tail = list;
        for (; tail->next; tail = tail->next)
            n++;
        tail->next = pg->local_free;
        pg->local_free = list;
        tarn_assert(pg->used >= n, "remote frees are counted in used");
        pg->used -= n;
        if (pg->flags & TARN__PAGE_FULL) tarn__page_unfull(h, pg);
        if (pg->used == 0) tarn__page_empty(h, pg);
        pg = next;
    }
}

/* Called by a thread that pushed frees onto an abandoned heap: whoever wins
 * ABANDONED -> BUSY collects them and purges (everything if `all`, else as
 * a live heap would: past the delay or the budget), then re-checks for
 * frees that arrived meanwhile. Returns the bytes given back to the OS.
 * Freeing an exited thread's blocks does not purge everything: the heap's
 * next adopter would fault it all in again (docs/heap.md, "Thread exit"). */
size_t tarn__heap_collect_abandoned(tarn__heap_t *h, bool all) {
    size_t released = 0;
    for (;;) {
        int expect = TARN__HEAP_ABANDONED;
        if (!atomic_compare_exchange_strong_explicit(&h->state, &expect, TARN__HEAP_BUSY,
                                                     memory_order_acquire, memory_order_relaxed))
            return released;
        tarn__heap_collect_remote(h);
        released += tarn__purge(h, all);
        atomic_store_explicit(&h->state, TARN__HEAP_ABANDONED, memory_order_release);
        if (!atomic_load_explicit(&h->remote_pages, memory_order_acquire)) return released;
    }
}
