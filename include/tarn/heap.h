/* The general heap: a thread-caching malloc that gives memory back to the OS.
 * The same functions back malloc & co in build/libtarn-override.so. */
#ifndef TARN_HEAP_H
#define TARN_HEAP_H

#include <stdbool.h>
#include <stdio.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

TARN_API void *tarn_malloc(size_t size);            /* 16-aligned block; NULL+ENOMEM */
TARN_API void tarn_free(void *p);                   /* NULL is fine; reports double, interior, foreign frees */
TARN_API void *tarn_calloc(size_t n, size_t size);  /* zeroed; NULL+ENOMEM, also when n * size overflows */
TARN_API void *tarn_realloc(void *p, size_t size);  /* contents kept; size 0 frees p and returns NULL; NULL+ENOMEM leaves p */
TARN_API void *tarn_reallocarray(void *p, size_t n, size_t size); /* realloc(p, n * size); NULL+ENOMEM on overflow */
TARN_API int tarn_posix_memalign(void **out, size_t align, size_t size); /* 0, or EINVAL (align not a power of two
                                                                            times sizeof(void *)) or ENOMEM */
TARN_API void *tarn_aligned_alloc(size_t align, size_t size); /* NULL+EINVAL if align is not a power of two */
TARN_API void *tarn_memalign(size_t align, size_t size);      /* same as tarn_aligned_alloc */
TARN_API size_t tarn_usable_size(const void *p);    /* bytes usable at p (>= requested); 0 for NULL */
/* Gives free memory back now (force: all of it, and blocks of other threads
 * kept for reuse go back to their owners' pages); returns bytes released. */
TARN_API size_t tarn_collect(bool force);
TARN_API void tarn_stats_print(FILE *out);          /* a short report: mapped, purged, segments, RSS */

#ifdef __cplusplus
}
#endif
#endif
