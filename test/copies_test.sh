#!/bin/bash
# One copy of tarn per process: every way of linking docs/packaging.md
# describes, built against build/ and run. The program asks tarn for the
# usable size of a block from malloc and frees it with tarn_free: that works
# only when malloc and the tarn_ functions are the same copy. The combinations
# that load two copies must stop at load time with the "two copies" line
# naming both files (src/heap/instance.c), before main runs.
set -u
cd "$(dirname "$0")/.."
b=$PWD/build
for f in libtarn.so libtarn-override.so libtarn.a libtarn-override.a; do
    [ -e "$b/$f" ] || { echo "   missing $b/$f (make all)"; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

cat >"$work/app.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <tarn.h>
int main(void) {
    void *p = malloc(100);
    size_t n = tarn_usable_size(p);
    tarn_free(p);
    printf("usable %zu\n", n);
    return n >= 100 ? 0 : 1;
}
C

# build NAME LINK-ARGS...: the program linked as described.
build() {
    local name=$1; shift
    cc -std=c11 -Iinclude "$work/app.c" -o "$work/$name" "$@" -Wl,-rpath,"$b" -lpthread ||
        { echo "   $name: link failed"; fail=1; }
    # Each shared library named must really be loaded, or the case tests nothing.
    local lib
    for lib in tarn tarn-override; do
        if [[ " $* " == *" -l$lib "* ]] && ! readelf -d "$work/$name" | grep -q "NEEDED.*lib$lib.so"; then
            echo "   $name: lib$lib.so not loaded"; fail=1
        fi
    done
}

# works NAME [ENV...]: the program runs with one heap.
works() {
    local name=$1; shift
    local out
    out=$(env "$@" "$work/$name" 2>&1); local rc=$?
    if [ $rc -eq 0 ] && [[ "$out" == "usable "* ]]; then echo "   $name: one heap ($out)"
    else echo "   $name: expected one heap, got exit $rc: $out"; fail=1; fi
}

# refused NAME API-FILE: stops at load with the two-copies line naming both.
refused() {
    local name=$1 api=$2
    local out
    out=$("$work/$name" 2>&1); local rc=$?
    local want="tarn: two copies of tarn in this process: malloc comes from libtarn-override.so.0, tarn_ functions from $api"
    if [ $rc -ne 0 ] && [[ "$out" == "$want"* ]] && [[ "$out" != *usable* ]]; then
        echo "   $name: refused at load (exit $rc)"
    else echo "   $name: expected the two-copies report, got exit $rc: $out"; fail=1; fi
}

build override-shared -L"$b" -ltarn-override
works override-shared
build override-static "$b/libtarn-override.a"
works override-static
build override-then-tarn -L"$b" -Wl,--no-as-needed -ltarn-override -ltarn
works override-then-tarn
build tarn-shared -L"$b" -ltarn
works tarn-shared LD_PRELOAD="$b/libtarn-override.so"
# --no-as-needed: gcc here passes --as-needed, which would drop a libtarn.so
# whose every symbol the static copy already defines, and test nothing.
build static-override-shared-tarn "$b/libtarn-override.a" -L"$b" -Wl,--no-as-needed -ltarn
works static-override-shared-tarn
# A fully static program: no loader, nothing to preload; the archive is its malloc.
build fully-static -static "$b/libtarn-override.a"
works fully-static

build tarn-then-override -L"$b" -Wl,--no-as-needed -ltarn -ltarn-override
refused tarn-then-override libtarn.so.0
build static-tarn-shared-override "$b/libtarn.a" -L"$b" -ltarn-override
refused static-tarn-shared-override "static-tarn-shared-override (linked into the program)"

# Without the override, malloc is glibc's and tarn reports its block as
# foreign: the program above is wrong there, and says so.
build tarn-alone -L"$b" -ltarn
build tarn-static-alone "$b/libtarn.a"
for name in tarn-alone tarn-static-alone; do
    out=$("$work/$name" 2>&1)
    if [[ "$out" == *"which tarn did not allocate"* ]]; then echo "   $name: glibc's block reported foreign"
    else echo "   $name: expected a foreign-pointer report, got: $out"; fail=1; fi
done

exit $fail
