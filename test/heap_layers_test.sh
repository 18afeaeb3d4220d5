#!/bin/bash
# Prints the call graph between the files of src/heap/ and fails if it has a
# cycle. Each file is compiled as the release library is (-O2), with gcc's
# -fcallgraph-info, so the edges are the calls left after inlining: a call
# made by an inline function of heap/internal.h counts for the file it is
# inlined into. An edge "a -> b" says a function of a.c calls one of b.c.
# Usage: test/heap_layers_test.sh [-q]   (-q: print only a cycle)
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in src/heap/*.c; do
    gcc -std=c11 -D_GNU_SOURCE -O2 -DNDEBUG -fPIC -fvisibility=hidden -Iinclude -Isrc \
        -fcallgraph-info -c "$f" -o "$tmp/$(basename "$f" .c).o"
done
# Where each function is defined: a node without "shape : ellipse" is one
# whose body is in that translation unit.
for ci in "$tmp"/*.ci; do
    file=$(basename "$ci" .ci)
    grep '^node:' "$ci" | grep -v 'shape : ellipse' |
        sed -n 's/^node: { title: "\([^"]*\)".*/\1/p' | sed "s|^|$file |"
done | sort -u -k2,2 >"$tmp/defs"
for ci in "$tmp"/*.ci; do
    file=$(basename "$ci" .ci)
    sed -n 's/^edge: { sourcename: "[^"]*" targetname: "\([^"]*\)".*/\1/p' "$ci" |
        sort -u | sed "s|^|$file |"
done | sort -k2,2 >"$tmp/calls"
join -1 2 -2 2 -o 1.1,2.1 "$tmp/calls" "$tmp/defs" | awk '$1 != $2' | sort -u >"$tmp/edges"
[ "${1:-}" = -q ] || { echo "   heap call graph (caller -> callee):"; sed 's/ / -> /; s/^/     /' "$tmp/edges"; }
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/loop"; then
    echo "   cycle in the heap's call graph:"; sed 's/^/     /' "$tmp/loop"
    exit 1
fi
echo "   heap call graph: $(wc -l <"$tmp/edges") edges between $(ls src/heap/*.c | wc -l) files, no cycle"
