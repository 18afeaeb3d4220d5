#include <tarn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
static int nrep; static void rec(const char *m, void *a) { (void)a; if (nrep++ < 5) printf("report: %s\n", m); }
int main(void) {
    tarn_set_error_handler(rec, NULL);
    static void *v[4000];
    int bad = 0;
    for (size_t al = 8; al <= (1u << 22); al <<= 1)
        for (size_t s = 1; s <= (1u << 21); s = s * 4 + 3) {
            int n = s * 4000 > (64u << 20) ? 8 : 4000;
            for (int i = 0; i < n; i++) {
                v[i] = tarn_memalign(al, s);
                if (!v[i] || (uintptr_t)v[i] % al || tarn_usable_size(v[i]) < s) { if (bad++ < 5) printf("bad al=%zu s=%zu p=%p\n", al, s, v[i]); }
                else memset(v[i], 0x5a, s < 64 ? s : 64);
            }
            for (int i = 0; i < n; i += 2) v[i] = tarn_realloc(v[i], s + 1);
            for (int i = 0; i < n; i++) tarn_free(v[i]);
        }
    printf("bad=%d reports=%d\n", bad, nrep);
    return 0;
}
