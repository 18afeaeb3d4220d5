/* Scratch memory: where the checking layer's own helpers allocate.
 *
 * libunwind, libdw, the C++ demangler and the report's formatting call
 * malloc. Served by the heap being checked they would change it while it is
 * reported on (and recurse into the layer), so a thread that enters scratch
 * mode gets its malloc & co from a TLSF region (src/region/) over 64 MiB of
 * OS memory, committed as it is touched; frees of those pointers go back to
 * it, whatever mode the freeing thread is in. One lock: the region is
 * single-threaded, and scratch use is rare (first captures, reports). */
#include <string.h>

#include "debug/internal.h"

#define SCRATCH_BYTES ((size_t)64 << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tarn_region_t *region;
static unsigned char *base;
static __thread unsigned depth __attribute__((tls_model("initial-exec")));

void tarn__scratch_enter(void) { depth++; }
void tarn__scratch_leave(void) {
    tarn_assert(depth > 0, "leave pairs with enter");
    depth--;
}
bool tarn__scratch_active(void) { return depth > 0; }

bool tarn__scratch_owns(const void *p) {
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)base;
    return base && a >= lo && a < lo + SCRATCH_BYTES;
}

/* The region, made on first use; caller holds the lock. */
static tarn_region_t *region_locked(void) {
    if (region) return region;
    unsigned char *m = tarn__os_map(SCRATCH_BYTES);
    if (!m) return NULL;
    region = tarn_region_init(m, SCRATCH_BYTES, TARN_TLSF);
    if (region)
        base = m;
    else
        tarn__os_unmap(m, SCRATCH_BYTES);
    return region;
}

void *tarn__scratch_alloc(size_t size, size_t align) {
    pthread_mutex_lock(&lock);
    tarn_region_t *r = region_locked();
    void *p = !r            ? NULL
              : align <= 16 ? tarn_region_alloc(r, size)
                            : tarn_region_alloc_aligned(r, size, align);
    pthread_mutex_unlock(&lock);
    return p;
}

void *tarn__scratch_realloc(void *p, size_t size) {
    pthread_mutex_lock(&lock);
    tarn_region_t *r = region_locked();
    void *q = r ? tarn_region_realloc(r, p, size) : NULL;
    pthread_mutex_unlock(&lock);
    return q;
}

void tarn__scratch_free(void *p) {
    pthread_mutex_lock(&lock);
    tarn_region_free(region, p);
    pthread_mutex_unlock(&lock);
}

void tarn__scratch_fork_lock(bool on) {
    if (on)
        pthread_mutex_lock(&lock);
    else
        pthread_mutex_unlock(&lock);
}
