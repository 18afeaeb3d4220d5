/* The standard allocator symbols, for build/libtarn-override.so: preload it
 * (LD_PRELOAD) or link it, and every malloc in the process is tarn's. The
 * fast paths are inlined here so malloc costs no extra call.
 *
 * glibc's companions go to the same heap: the __libc_ names (which some
 * programs and libraries call to reach "the real malloc"), cfree, C23's
 * sized frees, and the introspection calls (mallinfo2, mallinfo,
 * malloc_info, malloc_stats, mallopt), which all read tarn_heap_stats. How
 * their fields map onto tarn's figures is in docs/heap.md. */
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>

#include "heap/internal.h"

TARN_API void *malloc(size_t size) { return tarn__heap_malloc(size); }
TARN_API void free(void *p) { tarn__heap_free(p); }
TARN_API void *calloc(size_t n, size_t size) { return tarn_calloc(n, size); }
TARN_API void *realloc(void *p, size_t size) { return tarn_realloc(p, size); }
TARN_API void *reallocarray(void *p, size_t n, size_t size) { return tarn_reallocarray(p, n, size); }
TARN_API int posix_memalign(void **out, size_t align, size_t size) {
    return tarn_posix_memalign(out, align, size);
}
TARN_API void *aligned_alloc(size_t align, size_t size) { return tarn_aligned_alloc(align, size); }
TARN_API void *memalign(size_t align, size_t size) { return tarn_memalign(align, size); }
TARN_API void *valloc(size_t size) { return tarn_memalign(tarn__os_page_size(), size); }
TARN_API void *pvalloc(size_t size) {
    size_t page = tarn__os_page_size();
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    return tarn_memalign(page, tarn__align_up(size ? size : 1, page));
}
TARN_API size_t malloc_usable_size(void *p) { return tarn_usable_size(p); }
TARN_API int malloc_trim(size_t pad) {
    (void)pad;
    return tarn_collect(true) > 0;
}

/* ---- glibc's other names for the same calls ---------------------------- */
TARN_API void *__libc_malloc(size_t size) { return tarn__heap_malloc(size); }
TARN_API void __libc_free(void *p) { tarn__heap_free(p); }
TARN_API void *__libc_calloc(size_t n, size_t size) { return tarn_calloc(n, size); }
TARN_API void *__libc_realloc(void *p, size_t size) { return tarn_realloc(p, size); }
TARN_API void *__libc_memalign(size_t align, size_t size) { return tarn_memalign(align, size); }
TARN_API void *__libc_valloc(size_t size) { return valloc(size); }
TARN_API void *__libc_pvalloc(size_t size) { return pvalloc(size); }
TARN_API int __posix_memalign(void **out, size_t align, size_t size) {
    return tarn_posix_memalign(out, align, size);
}
TARN_API void cfree(void *p) { tarn__heap_free(p); }
TARN_API void free_sized(void *p, size_t size) { tarn_free_sized(p, size); }
TARN_API void free_aligned_sized(void *p, size_t align, size_t size) {
    tarn_free_aligned_sized(p, align, size);
}

/* ---- introspection ----------------------------------------------------- */
static size_t free_blocks(const tarn_heap_stats_t *s) {
    size_t n = 0;
    for (unsigned cls = 0; cls < TARN_HEAP_CLASSES; cls++) n += s->classes[cls].free_blocks;
    return n;
}

/* arena and fordblks: the segments of small and medium pages and what of
 * them no live block holds; hblks and hblkhd: large and huge blocks. */
static struct mallinfo2 info_of(const tarn_heap_stats_t *s) {
    size_t mmapped = s->large_bytes + s->huge_bytes;
    size_t small = s->allocated - mmapped;
    return (struct mallinfo2){
        .arena = s->page_mapped,
        .ordblks = free_blocks(s),
        .hblks = s->large_blocks + s->huge_blocks,
        .hblkhd = mmapped,
        .usmblks = s->peak_in_use,
        .uordblks = small,
        .fordblks = s->page_mapped > small ? s->page_mapped - small : 0,
        .keepcost = s->unused,
    };
}

TARN_API struct mallinfo2 mallinfo2(void) {
    tarn_heap_stats_t s;
    tarn__heap_stats_quick(&s);
    return info_of(&s);
}

static int clamp_int(size_t x) { return x > INT_MAX ? INT_MAX : (int)x; }

TARN_API struct mallinfo mallinfo(void) {
    struct mallinfo2 m = mallinfo2();
    return (struct mallinfo){
        .arena = clamp_int(m.arena),
        .ordblks = clamp_int(m.ordblks),
        .hblks = clamp_int(m.hblks),
        .hblkhd = clamp_int(m.hblkhd),
        .usmblks = clamp_int(m.usmblks),
        .uordblks = clamp_int(m.uordblks),
        .fordblks = clamp_int(m.fordblks),
        .keepcost = clamp_int(m.keepcost),
    };
}

/* glibc's layout first (one arena: all of tarn's pages), then tarn's own
 * report. Formatted before anything is written, as stderr may allocate. */
TARN_API void malloc_stats(void) {
    tarn_heap_stats_t s;
    tarn_heap_stats(&s);
    struct mallinfo2 m = info_of(&s);
    char buf[512];
    snprintf(buf, sizeof buf,
             "Arena 0:\n"
             "system bytes     = %10zu\n"
             "in use bytes     = %10zu\n"
             "Total (incl. mmap):\n"
             "system bytes     = %10zu\n"
             "in use bytes     = %10zu\n"
             "mmap regions     = %10zu\n"
             "mmap bytes       = %10zu\n",
             m.arena, m.uordblks, s.mapped, s.allocated, m.hblks, m.hblkhd);
    fputs(buf, stderr);
    tarn_stats_print(stderr);
}

/* glibc's XML: one heap holding every page; its free chunks by size are the
 * free blocks of each class. */
TARN_API int malloc_info(int options, FILE *fp) {
    if (options != 0) return EINVAL;
    tarn_heap_stats_t s;
    tarn__heap_stats_quick(&s);
    struct mallinfo2 m = info_of(&s);
    fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
    for (unsigned cls = 0; cls < TARN_HEAP_CLASSES; cls++) {
        const tarn_heap_class_stats_t *c = &s.classes[cls];
        if (!c->free_blocks) continue;
        size_t from = cls ? s.classes[cls - 1].block_size + 1 : 1;
        fprintf(fp, "<size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n", from,
                c->block_size, c->free_blocks * c->block_size, c->free_blocks);
    }
    fprintf(fp,
            "</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
            "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
            "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
            "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
            "</heap>\n",
            m.ordblks, m.fordblks, m.arena, m.arena, m.arena, m.arena);
    fprintf(fp,
            "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
            "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
            "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
            "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
            "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
            "</malloc>\n",
            m.ordblks, m.fordblks, m.hblks, m.hblkhd, s.mapped, s.peak_mapped, s.mapped, s.mapped);
    return 0;
}

/* glibc's parameters: M_TRIM_THRESHOLD sets the floor of the purge budget
 * (what a heap keeps committed before it gives memory back); the others
 * name things tarn does not have (arenas, fastbins, an mmap threshold) and
 * are accepted with no effect, as glibc accepts what it ignores. */
TARN_API int mallopt(int param, int value) {
    switch (param) {
    case M_TRIM_THRESHOLD:
        if (value < 0) return 0;
        tarn__purge_set_floor((size_t)value);
        return 1;
    case M_MXFAST:
    case M_TOP_PAD:
    case M_MMAP_THRESHOLD:
    case M_MMAP_MAX:
    case M_CHECK_ACTION:
    case M_PERTURB:
    case M_ARENA_TEST:
    case M_ARENA_MAX:
        return 1;
    default:
        return 0;
    }
}
