#!/bin/bash
# The heap's options on real programs under LD_PRELOAD: TARN_OPTIONS=stats
# prints the statistics table at exit with the figures the program left,
# verbose prints the options in force once, a bad item warns once, and
# purge_delay_ms changes when unused pages go back to the OS.
set -u
cd "$(dirname "$0")/.."
lib=$PWD/build/libtarn-override.so
[ -f "$lib" ] || { echo "   missing $lib (make all)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "   FAIL: $1"; fail=1; }

# Keeps 37 blocks of 2,900 bytes (the 3,072-byte class) and one of 1 MiB
# (a large block) live at exit; writes nothing itself. Built with -O0 here:
# gcc may drop a malloc whose block is never used.
cat >"$work/keep.c" <<'C'
#include <stdlib.h>
int main(void) {
    static void *keep[37];
    for (int i = 0; i < 37; i++) keep[i] = malloc(2900);
    static void *big;
    big = malloc(1 << 20);
    return keep[36] && big ? 0 : 1;
}
C
# Frees 256 blocks of 2,000 bytes while 16 MiB stay live (well inside the
# purge budget, so only the delay decides), sleeps argv[1] ms, then takes a
# large block (which checks the delay) and prints the bytes purged meanwhile.
cat >"$work/purge.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <tarn/heap.h>
int main(int argc, char **argv) {
    void (*stats)(tarn_heap_stats_t *) =
        (void (*)(tarn_heap_stats_t *))dlsym(RTLD_DEFAULT, "tarn_heap_stats");
    if (!stats || argc < 2) return 2;
    static void *keep[16384], *tmp[256];
    for (int i = 0; i < 16384; i++) keep[i] = malloc(1000);
    for (int i = 0; i < 256; i++) tmp[i] = malloc(2000);
    for (int i = 0; i < 256; i++) free(tmp[i]);
    static tarn_heap_stats_t before, after;
    stats(&before);
    usleep(atoi(argv[1]) * 1000);
    void *big = malloc(1 << 20);
    stats(&after);
    printf("%zu\n", after.purged_bytes - before.purged_bytes);
    free(big);
    return 0;
}
C
cc -O0 -o "$work/keep" "$work/keep.c" && cc -O0 -Iinclude -o "$work/purge" "$work/purge.c" -ldl ||
    { echo "   cannot build the test programs"; exit 1; }

# stats: the table, a row for the 3,072-byte class with its 37 live blocks,
# the large block, and no table without the option.
out=$(TARN_OPTIONS=stats LD_PRELOAD=$lib "$work/keep" 2>&1)
echo "$out" | grep -q "^tarn: heap statistics at exit (pid [0-9]*)$" || bad "stats: no table header"
echo "$out" | grep -q "class *block *live blocks *live bytes *free blocks *pages" || bad "stats: no column line"
echo "$out" | grep -Eq "^ +[0-9]+ +3072 +37 +111\.0 KiB +[0-9]+ +2$" ||
    bad "stats: the 3072-byte class does not show 37 live blocks: $(echo "$out" | grep 3072)"
echo "$out" | grep -q "large blocks (own segment): 1 live, 1.0 MiB" || bad "stats: the large block is missing"
echo "$out" | grep -q "calls: not counted" || bad "stats: says nothing of the calls"
[ "$(echo "$out" | grep -c 'heap statistics')" = 1 ] || bad "stats: not printed exactly once"
[ -z "$(LD_PRELOAD=$lib "$work/keep" 2>&1)" ] || bad "a table without TARN_OPTIONS=stats"
[ $fail -eq 0 ] && echo "   stats: the table at exit shows the program's 37 blocks of 3072 B and its large block"

# verbose: the options in force, once; a bad item: one warning, the rest applied.
out=$(TARN_OPTIONS=verbose,purge_delay_ms=7,nosuch LD_PRELOAD=$lib "$work/keep" 2>&1)
[ "$(echo "$out" | grep -c 'options in force')" = 1 ] || bad "verbose: not once: $out"
echo "$out" | grep -q "options in force (pid [0-9]*): purge_delay_ms=7,large_delay_ms=250,purge_budget=3,verbose=1," ||
    bad "verbose: wrong options: $out"
[ "$(echo "$out" | grep -c 'unknown option "nosuch"; valid: purge_delay_ms,')" = 1 ] ||
    bad "a bad item does not warn exactly once: $out"
[ $fail -eq 0 ] && echo "   verbose and a bad item: one line each"

# purge_delay_ms: after a 40 ms pause the freed pages are gone with the
# default 10 ms, kept with 1000 ms; with 0 they go at once, without a pause.
p_default=$(LD_PRELOAD=$lib "$work/purge" 40)
p_long=$(TARN_OPTIONS=purge_delay_ms=1000 LD_PRELOAD=$lib "$work/purge" 40)
p_zero=$(TARN_OPTIONS=purge_delay_ms=0 LD_PRELOAD=$lib "$work/purge" 0)
if [ "${p_default:-0}" -gt 0 ] && [ "$p_long" = 0 ] && [ "${p_zero:-0}" -gt 0 ]; then
    echo "   purge_delay_ms: bytes purged after a 40 ms pause: $p_default (default 10 ms)," \
        "$p_long (1000 ms); with no pause: $p_zero (0 ms)"
else
    bad "purge_delay_ms has no effect: $p_default / $p_long / $p_zero"
fi
exit $fail
