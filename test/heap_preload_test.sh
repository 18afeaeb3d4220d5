#!/bin/bash
# Real programs on tarn through LD_PRELOAD: python3 (PYTHONMALLOC=malloc, so
# every object goes through malloc), sqlite3 and git doing real work, each
# compared byte for byte with the same run on glibc.
set -u
cd "$(dirname "$0")/.."
lib=$PWD/build/libtarn-override.so
[ -f "$lib" ] || { echo "   missing $lib (make all)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# Runs "$@" on glibc, then on tarn; the outputs (stdout + exit code) must match.
same() {
    local name=$1; shift
    (cd "$work" && "$@" >glibc.out 2>&1; echo "exit $?" >>glibc.out)
    (cd "$work" && LD_PRELOAD=$lib "$@" >tarn.out 2>&1; echo "exit $?" >>tarn.out)
    if cmp -s "$work/glibc.out" "$work/tarn.out"; then
        echo "   $name: same output ($(wc -l <"$work/tarn.out") lines)"
    else
        echo "   $name: output differs"; diff "$work/glibc.out" "$work/tarn.out" | head -20
        fail=1
    fi
}

# tarn must really be the allocator in the preloaded run.
if ! LD_PRELOAD=$lib python3 -c 'import ctypes; ctypes.CDLL(None).malloc_stats()' 2>&1 |
    grep -q 'tarn heap:'; then
    echo "   malloc_stats under LD_PRELOAD is not tarn's"; fail=1
fi

# Linking the library in (no LD_PRELOAD) must replace malloc just the same.
cat >"$work/linked.c" <<'C'
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char *p = malloc(100);
    strcpy(p, "linked");
    malloc_stats();
    free(p);
    return 0;
}
C
if cc -o "$work/linked" "$work/linked.c" -L"$PWD/build" -ltarn-override -Wl,-rpath,"$PWD/build" &&
    "$work/linked" 2>&1 | grep -q 'tarn heap:'; then
    echo "   linked with -ltarn-override: malloc is tarn's"
else
    echo "   linked with -ltarn-override: malloc is not tarn's"; fail=1
fi

cat >"$work/work.py" <<'PY'
import hashlib, json, re, threading, zlib
from collections import Counter
words = [("w%d" % (i * 7919 % 10007)) * (1 + i % 5) for i in range(200000)]
c = Counter(words)
print(len(c), c.most_common(3))
doc = [{"id": i, "name": words[i], "tags": list(range(i % 17))} for i in range(50000)]
text = json.dumps(doc, sort_keys=True)
print(len(text), hashlib.sha256(text.encode()).hexdigest())
print(len(zlib.compress(text.encode(), 6)))
print(sum(1 for _ in re.finditer(r"w(\d+)3", text)))
def work(k, out):
    acc = {}
    for i in range(40000):
        acc[(k, i % 1000)] = acc.get((k, i % 1000), "") + str(i)[-1]
    out[k] = sum(len(v) for v in acc.values())
out = {}
ts = [threading.Thread(target=work, args=(k, out)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sorted(out.items()))
print(sorted(words)[:3], len(" ".join(sorted(set(words)))))
code = compile("\n".join("x%d = %d * %d" % (i, i, i) for i in range(3000)), "gen", "exec")
ns = {}; exec(code, ns); print(ns["x2999"])
PY
same python3 env PYTHONMALLOC=malloc PYTHONHASHSEED=0 python3 work.py

cat >"$work/work.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, s TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO t SELECT i, i * 7919 % 1000, printf('row-%08d-%s', i, hex(i * i)) FROM n;
CREATE INDEX tk ON t(k);
SELECT k, count(*), sum(id), max(s) FROM t GROUP BY k ORDER BY count(*) DESC, k LIMIT 5;
SELECT count(*) FROM t a JOIN t b ON a.k = b.k WHERE a.id < 300;
SELECT group_concat(s, ',') IS NOT NULL, length(group_concat(s, ',')) FROM t;
UPDATE t SET s = s || s WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
VACUUM;
SELECT count(*), sum(length(s)) FROM t;
PRAGMA integrity_check;
SQL
same sqlite3 sh -c 'rm -f db.sqlite && sqlite3 db.sqlite < work.sql'

cat >"$work/work.sh" <<'SH'
export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t \
       GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
rm -rf repo && git init -q -b main repo && cd repo || exit 1
for c in 1 2 3 4 5; do
    export GIT_AUTHOR_DATE="2024-01-0$c 00:00:00 +0000" GIT_COMMITTER_DATE="2024-01-0$c 00:00:00 +0000"
    for f in $(seq 1 120); do seq $f $((f * c + 300)) > "file$f.txt"; done
    git add -A && git commit -q -m "commit $c"
done
git log --stat --format='%H %s' | tail -5
git diff HEAD~3 --stat | tail -1
git gc -q && git fsck --strict 2>&1 && git count-objects -v | grep -v size
git rev-parse HEAD^{tree}
SH
same git sh work.sh

exit $fail
