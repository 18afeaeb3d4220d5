/* Freeing: the same-thread fast path is inline in heap/internal.h; this is
 * everything else: frees from other threads, full and unused pages, and the
 * checks behind every free: the pointer must be the start of a block carved
 * from its page and not already free (tarn__block_freeable, inline).
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

/* Says why p is not a block in use of small, mid or medium page pg:
 * tarn__block_freeable said no, or the page holds no blocks. */
static void report_bad_block(tarn__segment_t *seg, tarn__page_t *pg, const void *p,
                             const char *op) {
    void *h = seg->heap;
    size_t bs = pg->block_size;
    if (bs == 0) {
        tarn__report("%s of %p, which is not a live block (double free?) in heap %p", op, p, h);
        return;
    }
    uint64_t n = (uintptr_t)p - (uintptr_t)pg->remote_start;
    uint32_t limit = atomic_load_explicit(&pg->remote_limit, memory_order_relaxed);
    if (n >= limit / tarn__div_step(bs) * bs) /* past the carved blocks, or below the page */
        tarn__report("%s of %p, which is not a block tarn handed out (in a page of %zu-byte "
                     "blocks) in heap %p", op, p, bs, h);
    else if (n % bs)
        tarn__report("%s of %p, an interior pointer %zu bytes into a block of %zu at %p", op, p,
                     (size_t)(n % bs), bs, (void *)(pg->remote_start + n - n % bs));
    else if (!strcmp(op, "free"))
        tarn__report("double free of %p (size %zu) in heap %p", p, bs, h);
    else
        tarn__report("%s of %p, a block already freed (size %zu) in heap %p", op, p, bs, h);
}

bool tarn__block_check_slow(tarn__segment_t *seg, tarn__page_t *pg, const void *p,
                            const char *op) {
    if (seg->kind >= TARN__SEG_LARGE) return tarn__large_check(seg, pg, p, op);
    report_bad_block(seg, pg, p, op);
    return false;
}

/* b is already marked free. */
static void free_local_slow(tarn__heap_t *h, tarn__page_t *pg, tarn__block_t *b) {
    b->next = pg->local_free;
    pg->local_free = b;
    pg->used--;
    if (pg->flags & TARN__PAGE_FULL) tarn__page_unfull(h, pg);
    if (pg->used == 0) tarn__page_empty(h, pg);
}

void tarn__remote_push(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b) {
    tarn__heap_t *h = seg->heap;
    tarn__block_t *head = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
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

/* Every check is made, and the block marked free, before it goes on any
 * list, so each list it may reach (local, thread_free, a foreign cache)
 * refuses it a second time. */
void tarn__free_generic(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b) {
    if (seg->kind >= TARN__SEG_LARGE) {
        tarn__large_free(seg, pg, b);
        return;
    }
    if (!tarn__block_check(seg, pg, b, "free")) return;
    b->freed = tarn__block_key(b);
    tarn__heap_t *h = tarn__tls_heap;
    if (seg->heap == h) free_local_slow(h, pg, b);
    else if (!tarn__foreign_keep(h, pg, b)) tarn__remote_push(seg, pg, b);
}

/* Owner only: moves blocks other threads freed back into their pages (they
 * stay marked free). */
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
