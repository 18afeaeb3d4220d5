/* Thread heaps: creation on a thread's first allocation, hand-over when the
 * thread exits, and fork.
 *
 * A thread starts on the shared, read-only empty heap, whose direct table
 * points at an empty page, so its first malloc falls into the slow path,
 * which gives it a heap of its own. Nothing here allocates through malloc
 * or needs dlsym: the TLS slot is initial-exec (no __tls_get_addr, which
 * could allocate), heaps are carved from OS pages, and the thread-exit hook
 * is a pthread key, whose setspecific uses static storage for early keys.
 * So the heap works before main, inside constructors and under LD_PRELOAD.
 *
 * When a thread exits its heap is ABANDONED, not destroyed: blocks other
 * threads still hold stay valid and their frees land on the heap's remote
 * list, which the freeing thread then collects (see free.c); the next new
 * thread adopts the heap with everything in it. */
#include <pthread.h>

#include "heap/internal.h"

__thread tarn__heap_t *tarn__tls_heap __attribute__((tls_model("initial-exec"))) =
    &tarn__empty_heap;

uintptr_t tarn__heap_secret;

static tarn__page_t empty_foreign[TARN__DIRECT_CLASSES];

tarn__heap_t tarn__empty_heap = {
    .direct = {[0 ... TARN__DIRECT_SLOTS - 1] = &tarn__empty_page},
    .foreign = empty_foreign,
    .state = TARN__HEAP_BUSY,
};

static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static tarn__heap_t *abandoned_heaps; /* under heaps_lock */
static uint8_t *heap_chunk;           /* carving area for new heaps */
static size_t heap_chunk_left;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t heap_key;
static bool key_ok;
static atomic_bool atfork_done;

#if TARN_DEBUG >= 2
/* For assertions: whether the n bytes at p are all zero. */
static inline bool reads_zero(const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i]) return false;
    return true;
}
#endif

/* Heaps are carved from mappings of this size: one mmap serves many
 * threads' heaps (about 9 KiB each), and the untouched rest costs no memory. */
#define HEAP_CHUNK_BYTES ((size_t)256 << 10)

/* Bytes carved for a heap: the heap, then its foreign cache. */
#define HEAP_BYTES (sizeof(tarn__heap_t) + TARN__DIRECT_CLASSES * sizeof(tarn__page_t))

/* h is carved from fresh OS pages, which read zero: only what is not zero
 * is set, so the parts of a heap a thread never uses (most of its foreign
 * cache: 6 of its 9 KiB) cost no memory. */
static void heap_init(tarn__heap_t *h) {
    tarn_assert_slow(reads_zero(h, HEAP_BYTES), "heaps come from fresh OS pages, never recycled");
    for (size_t i = 0; i < TARN__DIRECT_SLOTS; i++)
        h->direct[i] = &tarn__empty_page;
    h->foreign = (tarn__page_t *)(h + 1); /* sizeof *h is a multiple of 64 */
    atomic_init(&h->state, TARN__HEAP_ACTIVE);
    atomic_init(&h->remote_pages, NULL);
}

/* Under heaps_lock: an abandoned heap now owned by the caller, or NULL. */
static tarn__heap_t *heap_adopt_locked(void) {
    for (tarn__heap_t **link = &abandoned_heaps; *link; link = &(*link)->next_abandoned) {
        tarn__heap_t *h = *link;
        int expect = TARN__HEAP_ABANDONED;
        if (atomic_compare_exchange_strong_explicit(&h->state, &expect, TARN__HEAP_ACTIVE,
                                                    memory_order_acquire, memory_order_relaxed)) {
            *link = h->next_abandoned;
            h->exit_live = 0;
            atomic_fetch_add_explicit(&tarn__counters.abandoned_adopted, 1, memory_order_relaxed);
            return h;
        }
    }
    return NULL;
}

/* Under heaps_lock: a new heap carved from OS pages, or NULL. */
static tarn__heap_t *heap_new_locked(void) {
    size_t size = tarn__align_up(HEAP_BYTES, 64);
    if (heap_chunk_left < size) {
        heap_chunk = tarn__os_map(HEAP_CHUNK_BYTES);
        if (!heap_chunk) return NULL;
        heap_chunk_left = HEAP_CHUNK_BYTES;
    }
    tarn__heap_t *h = (tarn__heap_t *)heap_chunk;
    heap_chunk += size;
    heap_chunk_left -= size;
    heap_init(h);
    atomic_fetch_add_explicit(&tarn__counters.heaps, 1, memory_order_relaxed);
    return h;
}

/* Runs at thread exit: empties what can be emptied, gives back free memory
 * that waited the purge delay (the rest stays within the budget, for the
 * thread that adopts the heap), and leaves the heap for adoption. */
static void heap_thread_exit(void *arg) {
    tarn__heap_t *h = arg;
    tarn__tls_heap = &tarn__empty_heap;
    tarn__foreign_flush(h);
    tarn__heap_collect_remote(h);
    atomic_store_explicit(&h->state, TARN__HEAP_BUSY, memory_order_relaxed);
    tarn__page_age_retired(h, true);
    h->exit_live = atomic_load_explicit(&h->live_bytes, memory_order_relaxed);
    tarn__purge(h, false);
    pthread_mutex_lock(&heaps_lock);
    h->next_abandoned = abandoned_heaps;
    abandoned_heaps = h;
    atomic_store_explicit(&h->state, TARN__HEAP_ABANDONED, memory_order_release);
    pthread_mutex_unlock(&heaps_lock);
    if (atomic_load_explicit(&h->remote_pages, memory_order_acquire))
        tarn__heap_collect_abandoned(h, false);
}

static void make_key(void) { key_ok = pthread_key_create(&heap_key, heap_thread_exit) == 0; }

static void fork_prepare(void) {
    pthread_mutex_lock(&heaps_lock);
    tarn__far_fork_lock(true);
    tarn__segment_fork_lock(true);
}
static void fork_parent(void) {
    tarn__segment_fork_lock(false);
    tarn__far_fork_lock(false);
    pthread_mutex_unlock(&heaps_lock);
}
/* The child keeps only the forking thread: other threads' heaps stay as
 * they were (never touched again), so whatever they were doing mid-fork
 * cannot leave the child's own heap inconsistent. */
static void fork_child(void) {
    tarn__segment_fork_lock(false);
    tarn__far_fork_lock(false);
    pthread_mutex_init(&heaps_lock, NULL);
}

static void atfork_register(void) {
    if (!atomic_exchange(&atfork_done, true)) pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* The fork handlers are registered when the library loads, before main
 * starts a thread: registered only after the first heap, they left a window
 * in which a thread making its heap held heaps_lock while another forked,
 * and the child inherited the lock taken (found by heap_stress). A
 * constructor of another library allocating before this one runs still
 * registers them on its first allocation, while the process has one thread. */
__attribute__((constructor)) static void heap_load(void) {
    atfork_register();
    tarn__purge_configure(); /* again: a heap made before libc set up environ read defaults */
}

/* The calling thread's own heap, made on its first allocation; NULL when
 * the OS has no memory for it. */
tarn__heap_t *tarn__heap_init_thread(void) {
    pthread_once(&key_once, make_key);
    pthread_mutex_lock(&heaps_lock);
    /* Before any heap hands out a block, so every block is marked with the
     * same key; never 0, so it is drawn once. */
    if (!tarn__heap_secret) tarn__heap_secret = (uintptr_t)tarn__os_random() | 1;
    tarn__heap_t *h = heap_adopt_locked();
    if (!h) h = heap_new_locked();
    pthread_mutex_unlock(&heaps_lock);
    if (!h) return NULL;
    tarn__purge_configure();
    tarn__tls_heap = h;
    /* Both may allocate; the heap is already in place to serve them. */
    if (key_ok) pthread_setspecific(heap_key, h);
    atfork_register();
    return h;
}

size_t tarn__heap_collect_all_abandoned(bool all) {
    size_t released = 0;
    pthread_mutex_lock(&heaps_lock);
    for (tarn__heap_t *h = abandoned_heaps; h; h = h->next_abandoned)
        released += tarn__heap_collect_abandoned(h, all);
    pthread_mutex_unlock(&heaps_lock);
    return released;
}
