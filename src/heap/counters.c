/* The heap's global counters (tarn__counters): what tarn_heap_stats reports
 * without walking the segments, and the high-water marks raised where the
 * counts grow. The lowest layer with the OS: every other file counts here,
 * and this file calls none of them. */
#include "heap/internal.h"

tarn__heap_counters_t tarn__counters;

size_t tarn__in_use_now(void) {
    return atomic_load_explicit(&tarn__counters.in_use, memory_order_relaxed) +
           atomic_load_explicit(&tarn__counters.huge_bytes, memory_order_relaxed) +
           atomic_load_explicit(&tarn__counters.far_bytes, memory_order_relaxed);
}

static size_t mapped_now(void) {
    return atomic_load_explicit(&tarn__counters.segment_bytes, memory_order_relaxed) +
           atomic_load_explicit(&tarn__counters.huge_bytes, memory_order_relaxed) +
           atomic_load_explicit(&tarn__counters.far_bytes, memory_order_relaxed);
}

static void raise_to(_Atomic size_t *peak, size_t now) {
    size_t old = atomic_load_explicit(peak, memory_order_relaxed);
    while (now > old && !atomic_compare_exchange_weak_explicit(
                            peak, &old, now, memory_order_relaxed, memory_order_relaxed)) {
    }
}

void tarn__peak_note(void) {
    raise_to(&tarn__counters.peak_in_use, tarn__in_use_now());
    raise_to(&tarn__counters.peak_mapped, mapped_now());
}
