// The C++ cases for bench/detect.sh, one per argv[1]: an array from new[]
// given back with delete, and one object deleted twice.
#include <cstdio>
#include <cstring>

// Through a volatile slot so the compiler cannot see (or warn about) the bug.
static void *volatile launder_slot;

template <typename T> static T *launder(T *p) {
    launder_slot = p;
    return static_cast<T *>(launder_slot);
}

struct Cell {
    int value[4];
};

static void new_delete_mismatch() {
    Cell *cells = new Cell[8];
    delete launder(cells);
}

static void double_delete() {
    Cell *c = new Cell();
    Cell *alias = launder(c);
    delete c;
    delete alias;
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "new_delete_mismatch") == 0) {
        new_delete_mismatch();
        return 0;
    }
    if (argc > 1 && std::strcmp(argv[1], "double_delete") == 0) {
        double_delete();
        return 0;
    }
    std::fprintf(stderr, "usage: bugs_cc CASE\n");
    return 2;
}
