/* The heap's figures (tarn_heap_stats, tarn_stats_print) and tarn_collect.
 *
 * Nothing on the allocation fast paths counts for the stats: the figures
 * are read from the segment headers, found through the segment map
 * (tarn__segment_each, which keeps them mapped while they are read). A page
 * header says its class, how many of its blocks are out (used: blocks
 * another thread freed stay in it until the owner collects them, blocks a
 * foreign cache keeps stay in it until reused) and how much of it may be
 * committed; a segment header says its kind and, while it is cached, what
 * it holds. Another thread may be writing the header meanwhile, so every
 * field is read once, with a relaxed atomic load, and checked against its
 * range before it is used. */
#include <stddef.h>

#include "heap/internal.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

size_t tarn_collect(bool force) {
    tarn__heap_t *h = tarn__tls_heap;
    size_t released = 0;
    if (h != &tarn__empty_heap) {
        if (force) tarn__foreign_flush(h);
        tarn__heap_collect_remote(h);
        if (force) tarn__page_age_retired(h, true);
        released += tarn__purge(h, force);
    }
    return released + tarn__heap_collect_all_abandoned(force);
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* A page in use: its blocks by class, and what it may hold committed (the
 * blocks carved, or more if its previous life touched more). */
static void count_live_page(const tarn__page_t *pg, tarn_heap_stats_t *s, size_t os_page) {
    unsigned cls = LOAD(pg->cls);
    if (cls >= TARN__CLASSES) return;
    size_t used = LOAD(pg->used), reserved = LOAD(pg->reserved), capacity = LOAD(pg->capacity);
    size_t bs = tarn__class_size(cls);
    tarn_heap_class_stats_t *c = &s->classes[cls];
    c->pages++;
    c->live_blocks += used;
    c->free_blocks += reserved > used ? reserved - used : 0;
    s->allocated += used * bs;
    s->committed += max_size(tarn__align_up(capacity * bs, os_page), LOAD(pg->touched));
}

/* A segment of small, mid or medium pages, in use. Pages never set up hold
 * nothing, unless the segment was reused without a decommit (not fresh):
 * then whatever its earlier life left, counted whole. */
static void count_pages(const tarn__segment_t *seg, tarn_heap_stats_t *s, size_t os_page) {
    unsigned shift = LOAD(seg->page_shift), count = LOAD(seg->page_count);
    unsigned next = LOAD(seg->page_next);
    if (shift < TARN__SMALL_PAGE_SHIFT || shift > TARN__MEDIUM_PAGE_SHIFT) return;
    if (count > TARN__MAX_PAGES) count = TARN__MAX_PAGES;
    if (next > count) next = count;
    bool fresh = LOAD(seg->fresh);
    size_t page = (size_t)1 << shift;
    for (unsigned i = (unsigned)(TARN__HEADER_SPAN >> shift); i < count; i++) {
        size_t area = i == 0 ? page - TARN__HEADER_SPAN : page;
        const tarn__page_t *pg = &seg->pages[i];
        if (i >= next) {
            s->committed += fresh ? 0 : area;
        } else if (LOAD(pg->flags) & TARN__PAGE_LIVE) {
            count_live_page(pg, s, os_page);
        } else {
            size_t touched = LOAD(pg->touched);
            s->committed += touched;
            s->unused += touched;
        }
    }
}

/* One segment: a huge block's mapping, a cached segment, a large block's
 * segment or one of pages. The header counts as committed as far as its
 * page headers are set up. */
static void count_segment(const tarn__segment_t *seg, void *arg) {
    tarn_heap_stats_t *s = arg;
    size_t os_page = tarn__os_page_size(), size = LOAD(seg->size);
    unsigned kind = LOAD(seg->kind), next = LOAD(seg->page_next);
    s->mapped += size;
    if (kind == TARN__SEG_HUGE) {
        s->huge_blocks++;
        s->huge_bytes += LOAD(seg->pages[0].block_size);
        s->allocated += LOAD(seg->pages[0].block_size);
        s->committed += size;
        return;
    }
    if (kind > TARN__SEG_HUGE) return;
    s->segments++;
    if (kind != TARN__SEG_LARGE) s->page_mapped += size;
    if (next > TARN__MAX_PAGES) next = TARN__MAX_PAGES;
    if (LOAD(seg->used_pages) == 0) { /* cached: its first OS page holds the cache links */
        size_t dirty = LOAD(seg->cached_dirty);
        s->cached_segments++;
        s->committed += os_page + dirty;
        s->unused += dirty;
        return;
    }
    s->committed +=
        tarn__align_up(offsetof(tarn__segment_t, pages) + next * sizeof(tarn__page_t), os_page);
    if (kind != TARN__SEG_LARGE) {
        count_pages(seg, s, os_page);
        return;
    }
    const tarn__page_t *pg = &seg->pages[0];
    if (!(LOAD(pg->flags) & TARN__PAGE_LIVE)) return;
    size_t bytes = LOAD(pg->block_size);
    s->large_blocks++;
    s->large_bytes += bytes;
    s->allocated += bytes;
    s->committed += max_size(tarn__align_up(bytes, os_page), LOAD(pg->touched));
}

/* The same, and what the segment holds resident: one mincore call each,
 * the costly part of a walk, which other threads' unmaps wait for. */
static void count_segment_resident(const tarn__segment_t *seg, void *arg) {
    tarn_heap_stats_t *s = arg;
    s->resident += tarn__os_resident((void *)seg, LOAD(seg->size));
    count_segment(seg, arg);
}

static void stats_read(tarn_heap_stats_t *out, bool resident) {
    tarn__heap_counters_t *c = &tarn__counters;
    memset(out, 0, sizeof *out);
    for (unsigned cls = 0; cls < TARN__CLASSES; cls++)
        out->classes[cls].block_size = tarn__class_size(cls);
    tarn__segment_each(resident ? count_segment_resident : count_segment, out);
    /* Blocks aligned to 4 MiB or more: outside the map, counted whole. */
    size_t far = atomic_load_explicit(&c->far_bytes, memory_order_relaxed);
    out->huge_blocks += atomic_load_explicit(&c->far_blocks, memory_order_relaxed);
    out->huge_bytes += far;
    out->allocated += far;
    out->committed += far;
    out->mapped += far;
    out->in_use = tarn__in_use_now();
    out->peak_in_use = atomic_load_explicit(&c->peak_in_use, memory_order_relaxed);
    if (out->peak_in_use < out->in_use) out->peak_in_use = out->in_use;
    out->peak_mapped = atomic_load_explicit(&c->peak_mapped, memory_order_relaxed);
    if (out->peak_mapped < out->mapped) out->peak_mapped = out->mapped;
    out->purged_bytes = atomic_load_explicit(&c->purged_bytes, memory_order_relaxed);
    out->purges = atomic_load_explicit(&c->purges, memory_order_relaxed);
    out->unmapped_bytes = atomic_load_explicit(&c->unmapped_bytes, memory_order_relaxed);
    out->unmaps = atomic_load_explicit(&c->unmaps, memory_order_relaxed);
    out->heaps = atomic_load_explicit(&c->heaps, memory_order_relaxed);
}

void tarn_heap_stats(tarn_heap_stats_t *out) { stats_read(out, true); }

void tarn__heap_stats_quick(tarn_heap_stats_t *out) { stats_read(out, false); }

#define MIB(x) ((double)(x) / (1 << 20))

/* Formats into a local buffer first: fprintf may allocate, and must find
 * the heap in a consistent state when it does. */
void tarn_stats_print(FILE *out) {
    tarn_heap_stats_t s;
    tarn_heap_stats(&s);
    size_t pages = 0;
    for (unsigned cls = 0; cls < TARN__CLASSES; cls++)
        pages += s.classes[cls].pages;
    char buf[1024];
    snprintf(buf, sizeof buf,
             "tarn heap: %zu heaps (%zu adopted after their thread exited)\n"
             "  allocated: %.2f MiB in live blocks; %.2f MiB of pages and blocks in use "
             "(peak %.2f MiB)\n"
             "  memory: %.2f MiB mapped, %.2f MiB committed (%.2f MiB of it unused, not yet "
             "purged), %.2f MiB resident\n"
             "  segments: %zu live (%zu cached), %zu pages in use, %zu mapped, "
             "%zu unmapped so far\n"
             "  large blocks: %zu live, %.2f MiB; huge blocks: %zu live, %.2f MiB\n"
             "  given back so far: %.2f MiB purged in %zu calls, %.2f MiB unmapped in %zu calls\n"
             "  this thread: %zu blocks of other threads kept for reuse\n"
             "  process rss: %.2f MiB\n",
             s.heaps, atomic_load(&tarn__counters.abandoned_adopted), MIB(s.allocated),
             MIB(s.in_use), MIB(s.peak_in_use), MIB(s.mapped), MIB(s.committed), MIB(s.unused),
             MIB(s.resident), s.segments, s.cached_segments, pages,
             atomic_load(&tarn__counters.segment_maps), atomic_load(&tarn__counters.segment_unmaps),
             s.large_blocks, MIB(s.large_bytes), s.huge_blocks, MIB(s.huge_bytes),
             MIB(s.purged_bytes), s.purges, MIB(s.unmapped_bytes), s.unmaps,
             tarn__foreign_held(tarn__tls_heap), MIB(tarn__os_rss()));
    fputs(buf, out);
}
