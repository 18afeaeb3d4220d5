/* Seed 000's program, rewritten: 256 Ki blocks of 4 KiB, then a 2-byte
 * block, then every 4 KiB block freed; the 2-byte block stays live and the
 * program only sleeps. Under glibc the freed gigabyte stays resident (the
 * live block pins the top of the brk heap). Prints "freed" with write(2)
 * (no allocator call) once the last block is freed. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { COUNT = 256 * 1024, SIZE = 4 * 1024 };

int main(void) {
    static char *blocks[COUNT];
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = malloc(SIZE);
        if (!blocks[i]) return 1;
        memset(blocks[i], i & 0xff, SIZE);
    }
    char *kept = malloc(2);
    kept[0] = 1;
    for (int i = 0; i < COUNT; i++)
        free(blocks[i]);
    if (write(STDOUT_FILENO, "freed\n", 6) != 6) return 1;
    for (;;)
        pause();
}
