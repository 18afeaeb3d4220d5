#!/bin/bash
# The public headers compile cleanly in the languages users build with:
# each header alone, and tarn.h, as C99, C11 and C17 with gcc and clang
# (-pedantic -Wall -Wextra -Werror) and as C++17 with g++ and clang++
# (-Wall -Wextra -Werror). tarn.h is also used in a program calling the
# inline fast paths, linked against build/libtarn.a and run, in every mode.
set -u
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f build/libtarn.a ] || { echo "   missing build/libtarn.a (make all)"; exit 1; }
fail=0 n=0

modes=(
    "gcc -x c -std=c99 -pedantic" "gcc -x c -std=c11 -pedantic" "gcc -x c -std=c17 -pedantic"
    "clang -x c -std=c99 -pedantic" "clang -x c -std=c11 -pedantic" "clang -x c -std=c17 -pedantic"
    "g++ -x c++ -std=c++17" "clang++ -x c++ -std=c++17"
)
headers=(tarn.h $(cd include && ls tarn/*.h))

cat >"$work/use.c" <<'C'
#include <tarn.h>
#include <string.h>
int main(void) {
    tarn_fixed_t *pool = tarn_fixed_create(32, 8, 8);
    void *p = tarn_fixed_alloc(pool);
    if (!p) return 1;
    tarn_fixed_free(pool, p);
    tarn_fixed_destroy(pool);
    tarn_arena_t *a = tarn_arena_create(0);
    tarn_arena_mark_t m = tarn_arena_mark(a);
    char *s = tarn_arena_strdup(a, "x");
    tarn_arena_rewind(a, m);
    tarn_arena_destroy(a);
    void *q = tarn_malloc(24);
    tarn_free(q);
    return s && q && strcmp(tarn_version(), TARN_VERSION) == 0 ? 0 : 1;
}
C

for mode in "${modes[@]}"; do
    # shellcheck disable=SC2086
    for h in "${headers[@]}"; do
        n=$((n + 1))
        if ! echo "#include <$h>" | $mode -Wall -Wextra -Werror -Iinclude -fsyntax-only - \
            >"$work/log" 2>&1; then
            echo "   FAIL: $h as $mode"; head -5 "$work/log"; fail=1
        fi
    done
    # shellcheck disable=SC2086
    if ! $mode -Wall -Wextra -Werror -Iinclude "$work/use.c" -x none build/libtarn.a -lpthread \
        -o "$work/use" >"$work/log" 2>&1 || ! "$work/use"; then
        echo "   FAIL: a program using tarn.h as $mode"; head -5 "$work/log"; fail=1
    fi
done
[ $fail -eq 0 ] && echo "   $n header compiles and ${#modes[@]} programs clean: ${#headers[@]} headers in ${#modes[@]} modes"
exit $fail
