/* The public region API: checks its arguments, keeps the list of spans (one
 * per buffer given), and hands the work to the policy's methods. Nothing here
 * touches the OS or any memory outside the buffers. */
#include <errno.h>
#include <string.h>

#include "region/internal.h"

static const struct {
    const tarn__region_ops_t *ops;
    size_t state_size;
} policies[] = {
    [TARN_FIRST_FIT] = {&tarn__tagged_ops, sizeof(tarn__fit_state_t)},
    [TARN_NEXT_FIT] = {&tarn__tagged_ops, sizeof(tarn__fit_state_t)},
    [TARN_BEST_FIT] = {&tarn__tagged_ops, sizeof(tarn__tlsf_state_t)},
    [TARN_BUDDY] = {&tarn__buddy_ops, sizeof(tarn__buddy_state_t)},
    [TARN_TLSF] = {&tarn__tagged_ops, sizeof(tarn__tlsf_state_t)},
};
#define POLICY_COUNT (sizeof policies / sizeof policies[0])

static inline const tarn__region_ops_t *ops_of(const tarn_region_t *r) {
    return policies[r->policy].ops;
}

/* The region header starts a cache line, so the fields every operation
 * reads or writes (magic, policy, counters, span list) and TLSF's first-level
 * bitmap with the second-level bitmaps of sizes below 2 KiB share one line. */
#define HEADER_ALIGN ((size_t)64)
_Static_assert(offsetof(tarn_region_t, u.tlsf.sl_map[3]) <= HEADER_ALIGN,
               "TLSF's fl_map and sl_map[0..2] share the header's line");

/* Bytes of the region header: the common fields and this policy's state. */
static size_t header_size(tarn_policy_t policy) {
    return tarn__align_up(offsetof(tarn_region_t, u) + policies[policy].state_size,
                          TARN__REGION_ALIGN);
}

/* A bad r is reported once; callers then fail with EINVAL. */
static bool region_ok(const tarn_region_t *r, const char *op) {
    if (r) {
        /* Every operation reads these and updates the counters. */
        TARN__PROBE_INDEX(&r->magic);
        TARN__PROBE_INDEX(&r->policy);
        TARN__PROBE_INDEX(&r->used);
        TARN__PROBE_INDEX(&r->live);
        TARN__PROBE_INDEX(&r->spans);
    }
    if (tarn__likely(r && r->magic == TARN__REGION_MAGIC)) return true;
    tarn__report("%s on %p, which is not a tarn region (bad magic)", op, (const void *)r);
    return false;
}

tarn__span_t *tarn__region_span_of(const tarn_region_t *r, const void *p) {
    for (tarn__span_t *s = r->spans; s; s = s->next) {
        TARN__PROBE_INDEX(s);
        if ((const char *)p >= s->start && (const char *)p < s->end) return s;
    }
    return NULL;
}

/* Lays a span out in [lo, hi) and appends it; -1 (nothing changed) if the
 * memory is too small for the policy. */
static int span_add(tarn_region_t *r, uintptr_t lo, uintptr_t hi) {
    uintptr_t at = tarn__align_up(lo, TARN__REGION_ALIGN);
    uintptr_t start = tarn__align_up(at + sizeof(tarn__span_t), TARN__REGION_ALIGN);
    uintptr_t end = hi & ~(TARN__REGION_ALIGN - 1);
    if (hi < lo || end <= start) return -1;
    tarn__span_t *s = (tarn__span_t *)at;
    *s = (tarn__span_t){.start = (char *)start, .end = (char *)end};
    if (ops_of(r)->add(r, s) != 0) return -1;
    tarn__span_t **tail = &r->spans;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    return 0;
}

tarn_region_t *tarn_region_init(void *buf, size_t len, tarn_policy_t policy) {
    uintptr_t lo = (uintptr_t)buf, hi = lo + len;
    if (!buf || (unsigned)policy >= POLICY_COUNT || hi < lo) {
        errno = EINVAL;
        return NULL;
    }
    uintptr_t at = tarn__align_up(lo, HEADER_ALIGN);
    size_t hdr = header_size(policy);
    if (at + hdr + sizeof(tarn__span_t) > hi) {
        errno = EINVAL;
        return NULL;
    }
    tarn_region_t *r = (tarn_region_t *)at;
    memset(r, 0, hdr);
    r->policy = policy;
    if (ops_of(r)->init) ops_of(r)->init(r, len);
    if (span_add(r, at + hdr, hi) != 0) {
        errno = EINVAL;
        return NULL;
    }
    r->total = len;
    r->magic = TARN__REGION_MAGIC;
    return r;
}

/* True when [lo, hi) meets the region header or a span. */
static bool overlaps(const tarn_region_t *r, uintptr_t lo, uintptr_t hi) {
    uintptr_t h = (uintptr_t)r;
    if (lo < h + header_size(r->policy) && h < hi) return true;
    for (const tarn__span_t *s = r->spans; s; s = s->next)
        if (lo < (uintptr_t)s->end && (uintptr_t)s < hi) return true;
    return false;
}

int tarn_region_add(tarn_region_t *r, void *buf, size_t len) {
    uintptr_t lo = (uintptr_t)buf, hi = lo + len;
    if (!region_ok(r, "tarn_region_add") || !buf || hi < lo || overlaps(r, lo, hi) ||
        span_add(r, lo, hi) != 0) {
        errno = EINVAL;
        return -1;
    }
    r->total += len;
    return 0;
}

void *tarn_region_alloc(tarn_region_t *r, size_t size) {
    if (!region_ok(r, "tarn_region_alloc")) {
        errno = EINVAL;
        return NULL;
    }
    return ops_of(r)->alloc(r, size, TARN__REGION_ALIGN);
}

void *tarn_region_alloc_aligned(tarn_region_t *r, size_t size, size_t align) {
    if (!region_ok(r, "tarn_region_alloc_aligned") || !tarn__is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return ops_of(r)->alloc(r, size, align < TARN__REGION_ALIGN ? TARN__REGION_ALIGN : align);
}

void tarn_region_free(tarn_region_t *r, void *p) {
    if (!p || !region_ok(r, "tarn_region_free")) return;
    tarn__span_t *s = tarn__region_span_of(r, p);
    if (tarn__unlikely(!s)) {
        tarn__report("free of %p, which is not from region %p", p, (void *)r);
        return;
    }
    ops_of(r)->free(r, s, p);
}

void *tarn_region_realloc(tarn_region_t *r, void *p, size_t size) {
    if (!p) return tarn_region_alloc(r, size);
    if (!region_ok(r, "tarn_region_realloc")) {
        errno = EINVAL;
        return NULL;
    }
    tarn__span_t *s = tarn__region_span_of(r, p);
    size_t old = 0;
    if (!s)
        tarn__report("realloc of %p, which is not from region %p", p, (void *)r);
    else
        old = ops_of(r)->usable(r, s, p, "realloc");
    if (!old) {
        errno = EINVAL;
        return NULL;
    }
    if (ops_of(r)->resize(r, s, p, size)) return p;
    void *q = ops_of(r)->alloc(r, size, TARN__REGION_ALIGN);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    ops_of(r)->free(r, s, p);
    return q;
}

int tarn_region_check(const tarn_region_t *r) {
    if (!region_ok(r, "tarn_region_check")) return -1;
    return ops_of(r)->check(r);
}

void tarn_region_stats(const tarn_region_t *r, tarn_region_stats_t *out) {
    memset(out, 0, sizeof *out);
    if (!region_ok(r, "tarn_region_stats")) return;
    out->total = r->total;
    out->used = r->used;
    out->allocations = r->live;
    ops_of(r)->walk(r, out);
    out->overhead = out->total - out->used - out->free;
    if (out->free) out->fragmentation = 1.0 - (double)out->largest_free / (double)out->free;
}
