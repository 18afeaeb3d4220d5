# tarn — GNU Make build. Outputs under build/:
#   libtarn.a, libtarn.so           tarn_ API (release: -O2)
#   libtarn-override.so             the same plus malloc & co (LD_PRELOAD)
#   debug/, asan/                   the same library with assertions (and
#                                   sanitizers), used by the tests
# Targets: all (default), test, bench, deps, install, clean.

CC      ?= cc
PREFIX  ?= /usr/local
WARN    := -Wall -Wextra -Werror -Wundef -Wshadow -Wstrict-prototypes
BASE    := -std=c11 -D_GNU_SOURCE -g -fPIC -fvisibility=hidden $(WARN) -Iinclude -Isrc
REL_CFLAGS   := $(BASE) -O2 -DNDEBUG
DEBUG_CFLAGS := $(BASE) -O1 -DTARN_DEBUG=2
ASAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_CFLAGS  := $(BASE) -O1 -DTARN_DEBUG=2 $(ASAN_FLAGS)
LIBS    := -lpthread

# Debian packages the build, tests and benchmarks need (make deps).
DEPS    := gcc make pkg-config libcriterion-dev
DEPS    += libapr1-dev libtalloc-dev
# heap: programs run under LD_PRELOAD by the tests, allocators and chart for
# the benchmarks
DEPS    += python3 sqlite3 git libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 gnuplot-nox

# override.c exports malloc & co. and goes only into libtarn-override.so.
LIB_SRC := $(filter-out src/override.c,$(wildcard src/*.c src/*/*.c))
HDRS    := $(wildcard include/*.h include/tarn/*.h src/*.h src/*/*.h)
TESTS   := $(patsubst test/%.c,%,$(wildcard test/test_*.c))
BENCHES := $(patsubst bench/%.c,%,$(wildcard bench/bench_*.c))

.PHONY: all test test-stress bench deps install clean
all: build/libtarn.a build/libtarn.so build/libtarn-override.so

# $(call lib_rules,variant-dir,cflags)
define lib_rules
$(1)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $$(@D)
	$$(CC) $(2) -c $$< -o $$@
$(1)/libtarn.a: $(patsubst src/%.c,$(1)/obj/%.o,$(LIB_SRC))
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(eval $(call lib_rules,build,$(REL_CFLAGS)))
$(eval $(call lib_rules,build/debug,$(DEBUG_CFLAGS)))
$(eval $(call lib_rules,build/asan,$(ASAN_CFLAGS)))
TSAN_CFLAGS  := $(BASE) -O1 -DTARN_DEBUG=1 -fsanitize=thread
$(eval $(call lib_rules,build/tsan,$(TSAN_CFLAGS)))

build/libtarn.so: $(patsubst src/%.c,build/obj/%.o,$(LIB_SRC))
	$(CC) -shared -o $@ $^ $(LIBS)

# Calls inside the library bind to its own definitions: no PLT hop per call.
build/libtarn-override.so: $(patsubst src/%.c,build/obj/%.o,$(LIB_SRC)) build/obj/override.o
	$(CC) -shared -Wl,-Bsymbolic-functions -o $@ $^ $(LIBS)

# Tests: one Criterion binary per module, built against the debug and the
# sanitizer library; per-test extra libraries go in LDLIBS_<name>.
build/debug/test/%: test/%.c test/*.h build/debug/libtarn.a
	@mkdir -p $(@D)
	$(CC) $(DEBUG_CFLAGS) $< -o $@ build/debug/libtarn.a -lcriterion $(LIBS) $(LDLIBS_$*)
build/asan/test/%: test/%.c test/*.h build/asan/libtarn.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $< -o $@ build/asan/libtarn.a -lcriterion $(LIBS) $(LDLIBS_$*)

test: deps all $(addprefix build/debug/test/,$(TESTS)) $(addprefix build/asan/test/,$(TESTS)) test-stress
	@test/run.sh build/debug/test build/asan/test

# The threaded heap stress test (test/heap_stress.c: 8 threads, producer/
# consumer, exiting threads, fork), plain, under ASan and under TSan.
$(foreach v,debug asan tsan,$(eval build/$(v)/heap_stress: test/heap_stress.c build/$(v)/libtarn.a ; \
	$$(CC) $$($(shell echo $(v) | tr a-z A-Z)_CFLAGS) $$< -o $$@ build/$(v)/libtarn.a $$(LIBS)))
test-stress: build/debug/heap_stress build/asan/heap_stress build/tsan/heap_stress
	build/debug/heap_stress 8 2
	build/asan/heap_stress 8 1
	build/tsan/heap_stress 8 1 1

# Benchmarks link the release library; per-benchmark libraries in LDLIBS_<name>.
build/bench/%: bench/%.c bench/*.h build/libtarn.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) $< -o $@ build/libtarn.a $(LIBS) $(LDLIBS_$*)

# bench_arena compares with APR pools (headers in their own directory) and talloc.
LDLIBS_bench_arena := -I/usr/include/apr-1.0 -lapr-1 -ltalloc
LDLIBS_bench_heap := -lm
LDLIBS_bench_region := -lm

# bench_region also counts the memory lines each region operation touches:
# the same program built against a library that records them
# (TARN_REGION_PROBES, src/region/probe.c); bench_region runs it last.
$(eval $(call lib_rules,build/probe,$(REL_CFLAGS) -DTARN_REGION_PROBES))
build/bench/bench_region_probes: bench/bench_region.c bench/*.h build/probe/libtarn.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -DTARN_REGION_PROBES $< -o $@ build/probe/libtarn.a $(LIBS)

bench: deps all $(addprefix build/bench/,$(BENCHES)) build/bench/bench_region_probes
	@for b in $(BENCHES); do build/bench/$$b $(if $(FULL),--full) || exit 1; done

deps:
	@tools/deps.sh $(DEPS)

install: all
	install -d $(DESTDIR)$(PREFIX)/include/tarn $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/tarn.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/tarn/*.h $(DESTDIR)$(PREFIX)/include/tarn/
	install -m 644 build/libtarn.a build/libtarn.so build/libtarn-override.so $(DESTDIR)$(PREFIX)/lib/
	sed 's|@PREFIX@|$(PREFIX)|' tarn.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tarn.pc

clean:
	rm -rf build
