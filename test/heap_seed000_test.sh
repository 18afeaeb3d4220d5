#!/bin/bash
# Seed 000: after freeing 1 GiB of 4 KiB blocks while one 2-byte block
# stays live, the process's RSS must fall below 64 MiB within one second of
# the last free, with no further allocator call. glibc's figure is printed
# for comparison (it keeps about 1 GiB).
set -u
cd "$(dirname "$0")/.."
mkdir -p build/test-bin
cc -O2 -o build/test-bin/seed000 test/seed000.c || exit 1

# Runs the program (env prefix in $1), prints "peak_kib rss_kib" one second
# after it reports its last free.
measure() {
    local out pid
    out=$(mktemp)
    env $1 build/test-bin/seed000 >"$out" &
    pid=$!
    for _ in $(seq 600); do grep -q freed "$out" && break; sleep 0.05; done
    if ! grep -q freed "$out"; then kill $pid; rm -f "$out"; echo "0 0"; return; fi
    sleep 1
    awk '/VmHWM/ {h=$2} /VmRSS/ {r=$2} END {print h, r}' /proc/$pid/status
    kill $pid
    wait $pid 2>/dev/null
    rm -f "$out"
}

read -r g_peak g_rss < <(measure "")
read -r t_peak t_rss < <(measure "LD_PRELOAD=$PWD/build/libtarn-override.so")
echo "   seed 000: glibc peak $((g_peak / 1024)) MiB, rss 1 s after last free $((g_rss / 1024)) MiB"
echo "   seed 000: tarn  peak $((t_peak / 1024)) MiB, rss 1 s after last free $((t_rss / 1024)) MiB"
[ "$t_peak" -gt $((900 * 1024)) ] || { echo "   tarn run never held the gigabyte"; exit 1; }
[ "$t_rss" -lt $((64 * 1024)) ] || { echo "   tarn kept more than 64 MiB"; exit 1; }
