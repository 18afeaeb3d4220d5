#!/bin/sh
# Which memory bugs each tool reports: builds the small buggy programs of
# bench/detect/, runs each case under Valgrind's memcheck, under tarn's
# checking layer (libtarn-debug.so) and as an ASan build, and prints a
# markdown table, bug kind by tool.
#
# "Detected" is strict: the tool's own report names that kind of problem,
# and, for a bug, the tool's exit status says it found one; a crash, or a
# report of some other kind, is not a detection. For each case and tool the
# table below gives the patterns that must all be found in the tool's output
# (grep -E; a pattern after "!" must not be found):
#   Valgrind: run with --leak-check=full --error-exitcode=99; exit status 99.
#   tarn:     TARN_OPTIONS=check,leaks,continue,leaks_exitcode=23; exit
#             status 1 (problems reported) or 23 (blocks lost).
#   ASan:     gcc -fsanitize=address, ASAN_OPTIONS=detect_leaks=1; exit
#             status 1 (ASan's, which LeakSanitizer uses too inside ASan).
# The still-reachable row wants the block reported as reachable and not as
# lost, with any exit status; the "clean" row does no bug, and a tool that
# reports anything on it is marked "false report".
#
# Valgrind is the slow one (about a second a case): once DETECT_CAP seconds
# (default 25) have passed, its remaining cases are skipped and marked so.
set -u
cd "$(dirname "$0")/.." || exit 1
# The build directory, as the Makefile's O.
build=${O:-build}
out=$build/bench/detect
cap=${DETECT_CAP:-25}
mkdir -p "$out/logs"
start=$(date +%s)

# The bugs are on purpose: gcc sees some of them and would warn.
cc -std=c11 -g -O0 -Wall -Wextra -Wno-use-after-free -Wno-free-nonheap-object -o "$out/bugs" bench/detect/bugs.c || exit 1
cc -std=c11 -g -O0 -w -fsanitize=address -o "$out/bugs_asan" bench/detect/bugs.c || exit 1
g++ -g -O0 -Wall -Wextra -Wno-mismatched-new-delete -o "$out/bugs_cc" bench/detect/bugs.cc || exit 1
g++ -g -O0 -w -fsanitize=address -o "$out/bugs_cc_asan" bench/detect/bugs.cc || exit 1
[ -e "$build/libtarn-debug.so" ] || { echo "detect.sh: $build/libtarn-debug.so missing (make)" >&2; exit 1; }

# matches FILE PATTERNS: every " && "-separated pattern is found (or, after
# "!", not found) in FILE.
matches() {
    file=$1
    rest=$2
    while [ -n "$rest" ]; do
        pat=${rest%% && *}
        case $rest in *" && "*) rest=${rest#* && } ;; *) rest= ;; esac
        case $pat in
        !*) grep -Eq -- "${pat#!}" "$file" && return 1 ;;
        *) grep -Eq -- "$pat" "$file" || return 1 ;;
        esac
    done
    return 0
}

# verdict KIND FILE STATUS PATTERNS OKSTATUSES: the table's cell.
verdict() {
    kind=$1 file=$2 status=$3 pats=$4 ok=$5
    case $kind in
    clean)
        if matches "$file" "$pats" || [ "$status" -ne 0 ]; then echo "false report"; else echo "silent"; fi ;;
    reach)
        if matches "$file" "$pats"; then echo yes; else echo no; fi ;;
    *)
        if matches "$file" "$pats" && echo " $ok " | grep -q " $status "; then echo yes; else echo no; fi ;;
    esac
}

echo "| bug (C unless marked) | Valgrind memcheck | tarn check | ASan |"
echo "|---|---|---|---|"
# case;program;kind;label;valgrind patterns;tarn patterns;ASan patterns
while IFS=';' read -r name prog kind label vg tn as; do
    [ -n "$name" ] || continue
    log=$out/logs/$name
    now=$(date +%s)
    if [ $((now - start)) -ge "$cap" ]; then
        v="skipped (time cap)"
    else
        valgrind --leak-check=full --error-exitcode=99 "$out/$prog" "$name" >"$log.valgrind" 2>&1
        v=$(verdict "$kind" "$log.valgrind" $? "$vg" 99)
    fi
    TARN_OPTIONS=check,leaks,continue,leaks_exitcode=23 LD_PRELOAD=$build/libtarn-debug.so \
        "$out/$prog" "$name" >"$log.tarn" 2>&1
    t=$(verdict "$kind" "$log.tarn" $? "$tn" "1 23")
    ASAN_OPTIONS=detect_leaks=1 "$out/${prog}_asan" "$name" >"$log.asan" 2>&1
    a=$(verdict "$kind" "$log.asan" $? "$as" 1)
    echo "| $label | $v | $t | $a |"
done <<'CASES'
overflow_write;bugs;bug;write 1 byte past the end;Invalid write of size && bytes after a block;tarn: heap buffer overflow;heap-buffer-overflow && WRITE of size && to the right of
underflow_write;bugs;bug;write 1 byte before the start;Invalid write of size && bytes before a block;tarn: heap buffer underflow;heap-buffer-overflow && WRITE of size && to the left of
write_after_free;bugs;bug;write after free;Invalid write of size && free'd;tarn: write after free;heap-use-after-free && WRITE of size
double_free;bugs;bug;double free;Invalid free\(\) && free'd;tarn: double free;attempting double-free
aba;bugs;bug;A-B-A double free (free a, b, a);Invalid free\(\) && free'd;tarn: double free;attempting double-free
free_stack;bugs;bug;invalid free: stack address;Invalid free\(\);tarn: invalid free;attempting free on address which was not malloc\(\)-ed
free_global;bugs;bug;invalid free: global address;Invalid free\(\);tarn: invalid free;attempting free on address which was not malloc\(\)-ed
interior_free;bugs;bug;interior free (block + 8);Invalid free\(\) && inside a block;tarn: invalid free;attempting free on address which was not malloc\(\)-ed
leak_lost;bugs;bug;leak through a lost pointer;definitely lost in loss record;definitely lost, allocated at;Direct leak of
leak_global;bugs;reach;leak still reachable from a global (as reachable, not lost);still reachable: [1-9] && !definitely lost: [1-9];tarn: still reachable: [1-9] && !definitely lost, allocated;reachable
double_delete;bugs_cc;bug;double delete (C++);Invalid free\(\) / delete && free'd;tarn: double free;attempting double-free
new_delete_mismatch;bugs_cc;bug;`new[]` / `delete` mismatch (C++);Mismatched free\(\) / delete / delete \[\];tarn: .*(mismatch|delete);alloc-dealloc-mismatch
read_overflow;bugs;bug;read 1 byte past the end;Invalid read of size && bytes after a block;tarn: .*(read|overflow);heap-buffer-overflow && READ of size
read_after_free;bugs;bug;read after free;Invalid read of size && free'd;tarn: .*(read|after free);heap-use-after-free && READ of size
uninit_read;bugs;bug;branch on uninitialised bytes;Conditional jump or move depends on uninitialised value;tarn: .*(uninit|read);use-of-uninitialized-value
clean;bugs;clean;none (a correct program);ERROR SUMMARY: [1-9]|definitely lost: [1-9];tarn: [0-9]+ problems? found|tarn: (definitely|possibly) lost: [1-9];ERROR: (Address|Leak)Sanitizer
CASES
echo
echo "detect.sh: $(($(date +%s) - start)) s; the tools' output is in $out/logs/"
