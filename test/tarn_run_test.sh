#!/bin/bash
# The tarn command (build/tarn): exit statuses and signals pass through as a
# shell reports them, usage errors exit 2, a missing program 127, an
# existing LD_PRELOAD and TARN_OPTIONS are kept, the options reach the
# program, --version matches version.h, and a program that forks and execs
# children gets one report per process.
set -u
cd "$(dirname "$0")/.."
tarn=$PWD/build/tarn
[ -x "$tarn" ] || { echo "   missing $tarn (make all)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ulimit -c 0
fail=0 part=0
bad() { echo "   FAIL: $1"; fail=1; part=1; }
ok() { [ $part -eq 0 ] && echo "   ok: $1"; part=0; }

# prog exit N | prog kill SIG | prog env | prog tree: one program for all.
cat >"$work/prog.c" <<'C'
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static pthread_barrier_t all_up;
static void *churn(void *arg) {
    void *first = malloc(32); /* this thread's heap, made before any thread exits */
    pthread_barrier_wait(&all_up);
    for (int i = 0; i < 10000; i++) free(malloc(16 + i % 500));
    free(first);
    return arg;
}
int main(int argc, char **argv) {
    void *keep = malloc(100);
    if (argc < 2 || !keep) return 99;
    if (!strcmp(argv[1], "exit")) return atoi(argv[2]);
    if (!strcmp(argv[1], "kill")) raise(atoi(argv[2]));
    if (!strcmp(argv[1], "segv")) *(volatile int *)(unsigned long)atoi("0") = 1;
    if (!strcmp(argv[1], "env")) {
        const char *p = getenv("LD_PRELOAD"), *o = getenv("TARN_OPTIONS");
        printf("LD_PRELOAD=%s\nTARN_OPTIONS=%s\n", p ? p : "", o ? o : "");
        fflush(stdout); /* before any report at exit */
        return 0;
    }
    if (!strcmp(argv[1], "threads")) {
        pthread_t t[4];
        pthread_barrier_init(&all_up, NULL, 4);
        for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, NULL);
        for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
        return 0;
    }
    if (!strcmp(argv[1], "tree")) { /* two children exec'd, one forked only */
        for (int i = 0; i < 2; i++)
            if (fork() == 0) execl(argv[0], argv[0], "exit", "0", (char *)NULL), _exit(98);
        if (fork() == 0) exit(0);
        int st, n = 0;
        while (wait(&st) > 0) n += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        return n == 3 ? 0 : 1;
    }
    return 99;
}
C
cc -O0 -pthread -o "$work/prog" "$work/prog.c" || { echo "   cannot build the test program"; exit 1; }

# Exit statuses, and signals as the shell reports them when run directly
# (in a subshell, which reports the death on its own stderr, /dev/null).
for n in 0 3 42; do
    "$tarn" run -- "$work/prog" exit $n; got=$?
    [ $got -eq $n ] || bad "exit $n came back as $got"
done
for sig in 11 15; do
    ("$work/prog" kill $sig; exit $?) 2>/dev/null; want=$?
    ("$tarn" run -- "$work/prog" kill $sig; exit $?) 2>/dev/null; got=$?
    [ $got -eq $want ] && [ $got -eq $((128 + sig)) ] || bad "signal $sig: $got, directly $want"
done
("$tarn" run -- "$work/prog" segv; exit $?) 2>/dev/null; got=$?
[ $got -eq 139 ] || bad "a real SIGSEGV gave $got"
ok "exit statuses 0, 3, 42 and SIGSEGV, SIGTERM deaths (139, 143) pass through"

# Usage errors: status 2 and a usage line; a missing program 127, one that
# cannot be run 126.
usage_case() {
    local err
    err=$("$tarn" "$@" 2>&1 >/dev/null); local got=$?
    [ $got -eq 2 ] && echo "$err" | grep -q '^usage: tarn run' || bad "tarn $* gave $got: $err"
}
usage_case
usage_case frob
usage_case run
usage_case run --
usage_case run --bogus -- "$work/prog" exit 0
usage_case run -o
usage_case run --log
usage_case run -o nosuch=1 -- "$work/prog" exit 0
usage_case run -o frames=x -- "$work/prog" exit 0
usage_case run --log a,b -- "$work/prog" exit 0
err=$("$tarn" run -- "$work/no-such-program" 2>&1); got=$?
[ $got -eq 127 ] && echo "$err" | grep -q 'no-such-program: command not found' || bad "missing program: $got $err"
touch "$work/not-executable"
"$tarn" run -- "$work/not-executable" 2>/dev/null; got=$?
[ $got -eq 126 ] || bad "a file that cannot run gave $got"
ok "usage errors exit 2 with a usage line; a missing program 127, a non-executable 126"

# --help, --version.
"$tarn" --help | grep -q -- '--check' || bad "--help lacks the flags"
ver=$(sed -n 's/^#define TARN_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\)$/\2/p' include/tarn/version.h | paste -sd.)
[ "$("$tarn" --version)" = "tarn $ver" ] || bad "--version: $("$tarn" --version), version.h: $ver"
ok "--help, --version ($ver, as version.h)"

# The environment the program gets: the library first, then an existing
# LD_PRELOAD (which must still load); TARN_OPTIONS kept, the flags after it.
cat >"$work/extra.c" <<'C'
#include <unistd.h>
__attribute__((constructor)) static void hello(void) { write(2, "extra loaded\n", 13); }
C
cc -shared -fPIC -o "$work/extra.so" "$work/extra.c" || bad "cannot build extra.so"
out=$(LD_PRELOAD=$work/extra.so TARN_OPTIONS=frames=4 "$tarn" run --stats -o verbose -- "$work/prog" env 2>&1)
echo "$out" | grep -qx "LD_PRELOAD=$PWD/build/libtarn-override.so:$work/extra.so" || bad "LD_PRELOAD: $out"
echo "$out" | grep -qx "extra loaded" || bad "the existing LD_PRELOAD library did not load"
echo "$out" | grep -qx "TARN_OPTIONS=frames=4,stats,verbose" || bad "TARN_OPTIONS: $out"
echo "$out" | grep -q "options in force (pid [0-9]*): .*verbose=1,stats=1,.*frames=4," || bad "options not in force: $out"
echo "$out" | grep -q "^tarn: heap statistics at exit" || bad "--stats printed no table"
out=$(TARN_OPTIONS= "$tarn" run --log "$work/l.%p" -o purge_delay_ms=5 -- "$work/prog" env)
echo "$out" | grep -qx "TARN_OPTIONS=log=$work/l.%p,purge_delay_ms=5" || bad "--log and -o: $out"
ok "LD_PRELOAD and TARN_OPTIONS kept, the flags' options reach the program"

# --leaks and --check: the debug library, leaks_exitcode=23 unless given.
"$tarn" run --leaks --help-options | grep -q '^  leaks_exitcode    number   0         23 ' ||
    bad "--leaks does not set leaks_exitcode=23"
"$tarn" run --leaks -o leaks_exitcode=5 --help-options | grep -q '^  leaks_exitcode .* 5  ' ||
    bad "--leaks overrides a given leaks_exitcode"
TARN_OPTIONS=leaks_exitcode=7 "$tarn" run --leaks --help-options | grep -q '^  leaks_exitcode .* 7  ' ||
    bad "--leaks overrides leaks_exitcode from TARN_OPTIONS"
if [ -f build/libtarn-debug.so ]; then
    out=$(TARN_OPTIONS= "$tarn" run --leaks --check -- "$work/prog" env 2>/dev/null)
    echo "$out" | grep -qx "LD_PRELOAD=$PWD/build/libtarn-debug.so" || bad "--leaks: $out"
    echo "$out" | grep -qx "TARN_OPTIONS=leaks,check,leaks_exitcode=23" || bad "--leaks --check: $out"
    ok "--leaks and --check preload libtarn-debug.so with leaks_exitcode=23"
else
    err=$("$tarn" run --check -- "$work/prog" exit 0 2>&1); got=$?
    [ $got -eq 1 ] && echo "$err" | grep -q "cannot find libtarn-debug.so" || bad "no debug library: $got $err"
    ok "--leaks sets leaks_exitcode=23 (libtarn-debug.so not built: --check says it cannot find it)"
fi

# docs/options.md lists each option with the kind and default of the table
# in src/options.c, as --help-options prints it.
rows=$(TARN_OPTIONS= "$tarn" run --help-options | awk 'NR > 3 {print $1, $2, $3}')
[ "$(echo "$rows" | wc -l)" -eq 12 ] || bad "--help-options lists $(echo "$rows" | wc -l) options"
while read -r name kind def; do
    [ "$kind" = file ] && def="(stderr)"
    grep -qF "| \`$name\` | $kind | $def |" docs/options.md || bad "docs/options.md: $name $kind $def"
done <<<"$rows"
ok "--help-options and docs/options.md agree on every option's kind and default"

# A program with threads: one table, counting the main thread's heap and
# the four threads'.
out=$("$tarn" run --stats -- "$work/prog" threads 2>&1); got=$?
[ $got -eq 0 ] && echo "$out" | grep -q "; 5 thread heaps made$" || bad "threads: $got $(echo "$out" | grep heaps)"
ok "a program with four threads: its table counts 5 thread heaps"

# Each process reports for itself: the parent, two exec'd children and a
# forked one print their own table, with their own pid.
out=$("$tarn" run --stats -- "$work/prog" tree 2>&1); got=$?
pids=$(echo "$out" | sed -n 's/^tarn: heap statistics at exit (pid \([0-9]*\))$/\1/p' | sort -u | wc -l)
[ $got -eq 0 ] && [ "$pids" -eq 4 ] || bad "fork and exec: status $got, tables from $pids processes"
ok "a program forking and exec'ing children: one table per process (4)"
exit $fail
