#!/bin/bash
# make install puts a usable header, libraries and pkg-config file under PREFIX.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s install PREFIX="$tmp/usr" >/dev/null
cat > "$tmp/use.c" <<'C'
#include <tarn.h>
#include <stdio.h>
int main(void) {
    tarn_fixed_t *pool = tarn_fixed_create(40, 16, 16);
    void *p = tarn_fixed_alloc(pool);
    tarn_fixed_free(pool, p);
    tarn_pool_stats_t st;
    tarn_fixed_stats(pool, &st);
    tarn_fixed_destroy(pool);
    printf("%zu\n", st.in_use);
    return st.blocks == 1 ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$tmp/usr/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 "$tmp/use.c" -o "$tmp/use-static" $(pkg-config --cflags tarn) "$tmp/usr/lib/libtarn.a" -lpthread
cc -std=c11 "$tmp/use.c" -o "$tmp/use-shared" $(pkg-config --cflags --libs tarn)
[ "$("$tmp/use-static")" = 0 ]
[ "$(LD_LIBRARY_PATH="$tmp/usr/lib" "$tmp/use-shared")" = 0 ]
echo "install: header, libtarn.a, libtarn.so and tarn.pc work"
