#!/bin/bash
# The checking layer, build/libtarn-debug.so, on the small buggy programs of
# test/debug/ (built here with cc -g -O0), each run in a child process under
# LD_PRELOAD with TARN_OPTIONS: every report must name the problem, the
# block's address and size, and the functions of the stacks that matter.
set -u
cd "$(dirname "$0")/.."
lib=${TARN_DEBUG_LIB:-$PWD/build/libtarn-debug.so}
[ -f "$lib" ] || { echo "   missing $lib (make all)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
cc -g -O0 -pthread test/debug/bugs.c -o "$work/bugs" || exit 1

# run OPTIONS CASE: the case's output (stdout and stderr) in $out, status in $rc.
run() {
    out=$(cd "$work" && TARN_OPTIONS=$1 LD_PRELOAD=$lib ./bugs "$2" 2>&1)
    rc=$?
    name="$2 ($1)"
}
bad() {
    echo "   $name: $1"
    echo "$out" | sed 's/^/      | /' | head -40
    fail=1
}
# has TEXT: the output holds TEXT (a fixed string).
has() { grep -qF -- "$1" <<<"$out" || bad "no '$1'"; }
hasnt() { ! grep -qF -- "$1" <<<"$out" || bad "unexpected '$1'"; }
# frames TITLE F1 F2...: the stack under "  TITLE at:" starts with F1 F2...
frames() {
    local title=$1 want got
    shift
    want=$(printf '%s ' "$@")
    got=$(awk -v t="  $title at:" '$0 == t {on = 1; next} on && /^    #/ {print $2; next} on {exit}' \
        <<<"$out" | head -n $# | tr '\n' ' ')
    [ "$got" = "$want" ] || bad "'$title' stack is '$got', expected '$want'"
}
# The address the program printed after WORD.
addr() { sed -n "s/^$1 \(0x[0-9a-f]*\)$/\1/p" <<<"$out" | head -1; }
aborted() { [ "$rc" -eq 134 ] || bad "exit status $rc, expected 134 (abort)"; }

run check double_free
aborted
has "tarn: double free: $(addr block) (4 bytes)"
frames "freed again" release_twice double_free main
frames "first freed" release_twice double_free main
frames allocated double_free main

run check aba
aborted
has "tarn: double free: $(addr block) (24 bytes)"
frames "freed again" second_free aba main
frames "first freed" first_free aba main

run check interior
aborted
has "tarn: invalid free: $(addr pointer)"
has "$(addr pointer) is 8 bytes inside the block $(addr block) (32 bytes)"
frames called free_pointer interior main
frames "that block was allocated" interior main

run check stack
aborted
has "tarn: invalid free: $(addr pointer)"
has "$(addr pointer) is on this thread's stack"
frames called free_pointer on_stack main

run check global
aborted
has "$(addr pointer) is in the static data of ./bugs (global_array+16)"
frames called free_pointer in_global main

run check never
aborted
has "tarn: invalid free: 0x12345670"
has "0x12345670 was not allocated by malloc"

run check overflow
aborted
has "tarn: heap buffer overflow: byte 16 of block $(addr block) (16 bytes) overwritten"
frames found overflow main
frames allocated make_buffer overflow main

run check underflow
aborted
has "tarn: heap buffer underflow: byte -1 of block $(addr block) (16 bytes) overwritten"
frames allocated make_buffer underflow main

# Found when the block leaves the quarantine (512 bytes: 64 for each of its
# 8 shards, and one thread frees into one)...
run check,quarantine=1536 write_after_free
aborted
has "tarn: write after free: byte 3 of block $(addr block) (32 bytes) changed"
frames freed write_after_free main
frames allocated make_buffer write_after_free main
# ...and at exit when it is still held.
run check write_after_free
aborted
has "tarn: write after free: byte 3 of block $(addr block) (32 bytes) changed"

run check realloc_freed
aborted
has "tarn: realloc of a freed block: $(addr block) (16 bytes)"
frames called realloc_freed main
frames "first freed" realloc_freed main
frames allocated make_buffer realloc_freed main

run check usable_freed
aborted
has "tarn: malloc_usable_size of a freed block: $(addr block) (16 bytes)"
frames called usable_freed main

# continue: each problem once (the double free in a loop of three is one
# problem), the program goes on, a summary counts them, the status is 1.
run check,continue repeat
[ "$rc" -eq 1 ] || bad "exit status $rc, expected 1"
has "still running"
[ "$(grep -c 'tarn: double free' <<<"$out")" -eq 1 ] || bad "the double free reported $(grep -c 'tarn: double free' <<<"$out") times"
has "tarn: 2 problems found: 1 heap buffer overflow, 1 double free"

# log=FILE: %p becomes the pid; nothing on stderr.
run "check,log=$work/report.%p" double_free
aborted
hasnt "tarn:"
logs=("$work"/report.*)
if [ ${#logs[@]} -ne 1 ] || ! [[ ${logs[0]} =~ report\.[0-9]+$ ]]; then
    bad "log files: ${logs[*]}"
else
    out=$(cat "${logs[0]}")
    has "tarn: double free:"
    frames "freed again" release_twice double_free main
fi

# Four threads allocating, freeing each other's blocks and reallocating,
# with check: no report, status 0.
run check threads
[ "$rc" -eq 0 ] || bad "exit status $rc"
has "threads done"
hasnt "tarn:"

run check clean
[ "$rc" -eq 0 ] || bad "exit status $rc"
has "clean"
hasnt "tarn:"

# Leaks: the lost block names the function that allocated it; the block a
# global holds is still reachable, not definitely lost; leaks_exitcode.
run leaks,leaks_exitcode=23 leak
[ "$rc" -eq 23 ] || bad "exit status $rc, expected 23"
has "tarn: 100 bytes in 1 block definitely lost, allocated at:"
got=$(grep -A2 '100 bytes in 1 block definitely lost' <<<"$out" | awk '/#0/ {print $2}')
[ "$got" = make_leak ] || bad "lost block allocated in '$got'"
hasnt "200 bytes in 1 block definitely lost"
has "tarn: definitely lost: 100 bytes in 1 block"
run leaks=all leak
[ "$rc" -eq 0 ] || bad "exit status $rc without leaks_exitcode"
has "tarn: 200 bytes in 1 block still reachable, allocated at:"

# A block held only by the stack of a thread still running at exit is
# reachable, not lost.
run leaks=all running
[ "$rc" -eq 0 ] || bad "exit status $rc"
has "tarn: 300 bytes in 1 block still reachable, allocated at:"
hasnt "300 bytes in 1 block definitely lost"

# fork: each process reports for itself, in its own log file; the child's
# leak is the child's alone.
rm -f "$work"/report.*
run "check,leaks,log=$work/report.%p" fork
[ "$rc" -eq 0 ] || bad "exit status $rc"
child=$(sed -n 's/^child \([0-9]*\) exited 0$/\1/p' <<<"$out")
if [ -z "$child" ] || [ ! -f "$work/report.$child" ]; then
    bad "no log of the child (${child:-none}): $(ls "$work")"
else
    parent=$(ls "$work"/report.* | grep -v "report.$child\$")
    out=$(cat "$work/report.$child")
    name="fork (child's log)"
    has "tarn: 100 bytes in 1 block definitely lost, allocated at:"
    out=$(cat $parent)
    name="fork (parent's log)"
    has "tarn: definitely lost: 0 bytes in 0 blocks"
    hasnt "problem"
fi

# A realloc to an impossible size: NULL with ENOMEM and the block kept,
# with leaks alone (the block's own realloc) and with check.
for o in leaks check; do
    run $o realloc_huge
    has "realloc huge: NULL, errno ENOMEM, block kept"
done

# The quarantine's bound holds for blocks of 0 bytes: 2 million pairs under
# a 1 MiB quarantine stay far below the 160 MiB they would hold unbounded.
run check,quarantine=1M zero_churn
rss=$(sed -n 's/^rss \([0-9]*\) kB$/\1/p' <<<"$out")
[ -n "$rss" ] && [ "$rss" -lt 65536 ] || bad "rss ${rss:-?} kB after the churn"

# A problem reported before fork stays the parent's: the child exits 0 and
# writes no report into its own log, nor the parent's.
rm -f "$work"/report.*
run "check,continue,log=$work/report.%p" fork_after_report
[ "$rc" -eq 1 ] || bad "parent's exit status $rc, expected 1 (one problem)"
child=$(sed -n 's/^child \([0-9]*\) exited \([0-9]*\)$/\1 \2/p' <<<"$out")
[ "${child#* }" = 0 ] || bad "child exited ${child#* } (counted the parent's problem?)"
if [ -f "$work/report.${child% *}" ] && grep -q "double free" "$work/report.${child% *}"; then
    bad "the child's log holds the parent's report"
fi
[ "$(cat "$work"/report.* | grep -c '^tarn: double free')" = 1 ] || bad "one double free, once"

# tarn run picks the checking layer for -o check too, not only for --check.
out=$(cd "$work" && "$OLDPWD/build/tarn" run -o check -- ./bugs double_free 2>&1)
rc=$?
name="tarn run -o check"
aborted
has "freed again at:"

# realloc under leaks alone (the heap's realloc, in place when it can): the
# blocks stay tracked, the lost one is named by the realloc that made it.
for opts in leaks check,leaks; do
    run $opts regrow
    [ "$rc" -eq 0 ] || bad "exit status $rc"
    has "tarn: 77 bytes in 1 block definitely lost, allocated at:"
    got=$(grep -A2 '77 bytes in 1 block definitely lost' <<<"$out" | awk '/#0/ {print $2}')
    [ "$got" = grow ] || bad "lost block allocated in '$got'"
    has "tarn: definitely lost: 77 bytes in 1 block"
done

# A C++ program: demangled names.
if command -v g++ >/dev/null; then
    g++ -g -O0 test/debug/bugs.cc -o "$work/bugscc" || exit 1
    out=$(cd "$work" && TARN_OPTIONS=check LD_PRELOAD=$lib ./bugscc 2>&1)
    rc=$?
    name="bugs.cc"
    aborted
    has "tarn: double free: $(addr block) (16 bytes)"
    frames "freed again" "shapes::Square::destroy()" main
    has "shapes::Square::make() (bugs.cc:"
fi

[ $fail -eq 0 ] && echo "   every report named its problem, block and stacks"
exit $fail
