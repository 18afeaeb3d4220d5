/* The quarantine: freed blocks wait here, filled with TARN__DBG_FREED, so a
 * write through a stale pointer shows when they leave, and the address is
 * not handed out again meanwhile (which is also what lets a double free of
 * A after A's memory was reused, A-B-A, be seen as one).
 *
 * A FIFO ring of user addresses in OS memory, doubled when full, bounded by
 * the bytes it holds (the quarantine option); one lock. A block pushed out
 * is taken from the registry under its stripe lock before it is verified
 * and freed, so a racing double free either still finds it FREED or finds
 * nothing. */
#include "debug/internal.h"

#define FIRST_CAP 4096
#define BATCH 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *ring;
static size_t cap, head, count; /* entries at ring[(head + i) % cap] */
static size_t bytes;

void tarn__quarantine_lock(void) { pthread_mutex_lock(&lock); }
void tarn__quarantine_unlock(void) { pthread_mutex_unlock(&lock); }

/* Room for one more entry; false with no memory. */
static bool reserve_locked(void) {
    if (count < cap) return true;
    size_t ncap = cap ? cap * 2 : FIRST_CAP;
    uintptr_t *fresh = tarn__os_map(ncap * sizeof *fresh);
    if (!fresh) return false;
    for (size_t i = 0; i < count; i++) fresh[i] = ring[(head + i) % cap];
    if (ring) tarn__os_unmap(ring, cap * sizeof *ring);
    ring = fresh;
    cap = ncap;
    head = 0;
    return true;
}

static void report_write_after_free(tarn__dblock_t *b, long at) {
    unsigned char *user = tarn__dblock_user(b);
    tarn__out_t *o = tarn__report_begin(TARN__BUG_AFTER_FREE, (uintptr_t)user ^ b->alloc_stack);
    if (!o) return;
    tarn__out_printf(o, "tarn: write after free: byte %ld of block %p (%zu bytes) changed\n", at,
                     (void *)user, (size_t)b->size);
    tarn__out_printf(o, "  freed at:\n");
    tarn__stack_print(o, b->free_stack, "    ");
    tarn__out_printf(o, "  allocated at:\n");
    tarn__stack_print(o, b->alloc_stack, "    ");
    tarn__report_end(o);
}

/* Verifies a block that has left the quarantine and gives it back. */
static void release(uintptr_t user) {
    tarn__stripe_t *s = tarn__registry_lock((void *)user);
    tarn__registry_remove_locked(s, (void *)user);
    tarn__registry_unlock(s);
    tarn__dblock_t *b = tarn__dblock_of((void *)user);
    long at;
    if (tarn__dblock_bad_fill(b, &at)) report_write_after_free(b, at);
    tarn_free((unsigned char *)user - b->offset);
}

void tarn__quarantine_push(tarn__dblock_t *b) {
    uintptr_t out[BATCH];
    uintptr_t user = (uintptr_t)tarn__dblock_user(b);
    bool held = true;
    do {
        size_t n = 0;
        pthread_mutex_lock(&lock);
        if (held && reserve_locked()) {
            ring[(head + count++) % cap] = user;
            bytes += b->size;
        } else if (held) {
            out[n++] = user; /* no room to hold it: verified and freed now */
        }
        held = false;
        while (n < BATCH && count && bytes > tarn__dbg.quarantine) {
            uintptr_t old = ring[head];
            head = (head + 1) % cap;
            count--;
            bytes -= tarn__dblock_of((void *)old)->size;
            out[n++] = old;
        }
        bool more = count && bytes > tarn__dbg.quarantine;
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n; i++) release(out[i]);
        if (!more) break;
    } while (true);
}

void tarn__quarantine_verify(void) {
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < count; i++) {
        tarn__dblock_t *b = tarn__dblock_of((void *)ring[(head + i) % cap]);
        long at;
        if (tarn__dblock_bad_fill(b, &at)) report_write_after_free(b, at);
    }
    pthread_mutex_unlock(&lock);
}
