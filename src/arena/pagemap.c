/* Page map: 4 KiB page -> arena header, for the 48-bit user address space.
 *
 * Two levels of 2^18 entries each (12 + 18 + 18 = 48 bits). Both levels are
 * reserved, not committed: a read of an untouched entry costs a zero page and
 * answers 0, and only pages that hold set entries use memory (one 4 KiB page
 * of entries per 2 MiB of arena blocks). Leaves are installed with a CAS and
 * never freed, as in mimalloc's segment map; they are bounded by the address
 * space arenas ever used. Masking the address instead (blocks aligned to
 * their size) would be one load cheaper, but would read unmapped memory when
 * handed a foreign pointer; the map answers "not ours" safely. */
#include <errno.h>
#include <stdatomic.h>

#include "internal.h"

#define PAGE_SHIFT 12
#define LEVEL_BITS 18
#define LEVEL_SIZE ((size_t)1 << LEVEL_BITS)
#define ADDRESS_BITS (PAGE_SHIFT + 2 * LEVEL_BITS)

typedef _Atomic uintptr_t entry_t;
typedef _Atomic(void *) slot_t;

static slot_t top; /* -> slot_t[LEVEL_SIZE] -> entry_t[LEVEL_SIZE] */

/* Reserves a zeroed table and installs it in *slot unless another thread did. */
static void *install(slot_t *slot, size_t bytes) {
    void *t = atomic_load_explicit(slot, memory_order_acquire);
    if (t) return t;
    void *fresh = tarn__os_reserve(bytes, tarn__os_page_size());
    if (!fresh) return NULL;
    void *expected = NULL;
    if (atomic_compare_exchange_strong(slot, &expected, fresh)) return fresh;
    tarn__os_unmap(fresh, bytes);
    return expected;
}

static slot_t *top_table(bool create) {
    slot_t *t = atomic_load_explicit(&top, memory_order_acquire);
    if (t || !create) return t;
    return install(&top, LEVEL_SIZE * sizeof(slot_t));
}

uintptr_t tarn__pagemap_get(const void *p) {
    uintptr_t page = (uintptr_t)p >> PAGE_SHIFT;
    if ((uintptr_t)p >> ADDRESS_BITS) return 0;
    slot_t *t = top_table(false);
    if (!t) return 0;
    entry_t *leaf = atomic_load_explicit(&t[page >> LEVEL_BITS], memory_order_acquire);
    if (!leaf) return 0;
    return atomic_load_explicit(&leaf[page & (LEVEL_SIZE - 1)], memory_order_relaxed);
}

int tarn__pagemap_set(const void *p, size_t size, uintptr_t value) {
    uintptr_t first = (uintptr_t)p >> PAGE_SHIFT;
    uintptr_t last = ((uintptr_t)p + size - 1) >> PAGE_SHIFT;
    tarn_assert(size > 0, "an empty range has no pages");
    if (((uintptr_t)p + size - 1) >> ADDRESS_BITS) {
        errno = ENOMEM;
        return -1;
    }
    slot_t *t = top_table(true);
    if (!t) return -1;
    for (uintptr_t page = first; page <= last; page++) {
        entry_t *leaf = install(&t[page >> LEVEL_BITS], LEVEL_SIZE * sizeof(entry_t));
        if (!leaf) return -1;
        atomic_store_explicit(&leaf[page & (LEVEL_SIZE - 1)], value, memory_order_relaxed);
    }
    return 0;
}
