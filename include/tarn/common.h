/* Shared by every tarn module: the error handler and pool statistics. */
#ifndef TARN_COMMON_H
#define TARN_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TARN_API __attribute__((visibility("default")))

/* Called with one line describing misuse (no trailing newline). The default
 * handler writes "tarn: <msg>" to stderr and aborts. If a handler returns,
 * the offending operation is abandoned and no memory is changed. */
typedef void (*tarn_error_fn)(const char *msg, void *arg);

/* Installs fn (NULL restores the default); returns the previous handler. */
TARN_API tarn_error_fn tarn_set_error_handler(tarn_error_fn fn, void *arg);

/* A snapshot of one pool, filled by tarn_fixed_stats and its siblings. */
typedef struct tarn_pool_stats {
    size_t in_use;       /* live allocations */
    size_t bytes_in_use; /* bytes of live allocations */
    size_t bytes_mapped; /* bytes held from the OS, headers included */
    size_t blocks;       /* blocks held */
    size_t empty_blocks; /* blocks held with nothing live, kept for reuse */
    size_t os_maps;      /* blocks obtained from the OS so far */
    size_t os_releases;  /* blocks given back to the OS so far */
} tarn_pool_stats_t;

#ifdef __cplusplus
}
#endif
#endif
