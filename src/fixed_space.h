/* The slot space shared by every fixed pool (fixed_space.c).
 *
 * A slot of 2^shift bytes (page size <= 2^shift <= 2^32) starts at a
 * multiple of its size, reads as zeros when taken, and lies in a chunk whose
 * map byte is shift; the map byte of every other chunk differs from every
 * slot shift. Pools take and give slots; the space never hands one slot to
 * two holders. All functions are thread-safe. */
#ifndef TARN_FIXED_SPACE_H
#define TARN_FIXED_SPACE_H

#include "internal.h"

/* The chunk map (TARN__FIXED_CHUNKS bytes), reserved on first call; NULL with
 * ENOMEM if it cannot be. */
const unsigned char *tarn__fixed_space_map(void);
/* A slot of 2^shift bytes, or NULL with ENOMEM. */
void *tarn__fixed_slot_take(unsigned shift);
/* Takes back a slot whose pages the caller has given back to the OS. */
void tarn__fixed_slot_give(void *slot, unsigned shift);
/* Whether the slot holding a (in a chunk of slots of 2^shift bytes) was ever
 * taken: tells a stale pointer from one into space never used. */
bool tarn__fixed_slot_was_taken(uintptr_t a, unsigned shift);
/* Takes (true) or releases (false) the space's lock around a fork, so that
 * the child does not inherit it taken by a thread it does not have. */
void tarn__fixed_space_fork_lock(bool take);

#endif
