#!/bin/bash
# The user's CPPFLAGS, CFLAGS and LDFLAGS reach the compiler and the linker
# beside the project's own flags, not in their place: a release build into a
# scratch directory with one observable flag of each kind.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# CPPFLAGS: a forced include whose symbol lands in every object.
echo 'static const char user_cppflags_seen[] __attribute__((used)) = "yes";' >"$tmp/marker.h"
if ! make -s -j2 O="$tmp/b" CPPFLAGS="-include $tmp/marker.h" CFLAGS=-fstack-protector-all \
    LDFLAGS=-Wl,-z,now "$tmp/b/libtarn.so" >"$tmp/log" 2>&1; then
    echo "   FAIL: build with user flags"; tail -5 "$tmp/log"; exit 1
fi
so=$tmp/b/libtarn.so
nm "$tmp/b/obj/fixed.o" | grep -q user_cppflags_seen || { echo "   FAIL: CPPFLAGS not used"; fail=1; }
nm -D "$so" | grep -q ' U __stack_chk_fail' || { echo "   FAIL: CFLAGS not used"; fail=1; }
readelf -d "$so" | grep -q 'BIND_NOW' || { echo "   FAIL: LDFLAGS not used"; fail=1; }
# The project's flags stay: internal symbols hidden, release optimisation.
nm -D "$so" | grep -q ' T tarn__report$' && { echo "   FAIL: -fvisibility=hidden lost"; fail=1; }
nm -D "$so" | grep -q ' T tarn_malloc$' || { echo "   FAIL: tarn_malloc not exported"; fail=1; }
[ $fail -eq 0 ] && echo "   CPPFLAGS, CFLAGS and LDFLAGS added to the project's flags"
exit $fail
