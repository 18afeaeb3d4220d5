/* The slot space: the address space that holds the blocks of every fixed
 * pool in the process.
 *
 * Shared, because a pool per connection must stay cheap at server scale: a
 * reservation per pool costs address space (a process under an
 * address-space limit runs out of it long before memory) and a kernel
 * mapping each (which the kernel also caps). Here all pools share a few
 * large mappings, and a pool owns only the slots it holds.
 *
 * Chunks of CHUNK bytes, aligned to CHUNK, are reserved as slots of their
 * size are needed; each chunk holds slots of one size only, carved in
 * address order, so a slot's alignment follows from the chunk's. A slot
 * larger than a chunk gets a reservation of its own, aligned to its size,
 * whose chunks all carry its shift. The chunk map records, per chunk, the
 * slot size it holds, so a pool's free can check any address in O(1)
 * before it reads the header that address implies (fixed.h). Slots given
 * back wait on a stack per size and are handed out again, newest first,
 * before new ones are carved; their pages have been given back, so they
 * read as zeros. Address space is never returned: it is what lets a stale
 * pointer be read safely and reported. */
#include <errno.h>
#include <pthread.h>

#include "fixed_space.h"

#define CHUNK ((uintptr_t)1 << TARN_FIXED_CHUNK_SHIFT_)
#define MAX_SHIFT 32
#define STACK_MIN 512 /* first stack: one page of entries */

/* Slots of one size. Invariant: ngiven <= carved <= stack_cap, so a slot
 * given back always finds room on the stack. */
typedef struct size_class {
    uintptr_t carve, carve_end; /* never-taken slots of the newest chunk */
    uintptr_t *given;           /* slots given back, a stack */
    size_t ngiven, carved, stack_cap;
} size_class_t;

static pthread_mutex_t space_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *chunk_map;
static size_class_t classes[MAX_SHIFT + 1];

static unsigned char *map_locked(void) {
    if (!chunk_map) chunk_map = tarn__os_reserve(TARN_FIXED_CHUNKS_, tarn__os_page_size());
    return chunk_map;
}

const unsigned char *tarn__fixed_space_map(void) {
    pthread_mutex_lock(&space_lock);
    const unsigned char *m = map_locked();
    pthread_mutex_unlock(&space_lock);
    return m;
}

/* Room on the stack for one more slot than have been carved. */
static int grow_stack(size_class_t *c) {
    if (c->carved < c->stack_cap) return 0;
    size_t cap = c->stack_cap ? c->stack_cap * 2 : STACK_MIN, bytes = cap * sizeof(uintptr_t);
    uintptr_t *s = c->given ? tarn__os_remap(c->given, c->stack_cap * sizeof(uintptr_t), bytes)
                            : tarn__os_map(bytes);
    if (!s) return -1;
    c->given = s;
    c->stack_cap = cap;
    return 0;
}

/* Reserves a chunk (or a slot's own reservation) for slots of 2^shift bytes
 * and records it in the map once it can be read. */
static int add_chunk(size_class_t *c, unsigned shift) {
    uintptr_t bytes = (uintptr_t)1 << shift > CHUNK ? (uintptr_t)1 << shift : CHUNK;
    char *p = tarn__os_reserve(bytes, bytes);
    if (!p) return -1;
    uintptr_t lo = (uintptr_t)p;
    if ((lo + bytes) >> TARN_FIXED_CHUNK_SHIFT_ > TARN_FIXED_CHUNKS_) { /* beyond the map */
        tarn__os_unmap(p, bytes);
        return errno = ENOMEM, -1;
    }
    for (uintptr_t i = lo >> TARN_FIXED_CHUNK_SHIFT_; i < (lo + bytes) >> TARN_FIXED_CHUNK_SHIFT_;
         i++)
        __atomic_store_n(&chunk_map[i], (unsigned char)shift, __ATOMIC_RELEASE);
    c->carve = lo;
    c->carve_end = lo + bytes;
    return 0;
}

static void *take_locked(unsigned shift) {
    size_class_t *c = &classes[shift];
    if (c->ngiven) return (void *)c->given[--c->ngiven];
    if (!map_locked() || grow_stack(c) < 0) return NULL;
    if (c->carve == c->carve_end && add_chunk(c, shift) < 0) return NULL;
    void *slot = (void *)c->carve;
    c->carve += (uintptr_t)1 << shift;
    c->carved++;
    return slot;
}

void *tarn__fixed_slot_take(unsigned shift) {
    tarn_assert(shift <= MAX_SHIFT && ((size_t)1 << shift) >= tarn__os_page_size(),
                "slots are whole pages, at most 4 GiB");
    pthread_mutex_lock(&space_lock);
    void *slot = take_locked(shift);
    pthread_mutex_unlock(&space_lock);
    return slot;
}

void tarn__fixed_slot_give(void *slot, unsigned shift) {
    size_class_t *c = &classes[shift];
    pthread_mutex_lock(&space_lock);
    tarn_assert(c->ngiven < c->carved, "only a carved slot comes back, once");
    c->given[c->ngiven++] = (uintptr_t)slot;
    pthread_mutex_unlock(&space_lock);
}

void tarn__fixed_space_fork_lock(bool take) {
    if (take)
        pthread_mutex_lock(&space_lock);
    else
        pthread_mutex_unlock(&space_lock);
}

bool tarn__fixed_slot_was_taken(uintptr_t a, unsigned shift) {
    const size_class_t *c = &classes[shift];
    pthread_mutex_lock(&space_lock);
    bool taken = !(a >= c->carve && a < c->carve_end);
    pthread_mutex_unlock(&space_lock);
    return taken;
}
