/* Freeing: the same-thread fast path is inline in heap/internal.h; this is
 * everything else: frees from other threads, full and unused pages, and the
 * checks behind every free: the pointer must be the start of a block carved
 * from its page and not already free (tarn__block_freeable, inline).
 *
 * A block freed by a thread that does not own its page is pushed onto the
 * page's thread_free list (remote.c), or, if small, may stay with the
 * thread that frees it, for that thread to reuse (foreign.c). */
#include "heap/internal.h"

/* A pointer whose 4 MiB frame holds no segment header: NULL, a far-aligned
 * block, or not ours. */
void tarn__free_unknown(void *p) {
    if (p && !tarn__far_free(p))
        tarn__report("free of %p, which tarn did not allocate (or already freed)", p);
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
                     "blocks) in heap %p",
                     op, p, bs, h);
    else if (n % bs)
        tarn__report("%s of %p, an interior pointer %zu bytes into a block of %zu at %p", op, p,
                     (size_t)(n % bs), bs, (void *)(pg->remote_start + n - n % bs));
    else if (!strcmp(op, "free"))
        tarn__report("double free of %p (size %zu) in heap %p", p, bs, h);
    else
        tarn__report("%s of %p, a block already freed (size %zu) in heap %p", op, p, bs, h);
}

bool tarn__block_check_slow(tarn__segment_t *seg, tarn__page_t *pg, const void *p, const char *op) {
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

/* Every check is made, and the block marked free, before it goes on any
 * list, so each list it may reach (local, thread_free, a foreign cache)
 * refuses it a second time. */
void tarn__free_slow(tarn__segment_t *seg, tarn__page_t *pg, tarn__block_t *b) {
    if (seg->kind >= TARN__SEG_LARGE) {
        tarn__large_free(seg, pg, b);
        return;
    }
    if (!tarn__block_check(seg, pg, b, "free")) return;
    b->freed = tarn__block_key(b);
    tarn__heap_t *h = tarn__tls_heap;
    if (seg->heap == h)
        free_local_slow(h, pg, b);
    else if (!tarn__foreign_keep(h, pg, b))
        tarn__remote_push(seg, pg, b);
}

void tarn_free(void *p) { tarn__heap_free(p); }
