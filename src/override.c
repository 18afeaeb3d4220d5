/* The standard allocator symbols, for build/libtarn-override.so: preload it
 * (LD_PRELOAD) or link it, and every malloc in the process is tarn's. The
 * fast paths are inlined here so malloc costs no extra call.
 *
 * glibc's companions go to the same heap: the __libc_ names (which some
 * programs and libraries call to reach "the real malloc"), cfree, C23's
 * sized frees; the introspection calls are in override_info.c. */
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>

#include "heap/internal.h"

TARN_API void *malloc(size_t size) { return tarn__heap_malloc(size); }
TARN_API void free(void *p) { tarn__heap_free(p); }
TARN_API void *calloc(size_t n, size_t size) { return tarn_calloc(n, size); }
TARN_API void *realloc(void *p, size_t size) { return tarn_realloc(p, size); }
TARN_API void *reallocarray(void *p, size_t n, size_t size) {
    return tarn_reallocarray(p, n, size);
}
TARN_API int posix_memalign(void **out, size_t align, size_t size) {
    return tarn_posix_memalign(out, align, size);
}
TARN_API void *aligned_alloc(size_t align, size_t size) { return tarn_aligned_alloc(align, size); }
TARN_API void *memalign(size_t align, size_t size) { return tarn_memalign(align, size); }
TARN_API void *valloc(size_t size) { return tarn_memalign(tarn__os_page_size(), size); }
TARN_API void *pvalloc(size_t size) {
    size_t page = tarn__os_page_size();
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    return tarn_memalign(page, tarn__align_up(size ? size : 1, page));
}
TARN_API size_t malloc_usable_size(void *p) { return tarn_usable_size(p); }
TARN_API int malloc_trim(size_t pad) {
    (void)pad;
    return tarn_collect(true) > 0;
}

/* ---- glibc's other names for the same calls ---------------------------- */
TARN_API void *__libc_malloc(size_t size) { return tarn__heap_malloc(size); }
TARN_API void __libc_free(void *p) { tarn__heap_free(p); }
TARN_API void *__libc_calloc(size_t n, size_t size) { return tarn_calloc(n, size); }
TARN_API void *__libc_realloc(void *p, size_t size) { return tarn_realloc(p, size); }
TARN_API void *__libc_memalign(size_t align, size_t size) { return tarn_memalign(align, size); }
TARN_API void *__libc_valloc(size_t size) { return valloc(size); }
TARN_API void *__libc_pvalloc(size_t size) { return pvalloc(size); }
TARN_API int __posix_memalign(void **out, size_t align, size_t size) {
    return tarn_posix_memalign(out, align, size);
}
TARN_API void cfree(void *p) { tarn__heap_free(p); }
TARN_API void free_sized(void *p, size_t size) { tarn_free_sized(p, size); }
TARN_API void free_aligned_sized(void *p, size_t align, size_t size) {
    tarn_free_aligned_sized(p, align, size);
}
