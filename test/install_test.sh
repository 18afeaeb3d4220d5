#!/bin/bash
# make install into a temporary prefix, used the ways a packager or a user
# would: the files and links, the SONAMEs, pkg-config (tarn.pc and
# tarn-override.pc, shared and static), a CMake project using tarn::tarn and
# tarn::override, DESTDIR staging, and make uninstall leaving nothing behind.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# Each part prints ok with its name only if nothing failed since the last ok.
part_fail=0
ok() { [ $part_fail -eq 0 ] && echo "   ok: $1"; part_fail=0; }
bad() { echo "   FAIL: $1"; fail=1; part_fail=1; }

ver=$(sed -n 's/^#define TARN_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\)$/\2/p' include/tarn/version.h |
    paste -sd.)
major=${ver%%.*}
p=$tmp/usr
# Something that was there before and must survive uninstall.
mkdir -p "$p/lib/pkgconfig" "$p/include"
echo keep >"$p/lib/pkgconfig/other.pc"
find "$p" | sort >"$tmp/before"
make -s install PREFIX="$p" >/dev/null || { echo "   make install failed"; exit 1; }

# Files, links and SONAMEs.
for l in libtarn libtarn-override; do
    [ -f "$p/lib/$l.so.$ver" ] && [ ! -L "$p/lib/$l.so.$ver" ] || bad "$l.so.$ver is not a file"
    [ "$(readlink "$p/lib/$l.so.$major")" = "$l.so.$ver" ] || bad "$l.so.$major -> $l.so.$ver"
    [ "$(readlink "$p/lib/$l.so")" = "$l.so.$major" ] || bad "$l.so -> $l.so.$major"
    [ "$(readlink "build/$l.so.$major")" = "$l.so.$ver" ] || bad "build/$l.so.$major"
    readelf -d "$p/lib/$l.so.$ver" | grep -q "SONAME.*\[$l.so.$major\]" || bad "$l SONAME"
    [ -f "$p/lib/$l.a" ] || bad "$l.a missing"
done
for h in include/tarn/*.h; do cmp -s "$h" "$p/include/tarn/${h##*/}" || bad "$h not installed"; done
ok "libraries $ver with SONAME .so.$major and links, headers"

# The tarn command finds the installed library relative to itself.
[ -x "$p/bin/tarn" ] || bad "bin/tarn not installed"
[ "$(cd / && "$p/bin/tarn" run -- sh -c 'echo "$LD_PRELOAD"')" = "$p/bin/../lib/libtarn-override.so" ] ||
    bad "installed tarn does not preload the installed libtarn-override.so"
ok "the tarn command, preloading the installed library"

export PKG_CONFIG_PATH=$p/lib/pkgconfig
for pc in tarn tarn-override; do
    [ "$(pkg-config --modversion $pc)" = "$ver" ] || bad "$pc.pc version is not $ver"
done

cat >"$tmp/pools.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <tarn.h>
int main(void) {
    tarn_fixed_t *pool = tarn_fixed_create(40, 16, 16);
    void *p = tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, p);
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st);
    tarn_fixed_destroy(pool);
    char *s = tarn_malloc(10);
    size_t n = tarn_usable_size(s);
    tarn_free(s);
    printf("%zu %zu %s\n", st.in_use, st.blocks, tarn_version());
    return st.blocks == 1 && n >= 10 && strcmp(tarn_version(), TARN_VERSION) == 0 ? 0 : 1;
}
C
# Calls no allocator function itself, only libc's strdup, which mallocs
# inside libc (the block is not freed: free would be a call of the
# program's own). The override must replace that malloc all the same (the
# .pc and the CMake target keep the library under --as-needed); tarn's usable
# size is looked up at run time.
cat >"$tmp/override.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    char *s = strdup("override");
    size_t (*usable)(const void *) = (size_t (*)(const void *))dlsym(RTLD_DEFAULT, "tarn_usable_size");
    size_t n = usable ? usable(s) : 0;
    printf("%zu\n", n);
    return n >= 9 ? 0 : 1;
}
C
# shellcheck disable=SC2046
{
    cc -std=c11 "$tmp/pools.c" -o "$tmp/pools-shared" $(pkg-config --cflags --libs tarn) &&
        cc -std=c11 -static "$tmp/pools.c" -o "$tmp/pools-static" \
            $(pkg-config --cflags --static --libs tarn) &&
        cc -std=c11 "$tmp/override.c" -o "$tmp/override-shared" \
            $(pkg-config --cflags --libs tarn-override) &&
        cc -std=c11 "$tmp/pools.c" -o "$tmp/override-pools" $(pkg-config --cflags --libs tarn-override)
} || bad "pkg-config builds"
[ "$(LD_LIBRARY_PATH=$p/lib "$tmp/pools-shared")" = "0 1 $ver" ] || bad "tarn.pc, shared"
[ "$("$tmp/pools-static")" = "0 1 $ver" ] || bad "tarn.pc, static"
LD_LIBRARY_PATH=$p/lib "$tmp/override-shared" >/dev/null || bad "tarn-override.pc: malloc is not tarn's"
[ "$(LD_LIBRARY_PATH=$p/lib "$tmp/override-pools")" = "0 1 $ver" ] || bad "tarn-override.pc, tarn_ API"
# A static program that calls no allocator itself (libc's strdup does): the
# .pc's -u malloc must still bring tarn's malloc, and with it the heap, in
# place of glibc's (two would not link).
printf '#define _GNU_SOURCE\n#include <stdio.h>\n#include <string.h>\nint main(void) { return puts(strdup("static")) < 0; }\n' \
    >"$tmp/strdup.c"
# shellcheck disable=SC2046
cc -std=c11 -static "$tmp/strdup.c" -o "$tmp/override-static" $(pkg-config --static --libs tarn-override) &&
    nm "$tmp/override-static" | grep -q ' T tarn_malloc$' && [ "$("$tmp/override-static")" = static ] ||
    bad "tarn-override.pc, -static: tarn's malloc not linked in"
ok "pkg-config: tarn.pc (shared, static) and tarn-override.pc (shared, static)"

# CMake: one project, a program per target.
mkdir -p "$tmp/cm"
cp "$tmp/pools.c" "$tmp/override.c" "$tmp/cm/"
cat >"$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(use_tarn C)
find_package(tarn CONFIG REQUIRED)
add_executable(pools pools.c)
target_link_libraries(pools PRIVATE tarn::tarn)
add_executable(override override.c)
target_link_libraries(override PRIVATE tarn::override)
CM
if cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$p" >"$tmp/cmake.log" 2>&1 &&
    cmake --build "$tmp/cm/build" >>"$tmp/cmake.log" 2>&1; then
    # CMake sets the run path to the installed libraries: no LD_LIBRARY_PATH.
    [ "$("$tmp/cm/build/pools")" = "0 1 $ver" ] || bad "cmake tarn::tarn program"
    "$tmp/cm/build/override" >/dev/null || bad "cmake tarn::override: malloc is not tarn's"
    readelf -d "$tmp/cm/build/override" | grep -q "NEEDED.*libtarn-override.so.$major" ||
        bad "cmake tarn::override program does not load libtarn-override.so.$major"
    ok "cmake: find_package(tarn), tarn::tarn and tarn::override"
else
    bad "cmake project"; tail -20 "$tmp/cmake.log"
fi
# The version file: the same major and not older is accepted, else refused.
mkdir -p "$tmp/cv"
minor=$(echo "$ver" | cut -d. -f2)
for req in "$major.0:yes" "$ver:yes" "$major.$((minor + 1)):no" "$((major + 1)):no"; do
    v=${req%:*} expect=${req#*:}
    printf 'cmake_minimum_required(VERSION 3.13)\nproject(v NONE)\nfind_package(tarn %s CONFIG REQUIRED)\n' \
        "$v" >"$tmp/cv/CMakeLists.txt"
    rm -rf "$tmp/cv/build"
    if cmake -S "$tmp/cv" -B "$tmp/cv/build" -DCMAKE_PREFIX_PATH="$p" >/dev/null 2>&1; then got=yes
    else got=no; fi
    [ "$got" = "$expect" ] || bad "find_package(tarn $v) with $ver installed: $got, expected $expect"
done
ok "cmake: tarnConfigVersion.cmake accepts $major.0 and $ver, refuses newer"

# uninstall removes exactly what install added, but for lib/cmake and bin,
# directories other packages share (as include/, lib/ and lib/pkgconfig/).
make -s uninstall PREFIX="$p" >/dev/null || bad "make uninstall"
find "$p" | grep -vx "$p/lib/cmake\|$p/bin" | sort >"$tmp/after"
if cmp -s "$tmp/before" "$tmp/after"; then ok "uninstall left the prefix as it was"
else bad "uninstall left:"; diff "$tmp/before" "$tmp/after" | head; fi

# DESTDIR stages under another root, here with a multiarch LIBDIR; the files
# name the final prefix, and the CMake package works from the staged tree
# (its paths are relative to where it lies).
stage=$tmp/stage lib=/opt/tarn/lib/x86_64-linux-gnu
make -s install DESTDIR="$stage" PREFIX=/opt/tarn LIBDIR=$lib >/dev/null || bad "install with DESTDIR"
[ -f "$stage$lib/libtarn.so.$ver" ] && [ -f "$stage/opt/tarn/include/tarn.h" ] || bad "DESTDIR layout"
grep -qx "libdir=$lib" "$stage$lib/pkgconfig/tarn-override.pc" || bad "DESTDIR .pc libdir"
[ "$("$stage/opt/tarn/bin/tarn" run -- sh -c 'echo "$LD_PRELOAD"')" = \
    "$stage/opt/tarn/bin/../lib/x86_64-linux-gnu/libtarn-override.so" ] ||
    bad "tarn installed with LIBDIR=$lib does not find its library"
rm -rf "$tmp/cm/build"
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$stage/opt/tarn" >"$tmp/cmake.log" 2>&1 &&
    cmake --build "$tmp/cm/build" >>"$tmp/cmake.log" 2>&1 && "$tmp/cm/build/override" >/dev/null &&
    [ "$("$tmp/cm/build/pools")" = "0 1 $ver" ] || bad "cmake from the DESTDIR tree"
make -s uninstall DESTDIR="$stage" PREFIX=/opt/tarn LIBDIR=$lib >/dev/null || bad "uninstall with DESTDIR"
left=$(find "$stage" -type f -o -type l)
[ -z "$left" ] || bad "DESTDIR uninstall left: $left"
ok "DESTDIR, PREFIX and LIBDIR honoured by install and uninstall"
exit $fail
