#include <tarn.h>
#include <stdio.h>
static int nrep; static void rec(const char *m, void *a) { (void)a; nrep++; printf("report: %s\n", m); }
int main(void) {
    tarn_set_error_handler(rec, NULL);
    void *p = tarn_malloc(200000);
    printf("p=%p\n", p);
    tarn_free(p);
    printf("after free p: %d\n", nrep);
    tarn_collect(false);
    void *q = tarn_malloc(300000);
    printf("q=%p usable %zu\n", q, tarn_usable_size(q));
    tarn_free(p);
    printf("after stale free: %d\n", nrep);
    tarn_free(q);
    printf("after free q: %d\n", nrep);
    return 0;
}
