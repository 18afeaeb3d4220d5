/* tarn — memory pools and a fast malloc for Linux.
 *
 * Read this file first. Each concept has one short header:
 *   tarn/common.h  error handler, statistics struct, export macro
 *   tarn/fixed.h   pool of equal-size objects, O(1) alloc and free
 *   tarn/arena.h   region pool: bump allocation, cleanups, reset, child arenas, rewind
 *   tarn/region.h  allocators over a caller's buffer: first/next/best fit, buddy, TLSF
 *   tarn/heap.h    tarn_malloc & co: the general thread-caching heap
 *   tarn/version.h TARN_VERSION (compiled against) and tarn_version() (running)
 *
 * Conventions: functions returning a pointer return NULL and set errno
 * (ENOMEM, EINVAL) on failure; functions returning int return 0 or -1 with
 * errno. Misuse that would corrupt memory (double free, foreign pointer,
 * overwritten header) goes to the error handler, which by default prints one
 * line on stderr and aborts. */
#ifndef TARN_H
#define TARN_H

#include "tarn/arena.h"
#include "tarn/common.h"
#include "tarn/fixed.h"
#include "tarn/heap.h"
#include "tarn/region.h"
#include "tarn/version.h"

#endif
