#!/bin/bash
# Runs every Criterion binary in the given directories, then every shell test
# (test/*_test.sh), and closes with one "N passed, N failed" line.
set -u
passed=0 failed=0
for dir in "$@"; do
    for t in "$dir"/test_*; do
        [ -x "$t" ] || continue
        echo "== $t"
        out=$("$t" --jobs 2 2>&1); rc=$?
        echo "$out" | grep -vE '^$' | tail -n 40
        syn=$(echo "$out" | grep 'Synthesis:' | tail -1)
        p=$(echo "$syn" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
        f=$(echo "$syn" | sed -n 's/.*Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2/p')
        passed=$((passed + ${p:-0}))
        if [ -z "$syn" ]; then failed=$((failed + 1)); echo "   (no Criterion summary; exit $rc)";
        else failed=$((failed + $(echo $f | awk '{print $1 + $2}'))); fi
        [ $rc -ne 0 ] && [ -n "$syn" ] && [ "$(echo $f | awk '{print $1 + $2}')" = 0 ] && failed=$((failed + 1))
    done
done
for s in test/*_test.sh; do
    [ -e "$s" ] || continue
    echo "== $s"
    if bash "$s"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "   FAILED: $s"; fi
done
echo
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
