#!/bin/bash
# glibc's companion functions under LD_PRELOAD: a program built against
# glibc's headers alone calls each of them and checks that it reached tarn's
# heap (the symbol comes from libtarn-override.so, the block counts in
# mallinfo2, a block from one family frees through another), that
# mallinfo2, mallinfo, malloc_info and malloc_stats agree, and what mallopt
# returns. Then heap.h's attributes: the compiler sees tarn_malloc's sizes
# (object size, _FORTIFY_SOURCE) and warns on an unused realloc result.
set -u
cd "$(dirname "$0")/.."
lib=$PWD/build/libtarn-override.so
[ -f "$lib" ] || { echo "   missing $lib (make all)"; exit 1; }
[ -f build/libtarn.a ] || { echo "   missing build/libtarn.a (make all)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

cat >"$work/companions.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exported by libc.so (not declared in its headers); the others are not
 * there to link against (cfree is a compat symbol, __posix_memalign is
 * internal, the sized frees are C23's) and are looked up by name. */
void *__libc_malloc(size_t);
void __libc_free(void *);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void *__libc_valloc(size_t);
void *__libc_pvalloc(size_t);

static int failures;
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAIL line %d: %s: ", __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static size_t in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

/* The symbol the process calls by that name is tarn's. */
static void from_tarn(const char *name) {
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, name);
    CHECK(f && dladdr(f, &info) && strstr(info.dli_fname, "libtarn-override"), "%s from %s",
          name, f && dladdr(f, &info) ? info.dli_fname : "nowhere");
}

/* p came from tarn: mallinfo2 counted its usable size. */
static void *counted(void *p, size_t before, const char *what) {
    CHECK(p != NULL, "%s", what);
    CHECK(in_use() == before + malloc_usable_size(p), "%s: in use %zu -> %zu, usable %zu", what,
          before, in_use(), malloc_usable_size(p));
    return p;
}

static void *leave_blocks(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) CHECK(malloc(1000) != NULL, "thread block");
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf); /* stdio allocates nothing later */
    const char *names[] = {"__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
                           "__libc_memalign", "__libc_valloc", "__libc_pvalloc",
                           "__posix_memalign", "cfree", "free_sized", "free_aligned_sized",
                           "mallinfo", "mallinfo2", "malloc_info", "malloc_stats", "mallopt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) from_tarn(names[i]);
    void (*cfree_)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    void (*free_sized_)(void *, size_t) =
        (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    void (*free_aligned_sized_)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    int (*posix_memalign_)(void **, size_t, size_t) =
        (int (*)(void **, size_t, size_t))dlsym(RTLD_DEFAULT, "__posix_memalign");

    size_t base = in_use();
    char *a = counted(__libc_malloc(100), base, "__libc_malloc");
    CHECK(malloc_usable_size(a) == 112, "tarn's class of 100 bytes holds 112: %zu",
          malloc_usable_size(a));
    size_t b0 = in_use();
    char *b = counted(__libc_calloc(10, 30), b0, "__libc_calloc");
    for (int i = 0; i < 300; i++) CHECK(b[i] == 0, "calloc byte %d", i);
    size_t c0 = in_use();
    char *c = counted(__libc_memalign(24, 100), c0, "__libc_memalign");
    CHECK((uintptr_t)c % 32 == 0, "memalign(24) rounds up to 32: %p", (void *)c);
    size_t d0 = in_use();
    char *d = counted(__libc_valloc(100), d0, "__libc_valloc");
    CHECK((uintptr_t)d % 4096 == 0, "valloc is page aligned");
    size_t e0 = in_use();
    char *e = counted(__libc_pvalloc(100), e0, "__libc_pvalloc");
    CHECK((uintptr_t)e % 4096 == 0 && malloc_usable_size(e) >= 4096, "pvalloc: a whole page");
    size_t f0 = in_use();
    void *f = NULL;
    CHECK(posix_memalign_(&f, 64, 100) == 0, "__posix_memalign");
    counted(f, f0, "__posix_memalign");
    CHECK((uintptr_t)f % 64 == 0, "aligned");
    void *g = (void *)1;
    CHECK(posix_memalign_(&g, 24, 100) == EINVAL && g == (void *)1, "posix_memalign(24) is EINVAL");
    strcpy(a, "contents");
    size_t r0 = in_use() - malloc_usable_size(a);
    a = counted(__libc_realloc(a, 5000), r0, "__libc_realloc");
    CHECK(!strcmp(a, "contents"), "realloc keeps the contents");
    size_t h0 = in_use();
    char *h = counted(__libc_malloc(8 << 20), h0, "__libc_malloc, huge");
    CHECK(mallinfo2().hblks >= 1 && mallinfo2().hblkhd >= (8u << 20), "huge block in hblkhd");

    /* Across the families: each frees what another allocated. */
    char *m = malloc(200), *n = __libc_malloc(200), *o = calloc(1, 200);
    char *p = malloc(300), *q = aligned_alloc(256, 1000);
    __libc_free(m);
    free(n);
    cfree_(o);
    free_sized_(p, 300);
    free_aligned_sized_(q, 256, 1000);
    free(a);
    __libc_free(b);
    cfree_(c);
    free(d);
    free(e);
    free(f);
    free(h);
    CHECK(in_use() == base, "every block freed: in use %zu, was %zu", in_use(), base);

    /* mallinfo's int fields say the same as mallinfo2's. */
    struct mallinfo2 m2 = mallinfo2();
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m1 = mallinfo();
    CHECK((size_t)m1.uordblks == m2.uordblks && (size_t)m1.arena == m2.arena &&
              (size_t)m1.hblkhd == m2.hblkhd && (size_t)m1.fordblks == m2.fordblks,
          "mallinfo %d %d against mallinfo2 %zu %zu", m1.uordblks, m1.arena, m2.uordblks, m2.arena);

    /* mallopt: what tarn takes, and M_TRIM_THRESHOLD's effect. */
    CHECK(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1, "M_MMAP_THRESHOLD");
    CHECK(mallopt(M_ARENA_MAX, 2) == 1, "M_ARENA_MAX");
    CHECK(mallopt(M_TOP_PAD, 0) == 1, "M_TOP_PAD");
    CHECK(mallopt(12345, 1) == 0, "an unknown parameter");
    CHECK(mallopt(M_TRIM_THRESHOLD, -1) == 0, "a negative threshold");
    CHECK(mallopt(M_TRIM_THRESHOLD, 64 << 20) == 1, "M_TRIM_THRESHOLD");
    static void *v[8192];
    for (int i = 0; i < 8192; i++) v[i] = malloc(1000);
    for (int i = 0; i < 8192; i++) free(v[i]);
    CHECK(mallinfo2().keepcost >= (6u << 20), "64 MiB floor: %zu bytes kept", mallinfo2().keepcost);
    CHECK(mallopt(M_TRIM_THRESHOLD, 128 << 10) == 1, "M_TRIM_THRESHOLD back");
    malloc_trim(0);
    CHECK(mallinfo2().keepcost < (1u << 20), "trimmed: %zu bytes kept", mallinfo2().keepcost);

    /* malloc_info: glibc's XML, with what mallinfo2 says just before and after. */
    CHECK(malloc_info(1, stdout) == EINVAL, "malloc_info with options");
    FILE *xml = fopen(argv[1], "w");
    static char xmlbuf[1 << 16];
    setvbuf(xml, xmlbuf, _IOFBF, sizeof xmlbuf);
    struct mallinfo2 before = mallinfo2();
    CHECK(malloc_info(0, xml) == 0, "malloc_info");
    struct mallinfo2 after = mallinfo2();
    CHECK(!memcmp(&before, &after, sizeof before), "quiet between the two");
    printf("arena=%zu ordblks=%zu hblks=%zu hblkhd=%zu uordblks=%zu fordblks=%zu\n", after.arena,
           after.ordblks, after.hblks, after.hblkhd, after.uordblks, after.fordblks);
    fclose(xml);

    /* malloc_stats counts what an exited thread left. */
    pthread_t t;
    pthread_create(&t, NULL, leave_blocks, NULL);
    pthread_join(t, NULL);
    fflush(stdout);
    malloc_stats();
    return failures != 0;
}
C
if ! cc -O1 -Wall -Wextra -Werror -o "$work/companions" "$work/companions.c" -lpthread 2>"$work/cc.err"; then
    echo "   companions.c did not build:"; cat "$work/cc.err"; fail=1
else
    LD_PRELOAD=$lib "$work/companions" "$work/info.xml" >"$work/out" 2>"$work/err"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "   companions under LD_PRELOAD failed ($rc):"; cat "$work/err" | head -20; fail=1
    else
        echo "   every companion function is tarn's; blocks free across families; mallopt as documented"
    fi
    # The XML parses and its totals are mallinfo2's.
    if python3 - "$work/info.xml" "$work/out" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
mi = dict(kv.split("=") for kv in open(sys.argv[2]).read().split())
mi = {k: int(v) for k, v in mi.items()}
assert root.tag == "malloc" and root.get("version") == "1", root.tag
heap = root.find("heap")
assert heap is not None and heap.get("nr") == "0"
tot = {t.get("type"): t for t in root.findall("total")}
def check(what, got, want):
    assert int(got) == want, "%s: %s in the XML, %d in mallinfo2" % (what, got, want)
check("rest count", tot["rest"].get("count"), mi["ordblks"])
check("rest size", tot["rest"].get("size"), mi["fordblks"])
check("mmap count", tot["mmap"].get("count"), mi["hblks"])
check("mmap size", tot["mmap"].get("size"), mi["hblkhd"])
check("heap system", heap.find("system[@type='current']").get("size"), mi["arena"])
system = {s.get("type"): int(s.get("size")) for s in root.findall("system")}
assert system["max"] >= system["current"] >= mi["arena"], system
sizes = heap.find("sizes").findall("size")
assert sizes, "free blocks listed by class"
check("free blocks by class", sum(int(s.get("count")) for s in sizes), mi["ordblks"])
PY
    then echo "   malloc_info: the XML parses, its totals are mallinfo2's"
    else echo "   malloc_info's XML does not match mallinfo2"; fail=1
    fi
    # malloc_stats: glibc's lines, tarn's lines, and the exited thread's 1000 blocks of 1008 bytes.
    inuse=$(awk '/^Total/ {t = 1} t && /^in use bytes/ {print $5; exit}' "$work/err")
    if grep -q '^Arena 0:' "$work/err" && grep -q '^tarn heap:' "$work/err" &&
        [ "${inuse:-0}" -ge 1008000 ]; then
        echo "   malloc_stats: glibc's layout and tarn's, in use $inuse bytes with the exited thread's"
    else
        echo "   malloc_stats output is not as expected:"; cat "$work/err"; fail=1
    fi
fi

# heap.h's attributes, at -O2 with _FORTIFY_SOURCE as a user builds.
cat >"$work/attrs.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <tarn.h>
int main(int argc, char **argv) {
    (void)argv;
    char *p = tarn_malloc(10), *q = tarn_calloc(4, 5), *r = tarn_aligned_alloc(64, 48);
    size_t n = (size_t)argc * 10;
    char *s = tarn_malloc(n);
    int ok = __builtin_object_size(p, 0) == 10 && __builtin_object_size(q, 0) == 20 &&
             __builtin_object_size(r, 0) == 48 && __builtin_dynamic_object_size(s, 0) == n &&
             __builtin_assume_aligned(r, 64) == r;
    printf("%s\n", ok ? "sizes seen" : "sizes not seen");
    if (argc > 1) memcpy(p, argv[1], strlen(argv[1])); /* _FORTIFY_SOURCE checks this */
    tarn_free(p);
    tarn_free(q);
    tarn_free(r);
    tarn_free(s);
    return !ok;
}
C
flags="-O2 -D_FORTIFY_SOURCE=2 -Wall -Wextra -Werror -Iinclude"
if cc $flags -o "$work/attrs" "$work/attrs.c" build/libtarn.a -lpthread 2>"$work/cc.err" &&
    [ "$("$work/attrs")" = "sizes seen" ]; then
    echo "   gcc sees tarn_malloc's sizes at -O2 (__builtin_object_size, __builtin_dynamic_object_size)"
else
    echo "   gcc does not see tarn_malloc's sizes:"; cat "$work/cc.err"; fail=1
fi
{ "$work/attrs" 0123456789ABCDEF >/dev/null; rc=$?; } 2>"$work/fortify.err"
if [ $rc -eq 134 ] && grep -q 'buffer overflow detected' "$work/fortify.err"; then
    echo "   _FORTIFY_SOURCE stops a 16-byte memcpy into tarn_malloc(10)"
else
    echo "   _FORTIFY_SOURCE missed an overflow of a tarn_malloc block"; fail=1
fi
cat >"$work/unused.c" <<'C'
#include <tarn.h>
void grow(char *p) { tarn_realloc(p, 100); }
C
if cc -O2 -Wall -Werror -Iinclude -c -o "$work/unused.o" "$work/unused.c" 2>"$work/cc.err"; then
    echo "   an unused tarn_realloc result compiled without a warning"; fail=1
elif grep -q 'warn_unused_result\|Wunused-result' "$work/cc.err"; then
    echo "   an unused tarn_realloc result warns, as glibc's realloc does"
else
    echo "   unused.c failed for another reason:"; cat "$work/cc.err"; fail=1
fi

exit $fail
