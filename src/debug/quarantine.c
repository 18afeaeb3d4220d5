/* The quarantine: freed blocks wait here, filled with TARN__DBG_FREED, so a
 * write through a stale pointer shows when they leave, and the address is
 * not handed out again meanwhile (which is also what lets a double free of
 * A after A's memory was reused, A-B-A, be seen as one).
 *
 * SHARDS FIFO rings of user addresses in OS memory (each a power of two of
 * entries, doubled when full), each with its own lock and an equal share
 * of the byte bound (the quarantine option); each thread frees into one
 * shard, dealt round-robin, so threads rarely share a lock (one lock for
 * all made two threads take twice the time per free: docs/debug.md). A
 * block pushed out is taken from the registry under its stripe lock before
 * it is verified and freed, so a racing double free either still finds it
 * FREED or finds nothing. */
#include <stdatomic.h>

#include "debug/internal.h"

#define SHARDS 8
#define FIRST_CAP 1024
#define BATCH 32

typedef struct shard {
    pthread_mutex_t lock;
    uintptr_t *ring;
    size_t cap, head, count; /* entries at ring[(head + i) & (cap - 1)] */
    size_t bytes;
} __attribute__((aligned(64))) shard_t;

static shard_t shards[SHARDS] = {
    [0 ... SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};
static _Atomic unsigned next_shard;
static __thread unsigned my_shard __attribute__((tls_model("initial-exec")));

void tarn__quarantine_lock(void) {
    for (unsigned i = 0; i < SHARDS; i++)
        pthread_mutex_lock(&shards[i].lock);
}
void tarn__quarantine_unlock(void) {
    for (unsigned i = SHARDS; i-- > 0;)
        pthread_mutex_unlock(&shards[i].lock);
}

/* The calling thread's shard, dealt round-robin at its first free. */
static shard_t *shard(void) {
    if (!my_shard) my_shard = atomic_fetch_add(&next_shard, 1) % SHARDS + 1;
    return &shards[my_shard - 1];
}

/* Room for one more entry; false with no memory. */
static bool reserve_locked(shard_t *q) {
    if (q->count < q->cap) return true;
    size_t cap = q->cap ? q->cap * 2 : FIRST_CAP;
    uintptr_t *fresh = tarn__os_map(cap * sizeof *fresh);
    if (!fresh) return false;
    for (size_t i = 0; i < q->count; i++)
        fresh[i] = q->ring[(q->head + i) & (q->cap - 1)];
    if (q->ring) tarn__os_unmap(q->ring, q->cap * sizeof *q->ring);
    q->ring = fresh;
    q->cap = cap;
    q->head = 0;
    return true;
}

static void report_write_after_free(tarn__dblock_t *b, long at) {
    unsigned char *user = tarn__dblock_user(b);
    uint64_t key = tarn__report_key(b->free_stack, b->alloc_stack);
    tarn__out_t *o = tarn__report_begin(TARN__BUG_AFTER_FREE, key);
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

/* What a quarantined block keeps from the heap: header, red zones and all,
 * so blocks of 0 bytes count too and the bound holds. */
static size_t held(const tarn__dblock_t *b) {
    return b->offset + b->size + tarn__dblock_rear(b->size);
}

/* Takes up to BATCH of the oldest entries past the shard's bound into out. */
static size_t pop_locked(shard_t *q, uintptr_t *out, size_t n, size_t bound) {
    while (n < BATCH && q->count && q->bytes > bound) {
        uintptr_t old = q->ring[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        q->bytes -= held(tarn__dblock_of((void *)old));
        out[n++] = old;
    }
    return n;
}

void tarn__quarantine_push(tarn__dblock_t *b) {
    shard_t *q = shard();
    size_t bound = tarn__dbg.quarantine / SHARDS;
    uintptr_t out[BATCH], user = (uintptr_t)tarn__dblock_user(b);
    size_t n = 0;
    pthread_mutex_lock(&q->lock);
    if (held(b) <= bound && reserve_locked(q)) {
        q->ring[(q->head + q->count++) & (q->cap - 1)] = user;
        q->bytes += held(b);
    } else {
        out[n++] = user; /* larger than the shard's share, or no room: verified and freed now */
    }
    for (;;) {
        n = pop_locked(q, out, n, bound);
        bool more = q->count && q->bytes > bound;
        pthread_mutex_unlock(&q->lock);
        for (size_t i = 0; i < n; i++)
            release(out[i]);
        if (!more) return;
        n = 0;
        pthread_mutex_lock(&q->lock);
    }
}

void tarn__quarantine_verify(void) {
    for (unsigned k = 0; k < SHARDS; k++) {
        shard_t *q = &shards[k];
        pthread_mutex_lock(&q->lock);
        for (size_t i = 0; i < q->count; i++) {
            tarn__dblock_t *b = tarn__dblock_of((void *)q->ring[(q->head + i) & (q->cap - 1)]);
            long at;
            if (tarn__dblock_bad_fill(b, &at)) report_write_after_free(b, at);
        }
        pthread_mutex_unlock(&q->lock);
    }
}
