/* Freeing: the same-thread fast path is inline in heap/internal.h; this is
 * everything else: frees from other threads, full and unused pages, and the
 * checks that reject what is provably wrong.
 *
 * A block freed by a thread that does not own its page is pushed onto the
 * page's atomic thread_free list (seed 003's question; mimalloc's answer).
 * The first such push onto an empty list also pushes the page onto its
 * heap's remote_pages list, so the owner finds the pages to collect without
 * scanning. A page reaches the heap list at most once between collections,
 * and the owner never takes thread_free except through that list, so a
 * page with pending remote frees can never be retired under the pusher.
 * A small block may instead stay with the thread that frees it, for that
 * thread to reuse (foreign.c). */
#include "heap/internal.h"

/* A pointer whose 4 MiB frame holds no segment header: NULL, a far-aligned
 * block, or not ours. */
void tarn__free_unknown(void *p) {
    if (p && !tarn__far_free(p)) tarn__report("free of %p, which tarn did not allocate (or already freed)", p);
}

void tarn__report_double(void *p, size_t size, tarn__heap_t *h) {
    tarn__report("double free of %p (size %zu) in heap %p", p, size, (void *)h);
}

static void free_local_slow(tarn__heap_t *h, tarn__page_t *pg, tarn__block_t *b) {
    if (!(pg->flags & TARN__PAGE_LIVE)) {
        tarn__report("free of %p, which is not a live block (double free?) in heap %p",
                     (void *)b, (void *)h);
        return;
    }
    if (b == pg->local_free) {
        tarn__report_double(b, pg->block_size, h);
        return;
    }
    b->next = pg->local_free;
    pg->local_free = b;
    pg->used--;
    if (pg->flags & TARN__PAGE_FULL) tarn__page_unfull(h, pg);
    if (pg->used == 0) tarn__page_empty(h, pg);
}

void tarn__free_remote(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b) {
    tarn__heap_t *h = seg->heap;
    if (pg->block_size == 0) {
        tarn__report("free of %p, which is not a live block (double free?) in heap %p",
                     (void *)b, (void *)h);
        return;
    }
    tarn__block_t *head = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    if (b == head) {
        tarn__report_double(b, pg->block_size, h);
        return;
    }
    do b->next = head;
    while (!atomic_compare_exchange_weak_explicit(&pg->thread_free, &head, b,
                                                  memory_order_acq_rel, memory_order_relaxed));
    if (head) return; /* the page is already on its heap's list */
    tarn__page_t *top = atomic_load_explicit(&h->remote_pages, memory_order_relaxed);
    do pg->remote_next = top;
    while (!atomic_compare_exchange_weak_explicit(&h->remote_pages, &top, pg,
                                                  memory_order_release, memory_order_relaxed));
    if (atomic_load_explicit(&h->state, memory_order_acquire) == TARN__HEAP_ABANDONED)
        tarn__heap_collect_abandoned(h, false);
}

void tarn__free_generic(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b) {
    if (seg->kind >= TARN__SEG_LARGE) {
        tarn__large_free(seg, pg, b);
        return;
    }
    tarn__heap_t *h = tarn__tls_heap;
    if (seg->heap == h) free_local_slow(h, pg, b);
    else if (!tarn__foreign_keep(h, pg, b)) tarn__free_remote(seg, pg, b);
}

/* Owner only: moves blocks other threads freed back into their pages. */
void tarn__heap_collect_remote(tarn__heap_t *h) {
    tarn__page_t *pg = atomic_exchange_explicit(&h->remote_pages, NULL, memory_order_acquire);
    while (pg) {
        /* Read before thread_free is emptied: from then on a pusher may
         * queue the page again and rewrite remote_next. */
        tarn__page_t *next = pg->remote_next;
        tarn__block_t *list = atomic_exchange_explicit(&pg->thread_free, NULL, memory_order_acq_rel);
        tarn_assert(list != NULL, "a page is queued only with a block on thread_free");
        uint32_t n = 1;
        tarn__block_t *tail = list;
        for (; tail->next; tail = tail->next) n++;
        tail->next = pg->local_free;
        pg->local_free = list;
        tarn_assert(pg->used >= n, "remote frees are counted in used");
        pg->used -= n;
        if (pg->flags & TARN__PAGE_FULL) tarn__page_unfull(h, pg);
        if (pg->used == 0) tarn__page_empty(h, pg);
        pg = next;
    }
}

void tarn_free(void *p) { tarn__heap_free(p); }
