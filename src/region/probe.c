/* The counting build of the region (compiled with -DTARN_REGION_PROBES for
 * bench_region's operation counts; empty otherwise): TARN__PROBE records the
 * distinct 64-byte lines of the buffer touched since the last
 * tarn__region_probes_take(). One operation of a list policy can touch many
 * lines, so only the most recent few are remembered for deduplication; a
 * line touched again after that counts again (list walks visit distinct
 * blocks, so this overcounts nothing that matters). Single-threaded, like
 * the benchmark. */
#ifdef TARN_REGION_PROBES
#include "region/internal.h"

#define RECENT 32

static uintptr_t recent[RECENT];
static size_t touched;

void tarn__region_probe(const volatile void *addr) {
    uintptr_t line = (uintptr_t)addr >> 6;
    size_t n = touched < RECENT ? touched : RECENT;
    for (size_t i = 0; i < n; i++)
        if (recent[i] == line) return;
    recent[touched % RECENT] = line;
    touched++;
}

/* Lines touched since the last call, and starts a new count. */
TARN_API size_t tarn__region_probes_take(void);
size_t tarn__region_probes_take(void) {
    size_t n = touched;
    touched = 0;
    return n;
}
#endif
