/* The table of this process's mappings, read from /proc/self/maps: the scan
 * reads only ranges it shows readable, so an unmapped hole or a guard page
 * in a root or a block cannot fault. */
#include <errno.h>

#include "debug/scan_internal.h"

/* Grows the text buffer to the file's size: the file is read whole before
 * it is parsed, each read from offset 0 again (the kernel builds it as it is
 * read), until one pass fits. */
static char *read_whole(size_t *len, size_t *mapped) {
    size_t cap = 64 << 10;
    for (;;) {
        char *buf = tarn__os_map(cap);
        if (!buf) return NULL;
        int fd = tarn__os_open("/proc/self/maps", false);
        if (fd < 0) {
            tarn__os_unmap(buf, cap);
            return NULL;
        }
        size_t n = 0;
        long r;
        while (n < cap && (r = tarn__os_read(fd, buf + n, cap - n)) > 0)
            n += (size_t)r;
        tarn__os_close(fd);
        if (n < cap) {
            *len = n;
            *mapped = cap;
            return buf;
        }
        tarn__os_unmap(buf, cap);
        cap *= 2;
    }
}

static uintptr_t parse_hex(const char **s, const char *end) {
    uintptr_t v = 0;
    for (int d; *s < end && (d = tarn__scan_hex_digit(**s)) >= 0; (*s)++)
        v = v << 4 | (uintptr_t)d;
    return v;
}

/* One line: "start-end perms offset dev inode [path]". A line with no path
 * is anonymous memory; "[heap]" and thread stacks are too, but "[vvar]" and
 * "[vdso]" are the kernel's, and reading vvar pages can fault. */
static void parse_line(const char *s, const char *end, tarn__scan_map_t *m) {
    m->start = parse_hex(&s, end);
    s++;
    m->end = parse_hex(&s, end);
    s++;
    m->flags = 0;
    if (end - s >= 4) {
        if (s[0] == 'r') m->flags |= TARN__MAP_READ;
        if (s[1] == 'w') m->flags |= TARN__MAP_WRITE;
        if (s[0] == '-' && s[1] == '-' && s[2] == '-') m->flags |= TARN__MAP_GUARD;
    }
    for (int field = 0; field < 4 && s < end; field++) { /* perms offset dev inode */
        while (s < end && *s != ' ')
            s++;
        while (s < end && *s == ' ')
            s++;
    }
    if (s == end || (end - s >= 6 && s[0] == '[' && (s[1] == 'h' || s[1] == 's' || s[1] == 'a')))
        m->flags |= TARN__MAP_ANON; /* no path, [heap], [stack], [anon:name] */
    if (end - s >= 6 && s[0] == '[' && s[1] == 's') m->flags |= TARN__MAP_STACK;
    if (end - s >= 2 && s[0] == '[' && s[1] == 'v') m->flags |= TARN__MAP_KERNEL;
}

int tarn__scan_maps_read(tarn__scan_maps_t *m) {
    size_t len, text_mapped;
    char *text = read_whole(&len, &text_mapped);
    if (!text) return -1;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    m->mapped = (lines + 1) * sizeof *m->v;
    m->v = tarn__os_map(m->mapped);
    if (!m->v) {
        tarn__os_unmap(text, text_mapped);
        return -1;
    }
    m->text = text;
    m->text_mapped = text_mapped;
    m->n = 0;
    for (const char *s = text, *end = text + len; s < end;) {
        const char *eol = s;
        while (eol < end && *eol != '\n')
            eol++;
        parse_line(s, eol, &m->v[m->n]);
        if (m->v[m->n].end > m->v[m->n].start) m->n++;
        s = eol + 1;
    }
    return 0;
}

void tarn__scan_maps_free(tarn__scan_maps_t *m) {
    tarn__os_unmap(m->text, m->text_mapped);
    tarn__os_unmap(m->v, m->mapped);
    m->v = NULL;
    m->n = 0;
}

const tarn__scan_map_t *tarn__scan_maps_from(const tarn__scan_maps_t *m, uintptr_t addr) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].end <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n ? &m->v[lo] : NULL;
}

const tarn__scan_map_t *tarn__scan_maps_find(const tarn__scan_maps_t *m, uintptr_t addr) {
    const tarn__scan_map_t *map = tarn__scan_maps_from(m, addr);
    return map && map->start <= addr ? map : NULL;
}
