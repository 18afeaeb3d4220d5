// A C++ double delete for test/debug_test.sh: the stacks must show
// demangled names (shapes::Square::~Square is not _ZN6shapes6SquareD1Ev).
#include <cstdio>

namespace shapes {
struct Square {
    int side[4];
    static Square *make() { return new Square(); }
    void destroy() { delete this; }
};
} // namespace shapes

int main() {
    shapes::Square *s = shapes::Square::make();
    std::printf("block %p\n", static_cast<void *>(s));
    std::fflush(stdout);
    s->destroy();
    s->destroy();
    return 0;
}
