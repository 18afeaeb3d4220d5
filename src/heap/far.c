/* Far-aligned blocks: aligned to 4 MiB or more.
 *
 * Such a block starts on a segment frame boundary, where no header can sit
 * before it, so masking cannot find it and the segment map does not know
 * it. Each gets a mapping of its own, starting at the block, and an entry
 * in one process-wide table consulted only when the segment map does not
 * know a pointer (free, realloc and usable size of anything foreign). They
 * are rare (memalign with a huge alignment), but nothing caps how many a
 * program keeps, so the table is an open-addressing hash table keyed by the
 * block's address (linear probing, Knuth's deletion by shifting back, so no
 * tombstones), doubled when half full. Its storage comes from the OS, never
 * from malloc (this is malloc), and is kept at its peak size: a program
 * that once held many such blocks likely will again, and the table costs 16
 * bytes a slot. */
#include <pthread.h>

#include "heap/internal.h"

typedef struct {
    uint8_t *block; /* NULL: the slot is empty */
    size_t size;    /* of the mapping at block */
} far_entry_t;

/* The table's first size: one 4 KiB page of slots. */
enum { FAR_MIN_BITS = 8 };

static pthread_mutex_t far_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under far_lock: 1 << far_bits slots, fewer than half of them in use. */
static far_entry_t *far_table;
static unsigned far_bits;
static size_t far_count;

void tarn__far_fork_lock(bool lock) {
    if (lock)
        pthread_mutex_lock(&far_lock);
    else
        pthread_mutex_unlock(&far_lock);
}

/* Home slot of block p: Fibonacci hashing of its 4 MiB frame number, as
 * the low bits of an aligned address are all zero. */
static size_t far_home(const void *p, unsigned bits) {
    uint64_t frame = (uintptr_t)p >> TARN__SEG_SHIFT;
    return (size_t)((frame * TARN__FIB_MULT) >> (64 - bits));
}

/* Under far_lock: the slot holding p, or the empty slot that ends its probe. */
static size_t far_slot_locked(const void *p) {
    size_t mask = ((size_t)1 << far_bits) - 1, i = far_home(p, far_bits);
    while (far_table[i].block && far_table[i].block != p)
        i = (i + 1) & mask;
    return i;
}

/* Under far_lock: a table with room for one more entry, doubled (and the
 * entries rehashed) when that would make it half full; false when the OS
 * gives no memory for it. */
static bool far_room_locked(void) {
    if (far_table && (far_count + 1) * 2 <= (size_t)1 << far_bits) return true;
    unsigned old_bits = far_bits, bits = far_table ? far_bits + 1 : FAR_MIN_BITS;
    far_entry_t *old = far_table, *fresh = tarn__os_map(sizeof *fresh << bits);
    if (!fresh) return false;
    far_table = fresh;
    far_bits = bits;
    for (size_t i = 0; old && i < (size_t)1 << old_bits; i++)
        if (old[i].block) far_table[far_slot_locked(old[i].block)] = old[i];
    tarn__os_unmap(old, sizeof *old << old_bits);
    return true;
}

/* Under far_lock: empties slot i, then moves back each entry of the probe
 * run after it whose home lies at or before the hole, so every entry stays
 * reachable from its home without crossing an empty slot. */
static void far_remove_locked(size_t i) {
    size_t mask = ((size_t)1 << far_bits) - 1;
    far_count--;
    for (size_t j = (i + 1) & mask; far_table[j].block; j = (j + 1) & mask) {
        size_t home = far_home(far_table[j].block, far_bits);
        /* Home cyclically in (i, j]: the entry may stay where it is. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        far_table[i] = far_table[j];
        i = j;
    }
    far_table[i] = (far_entry_t){NULL, 0};
}

void *tarn__far_alloc(size_t size, size_t align) {
    /* At least a page: a size of 0 would leave nothing mapped, and the
     * table tells a block from an empty slot by its size. */
    size_t total = tarn__align_up(size ? size : 1, tarn__os_page_size());
    if (total < size) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *block = tarn__os_map_aligned(total, align);
    if (!block) return NULL;
    pthread_mutex_lock(&far_lock);
    bool room = far_room_locked();
    if (room) {
        far_table[far_slot_locked(block)] = (far_entry_t){block, total};
        far_count++;
    }
    pthread_mutex_unlock(&far_lock);
    if (room) {
        atomic_fetch_add_explicit(&tarn__counters.far_blocks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&tarn__counters.far_bytes, total, memory_order_relaxed);
        return block;
    }
    tarn__os_unmap(block, total);
    errno = ENOMEM;
    return NULL;
}

bool tarn__far_free(void *p) {
    size_t size = 0;
    pthread_mutex_lock(&far_lock);
    if (far_table) {
        size_t i = far_slot_locked(p);
        size = far_table[i].size;
        if (size) far_remove_locked(i);
    }
    pthread_mutex_unlock(&far_lock);
    if (size) {
        atomic_fetch_sub_explicit(&tarn__counters.far_blocks, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&tarn__counters.far_bytes, size, memory_order_relaxed);
        tarn__heap_unmap(p, size);
    }
    return size != 0;
}

size_t tarn__far_usable(const void *p) {
    size_t size = 0;
    pthread_mutex_lock(&far_lock);
    if (far_table) size = far_table[far_slot_locked(p)].size;
    pthread_mutex_unlock(&far_lock);
    return size;
}

size_t tarn__far_count(void) {
    pthread_mutex_lock(&far_lock);
    size_t n = far_count;
    pthread_mutex_unlock(&far_lock);
    return n;
}
