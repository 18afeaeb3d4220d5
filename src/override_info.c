/* glibc's introspection calls (mallinfo2, mallinfo, malloc_info,
 * malloc_stats, mallopt) over tarn_heap_stats, for libtarn-override.so and
 * libtarn-debug.so alike. How their fields map onto tarn's figures is in
 * docs/heap.md. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>

#include "heap/internal.h"

static size_t free_blocks(const tarn_heap_stats_t *s) {
    size_t n = 0;
    for (unsigned cls = 0; cls < TARN_HEAP_CLASSES; cls++)
        n += s->classes[cls].free_blocks;
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
