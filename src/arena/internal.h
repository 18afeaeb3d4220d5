/* Arena internals: the types, and the two services arena.c stands on.
 *
 *   tarn_arena_t   the pool; lives at the start of its first block, the "holder"
 *   tarn__arena_block_t  header at the start of every block mapping; bumps [start, end)
 *   tarn__arena_large_t  header of an allocation that has its own mapping
 *   tarn__arena_node_t   one entry of the cleanup stack: a callback or a child arena
 *
 * pagemap.c maps every 4 KiB page of a block, and the page of each large
 * allocation's pointer, to its header, so tarn_arena_free finds the owner of
 * any pointer in O(1) and can tell a foreign pointer without touching it.
 * cache.c keeps empty blocks process-wide, so destroy -> create reuses warm
 * blocks instead of unmapping and mapping again (APR's allocator idea). */
#ifndef TARN_ARENA_INTERNAL_H
#define TARN_ARENA_INTERNAL_H

#include <pthread.h>

#include "../internal.h"

#define TARN__ARENA_ALIGN 16
#define TARN__ARENA_MIN_BLOCK ((size_t)4096)
#define TARN__ARENA_MAX_BLOCK ((size_t)64 << 20)

enum tarn__arena_kind { TARN__ARENA_BLOCK = 0x61726b62, TARN__ARENA_LARGE = 0x61726c67 };

/* First member of both headers, so a page map entry can be read as either. */
typedef struct tarn__arena_owner {
    tarn_arena_t *arena; /* NULL while a block sits in the shared cache */
    uint32_t kind;
} tarn__arena_owner_t;

/* Identities: start <= last <= end, last - start and end - start are
 * multiples of 16; count = pieces handed out of [start, last) and not freed
 * (cleanup nodes included). A block with count == 0 holds nothing live. */
typedef struct tarn__arena_block {
    tarn__arena_owner_t own; /* kind TARN__ARENA_BLOCK */
    uint32_t failed;         /* slow-path misses; past 4 the block stops being searched */
    char *last;              /* next free byte */
    char *end;
    char *start;
    size_t count;
    size_t size;                    /* bytes of the whole mapping */
    uint64_t seq;                   /* when it last entered use: orders the list */
    struct tarn__arena_block *next; /* list (oldest first), spare list or cache bin */
    struct tarn__arena_block *prev;
} tarn__arena_block_t;

typedef struct tarn__arena_large {
    tarn__arena_owner_t own; /* kind TARN__ARENA_LARGE */
    char *user;              /* the pointer handed out */
    size_t size;             /* bytes asked for */
    size_t map_size;
    uint64_t seq;
    struct tarn__arena_large *next, *prev; /* newest first */
} tarn__arena_large_t;

/* child != NULL: destroy it; else run fn(arg). Doubly linked so a child
 * destroyed first unlinks its node in O(1). */
typedef struct tarn__arena_node {
    void (*fn)(void *);
    void *arg;
    tarn_arena_t *child;
    uint64_t seq;
    struct tarn__arena_node *next; /* older */
    struct tarn__arena_node *newer;
} tarn__arena_node_t;

/* ---- pagemap.c --------------------------------------------------------
 * An entry is 0 (unknown page), a header address, or a tombstone
 * (arena address | 1) left where a large allocation was freed. */
#define TARN__ARENA_TOMBSTONE ((uintptr_t)1)
uintptr_t tarn__pagemap_get(const void *p);
/* Sets the entries of the pages covering [p, p + size); -1+ENOMEM. */
int tarn__pagemap_set(const void *p, size_t size, uintptr_t value);

/* ---- cache.c ----------------------------------------------------------
 * Blocks are powers of two; a fresh one is mapped, registered in the page
 * map and counted in *os_maps. */
tarn__arena_block_t *tarn__block_get(size_t size, size_t *os_maps);
/* Takes a chain linked by next; returns how many went back to the OS. */
size_t tarn__block_put_chain(tarn__arena_block_t *chain);

#endif
