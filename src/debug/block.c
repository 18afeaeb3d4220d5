/* The checked block: header, red zones and fills (layout in internal.h and
 * docs/debug.md). */
#include <string.h>

#include "debug/internal.h"

void tarn__dblock_arm(tarn__dblock_t *b, size_t size, uint32_t offset, int fill, bool canaries) {
    b->size = size;
    b->alloc_stack = b->free_stack = 0;
    b->offset = offset;
    b->reported = 0;
    b->magic = TARN__DBG_LIVE_MAGIC;
    unsigned char *user = tarn__dblock_user(b);
    if (canaries) {
        memset(user - TARN__DBG_FRONT, TARN__DBG_CANARY, TARN__DBG_FRONT);
        memset(user + size, TARN__DBG_CANARY, tarn__dblock_rear(size));
    }
    if (fill >= 0) memset(user, fill, size);
}

/* Index of the first byte of p[0, n) that is not c, or n. */
static size_t first_not(const unsigned char *p, size_t n, unsigned char c) {
    size_t i = 0;
    uint64_t word = 0x0101010101010101ull * c;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != word) break;
    }
    while (i < n && p[i] == c)
        i++;
    return i;
}

bool tarn__dblock_bad_canary(const tarn__dblock_t *b, long *at) {
    const unsigned char *user = tarn__dblock_user(b);
    size_t front = first_not(user - TARN__DBG_FRONT, TARN__DBG_FRONT, TARN__DBG_CANARY);
    if (front < TARN__DBG_FRONT) {
        /* the lowest bad byte: for p[-1] alone, offset -1 */
        *at = (long)front - TARN__DBG_FRONT;
        return true;
    }
    size_t rear = tarn__dblock_rear(b->size);
    size_t back = first_not(user + b->size, rear, TARN__DBG_CANARY);
    if (back < rear) {
        *at = (long)(b->size + back);
        return true;
    }
    return false;
}

bool tarn__dblock_bad_fill(const tarn__dblock_t *b, long *at) {
    size_t i = first_not(tarn__dblock_user(b), b->size, TARN__DBG_FREED);
    if (i == b->size) return false;
    *at = (long)i;
    return true;
}
