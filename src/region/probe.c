/* The counting build of the region (compiled with -DTARN_REGION_PROBES for
 * bench_region's operation counts; empty otherwise): the probes record the
 * distinct 64-byte lines of the buffer touched since the last
 * tarn__region_probes_take(), and how many of them hold blocks. The lines
 * of the current operation are kept in a small open-addressed table; past
 * SEEN / 2 of them (only the searches of first, next and best fit get there)
 * a line counts again unless it is the one just touched, so those long walks
 * are counted per block visited. A line counts as a block line if its first
 * probe says so. Single-threaded, like the benchmark. */
#ifdef TARN_REGION_PROBES
#include "region/internal.h"

#define SEEN 1024 /* power of two */

static uintptr_t seen_line[SEEN], last_line;
static uint32_t seen_op[SEEN]; /* == op when seen_line is of this operation */
static uint32_t op = 1;
static size_t touched, block_lines;

/* False if line was already seen in this operation, else records it. */
static bool first_touch(uintptr_t line) {
    if (line == last_line) return false;
    last_line = line;
    if (touched >= SEEN / 2) return true;
    size_t h = (size_t)((line * TARN__FIB_MULT) >> 54) & (SEEN - 1);
    for (; seen_op[h] == op; h = (h + 1) & (SEEN - 1))
        if (seen_line[h] == line) return false;
    seen_op[h] = op;
    seen_line[h] = line;
    return true;
}

void tarn__region_probe(const volatile void *addr, bool block) {
    if (!first_touch((uintptr_t)addr >> 6)) return;
    touched++;
    block_lines += block;
}

/* Lines touched since the last call, *blocks of them holding blocks; starts
 * a new count. */
TARN_API size_t tarn__region_probes_take(size_t *blocks);
size_t tarn__region_probes_take(size_t *blocks) {
    size_t n = touched;
    *blocks = block_lines;
    touched = block_lines = 0;
    last_line = 0;
    op++;
    return n;
}
#endif
