/* Stack traces, captured cheaply and stored once each (the "stack depot"
 * of AddressSanitizer): a block carries a 32-bit id, not its frames.
 *
 * The depot lives in memory from the OS (never from malloc), so it can be
 * used from inside malloc. Inserts are lock-free: a record is written, then
 * published by one compare-and-swap into an open-addressed table; readers
 * need no lock. Records are never removed, so an id stays valid for the
 * life of the process. Layout and figures: docs/debug.md. */
#ifndef TARN_DEBUG_DEPOT_H
#define TARN_DEBUG_DEPOT_H

#include <stdint.h>

/* The most frames one stack may hold. */
#define TARN__DEPOT_MAX_FRAMES 64

/* Writes into pcs up to max return addresses of the calling thread, its
 * innermost frame (this function's caller) first; returns how many. */
unsigned tarn__stack_unwind(uintptr_t *pcs, unsigned max);

/* The id of the stack pcs[0, n) (n at most TARN__DEPOT_MAX_FRAMES): the
 * same id for the same frames, from any thread. 0 (no stack) when n is 0
 * or the depot is full. */
uint32_t tarn__depot_intern(const uintptr_t *pcs, unsigned n);

/* The frames of stack id (*pcs points into the depot); returns their
 * number, 0 for id 0 or an id the depot never gave. */
unsigned tarn__depot_get(uint32_t id, const uintptr_t **pcs);

/* Distinct stacks stored so far. */
uint32_t tarn__depot_count(void);

#endif
