# tarn — GNU Make build. Outputs under $(O)/ (default build/):
#   libtarn.a, libtarn.so            tarn_ API (release: -O2)
#   libtarn-override.a, .so          the same plus malloc & co (link it, or LD_PRELOAD the .so)
#   debug/, asan/, tsan/             the same library with assertions (and
#                                    sanitizers), used by the tests
#   clang/                           the library and the debug tests built by clang (make test)
# The shared libraries are libtarn.so.MAJOR.MINOR.PATCH with SONAME
# libtarn.so.MAJOR, the version read from include/tarn/version.h.
# Targets: all (default), test, bench, deps, install, uninstall, clean, format.
# CPPFLAGS, CFLAGS and LDFLAGS given by the user are added after the project's.

CC      ?= cc
O       ?= build
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
BINDIR  ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
WARN    := -Wall -Wextra -Werror -Wundef -Wshadow -Wstrict-prototypes
BASE    := -std=c11 -D_GNU_SOURCE -g -fPIC -fvisibility=hidden $(WARN) -Iinclude -Isrc
REL_CFLAGS   := $(BASE) -O2 -DNDEBUG
DEBUG_CFLAGS := $(BASE) -O1 -DTARN_DEBUG=2
ASAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_CFLAGS  := $(BASE) -O1 -DTARN_DEBUG=2 $(ASAN_FLAGS)
TSAN_CFLAGS  := $(BASE) -O1 -DTARN_DEBUG=1 -fsanitize=thread
USER_CFLAGS  = $(CPPFLAGS) $(CFLAGS)
LIBS    := -lpthread

# The one version, from include/tarn/version.h.
version_field = $(shell sed -n 's/^\#define TARN_VERSION_$(1) *\([0-9][0-9]*\)$$/\1/p' include/tarn/version.h)
MAJOR   := $(call version_field,MAJOR)
VERSION := $(MAJOR).$(call version_field,MINOR).$(call version_field,PATCH)

# Debian packages the build, tests and benchmarks need (make deps).
DEPS    := gcc make pkg-config libcriterion-dev
DEPS    += libapr1-dev libtalloc-dev
# heap: programs run under LD_PRELOAD by the tests, allocators and chart for
# the benchmarks
DEPS    += python3 sqlite3 git libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 gnuplot-nox
# packaging: the clang build, the C++ header check, the installed CMake
# package, and static linking (libc.a)
DEPS    += clang g++ cmake libc6-dev
# the checking layer (libtarn-debug.so): stack capture and symbolization
DEPS    += libunwind-dev libdw-dev
# bench_debug: Valgrind's memcheck, the reference for the checking layer's cost
DEPS    += valgrind
# make format and its check in make test (test/format_test.sh)
DEPS    += clang-format

# The heap (src/heap/) goes into the static libraries as one object, so a
# program that uses any of it links all of it, the load-time check of
# src/heap/instance.c included. The files exporting malloc & co.
# (src/override*.c, src/override/*.c) join that object only in
# libtarn-override, and stay out of libtarn.
HEAP_SRC := $(wildcard src/heap/*.c)
OVERRIDE_SRC := $(wildcard src/override*.c src/override/*.c)
# The checking layer (src/debug/) goes only into libtarn-debug.so.
DEBUG_SRC := $(wildcard src/debug/*.c)
LIB_SRC := $(filter-out $(OVERRIDE_SRC) $(DEBUG_SRC),$(wildcard src/*.c src/*/*.c))
REST_SRC := $(filter-out $(HEAP_SRC),$(LIB_SRC))
HDRS    := $(wildcard include/*.h include/tarn/*.h src/*.h src/*/*.h)
PUB_HDRS := $(wildcard include/tarn/*.h)
TESTS   := $(patsubst test/%.c,%,$(wildcard test/test_*.c))
BENCHES := $(patsubst bench/%.c,%,$(wildcard bench/bench_*.c))
objs = $(patsubst src/%.c,$(1)/obj/%.o,$(2))

.PHONY: all test test-stress test-clang bench deps install uninstall clean format
all: $(O)/libtarn.a $(O)/libtarn-override.a $(O)/libtarn.so $(O)/libtarn-override.so $(O)/libtarn-debug.so \
	$(O)/tarn

# $(call lib_rules,variant-dir,cflags)
define lib_rules
$(1)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(USER_CFLAGS) -c $$< -o $$@
$(1)/obj/heap-all.o: $(call objs,$(1),$(HEAP_SRC))
	$$(CC) -nostdlib -r -o $$@ $$^
$(1)/obj/heap-override.o: $(call objs,$(1),$(HEAP_SRC) $(OVERRIDE_SRC))
	$$(CC) -nostdlib -r -o $$@ $$^
$(1)/libtarn.a: $(call objs,$(1),$(REST_SRC)) $(1)/obj/heap-all.o
	@rm -f $$@
	ar rcs $$@ $$^
$(1)/libtarn-override.a: $(call objs,$(1),$(REST_SRC)) $(1)/obj/heap-override.o
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(eval $(call lib_rules,$(O),$(REL_CFLAGS)))
$(eval $(call lib_rules,$(O)/debug,$(DEBUG_CFLAGS)))
$(eval $(call lib_rules,$(O)/asan,$(ASAN_CFLAGS)))
$(eval $(call lib_rules,$(O)/tsan,$(TSAN_CFLAGS)))

# $(call so_rules,name,objects,extra link flags): name.so.VERSION with its
# SONAME, and the links name.so.MAJOR (what programs load) and name.so (what
# -lname finds).
define so_rules
$(O)/$(1).so.$(VERSION): $(2)
	$$(CC) -shared -Wl,-soname,$(1).so.$(MAJOR) $(3) $$(LDFLAGS) -o $$@ $$^ $$(LIBS)
$(O)/$(1).so.$(MAJOR): $(O)/$(1).so.$(VERSION)
	ln -sf $$(<F) $$@
$(O)/$(1).so: $(O)/$(1).so.$(MAJOR)
	ln -sf $$(<F) $$@
endef
$(eval $(call so_rules,libtarn,$(call objs,$(O),$(LIB_SRC))))
# Calls inside the library bind to its own definitions: no PLT hop per call.
SYMBOLIC := -Wl,-Bsymbolic-functions
$(eval $(call so_rules,libtarn-override,$(call objs,$(O),$(LIB_SRC) $(OVERRIDE_SRC)),$(SYMBOLIC)))
# libtarn-debug.so: the library, glibc's introspection calls and the
# checking layer, which exports malloc & co itself (src/debug/entry.c).
# Linked with --no-undefined: a missing symbol fails the build, not the
# program it is preloaded into.
DEBUG_LIBS := -lunwind -ldw -ldl
DEBUG_LDFLAGS := $(SYMBOLIC) -Wl,--no-undefined
$(eval $(call so_rules,libtarn-debug,$(call objs,$(O),$(LIB_SRC) src/override_info.c $(DEBUG_SRC)),$(DEBUG_LDFLAGS)))
$(O)/libtarn-debug.so.$(VERSION): LIBS += $(DEBUG_LIBS)

# The tarn command (tools/tarn.c): finds the libraries beside itself, or in
# LIBDIR given as a path relative to BINDIR, as installed.
LIB_FROM_BIN = $(shell realpath -m --relative-to=$(BINDIR) $(LIBDIR))
$(O)/tarn: tools/tarn.c $(HDRS) $(O)/libtarn.a
	$(CC) $(REL_CFLAGS) -DTARN_LIB_FROM_BIN='"$(LIB_FROM_BIN)"' $(USER_CFLAGS) $(LDFLAGS) $< -o $@ $(O)/libtarn.a $(LIBS)

# Tests: one Criterion binary per module, built against the debug and the
# sanitizer library; per-test extra libraries go in LDLIBS_<name>.
$(O)/debug/test/%: test/%.c test/*.h $(O)/debug/libtarn.a
	@mkdir -p $(@D)
	$(CC) $(DEBUG_CFLAGS) $(USER_CFLAGS) $(LDFLAGS) $< -o $@ $(O)/debug/libtarn.a -lcriterion $(LIBS) $(LDLIBS_$*)
$(O)/asan/test/%: test/%.c test/*.h $(O)/asan/libtarn.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(USER_CFLAGS) $(LDFLAGS) $< -o $@ $(O)/asan/libtarn.a -lcriterion $(LIBS) $(LDLIBS_$*)

# test_debug_depot: the stack depot alone (src/debug/ is in no archive).
LDLIBS_test_debug_depot = $(@D)/../obj/debug/depot.o $(@D)/../libtarn.a -lunwind
$(foreach v,debug asan,$(eval $(O)/$(v)/test/test_debug_depot: $(O)/$(v)/obj/debug/depot.o))

# The leak scan (src/debug/scan*.c) belongs to libtarn-debug.so; its test
# compiles it in, with the flags of each test build.
SCAN_SRC := $(wildcard src/debug/scan*.c)
LDLIBS_test_debug_scan := $(SCAN_SRC)
$(O)/debug/test/test_debug_scan $(O)/asan/test/test_debug_scan: $(SCAN_SRC)

test: deps all $(addprefix $(O)/debug/test/,$(TESTS)) $(addprefix $(O)/asan/test/,$(TESTS)) test-stress test-clang
	@test/run.sh $(O)/debug/test $(O)/asan/test $(O)/clang/debug/test

# make CC=clang must build and pass: the release libraries and the debug
# test suites built by clang, in their own directory (run by make test).
test-clang:
	+$(MAKE) CC=clang O=$(O)/clang all $(addprefix $(O)/clang/debug/test/,$(TESTS))

# The threaded heap stress test (test/heap_stress.c: 8 threads, producer/
# consumer, exiting threads, fork), plain, under ASan and under TSan.
$(foreach v,debug asan tsan,$(eval $(O)/$(v)/heap_stress: test/heap_stress.c $(O)/$(v)/libtarn.a ; \
	$$(CC) $$($(shell echo $(v) | tr a-z A-Z)_CFLAGS) $$(USER_CFLAGS) $$(LDFLAGS) $$< -o $$@ $(O)/$(v)/libtarn.a $$(LIBS)))
test-stress: $(O)/debug/heap_stress $(O)/asan/heap_stress $(O)/tsan/heap_stress
	$(O)/debug/heap_stress 8 2
	$(O)/asan/heap_stress 8 1
	$(O)/tsan/heap_stress 8 1 1

# Benchmarks link the release library; per-benchmark libraries in LDLIBS_<name>.
$(O)/bench/%: bench/%.c bench/*.h $(O)/libtarn.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) $(USER_CFLAGS) $(LDFLAGS) $< -o $@ $(O)/libtarn.a $(LIBS) $(LDLIBS_$*)

# bench_arena compares with APR pools (headers in their own directory) and talloc.
LDLIBS_bench_arena := -I/usr/include/apr-1.0 -lapr-1 -ltalloc
LDLIBS_bench_heap := -lm
LDLIBS_bench_region := -lm
LDLIBS_bench_debug_scan := $(SCAN_SRC)
$(O)/bench/bench_debug_scan: $(SCAN_SRC)

# bench_region also counts the memory lines each region operation touches:
# the same program built against a library that records them
# (TARN_REGION_PROBES, src/region/probe.c); bench_region runs it last.
$(eval $(call lib_rules,$(O)/probe,$(REL_CFLAGS) -DTARN_REGION_PROBES))
$(O)/bench/bench_region_probes: bench/bench_region.c bench/*.h $(O)/probe/libtarn.a
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) -DTARN_REGION_PROBES $(USER_CFLAGS) $(LDFLAGS) $< -o $@ $(O)/probe/libtarn.a $(LIBS)

bench: deps all $(addprefix $(O)/bench/,$(BENCHES)) $(O)/bench/bench_region_probes
	@for b in $(BENCHES); do $(O)/bench/$$b $(if $(FULL),--full) || exit 1; done
	@O=$(O) bench/detect.sh

deps:
	@tools/deps.sh $(DEPS)

# Rewrites every tracked C file as .clang-format says; make test checks it.
format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

# Installs the headers, both static libraries, both shared libraries with
# their links, tarn.pc, tarn-override.pc and the CMake package
# (find_package(tarn CONFIG): tarn::tarn, tarn::override), the tarn command
# in BINDIR (built again with this install's LIBDIR relative to BINDIR) and
# libtarn-debug.so, which it preloads, once that library is built.
# uninstall removes exactly these files, and tarn's own directories once
# empty.
SO_FILES := $(foreach l,libtarn libtarn-override,$(l).so.$(VERSION) $(l).so.$(MAJOR) $(l).so)
INSTALLED := $(INCLUDEDIR)/tarn.h $(addprefix $(INCLUDEDIR)/tarn/,$(notdir $(PUB_HDRS))) \
	$(addprefix $(LIBDIR)/,libtarn.a libtarn-override.a $(SO_FILES)) \
	$(addprefix $(LIBDIR)/pkgconfig/,tarn.pc tarn-override.pc) \
	$(addprefix $(LIBDIR)/cmake/tarn/,tarnConfig.cmake tarnConfigVersion.cmake) \
	$(BINDIR)/tarn $(LIBDIR)/libtarn-debug.so
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' \
	-e "s|@INC_FROM_LIB@|$$(realpath -m --relative-to=$(LIBDIR) $(INCLUDEDIR))|g"
install: all
	install -d $(DESTDIR)$(INCLUDEDIR)/tarn $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cmake/tarn
	install -m 644 include/tarn.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(PUB_HDRS) $(DESTDIR)$(INCLUDEDIR)/tarn/
	install -m 644 $(O)/libtarn.a $(O)/libtarn-override.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(O)/libtarn.so.$(VERSION) $(O)/libtarn-override.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	for l in libtarn libtarn-override; do \
	    ln -sf $$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$$l.so.$(MAJOR) && \
	    ln -sf $$l.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/$$l.so || exit 1; done
	$(SUBST) tarn.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tarn.pc
	$(SUBST) tarn-override.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tarn-override.pc
	$(SUBST) cmake/tarnConfig.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/tarn/tarnConfig.cmake
	$(SUBST) cmake/tarnConfigVersion.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/tarn/tarnConfigVersion.cmake
	$(CC) $(REL_CFLAGS) -DTARN_LIB_FROM_BIN='"$(LIB_FROM_BIN)"' $(USER_CFLAGS) $(LDFLAGS) \
	    tools/tarn.c -o $(O)/tarn-install $(O)/libtarn.a $(LIBS)
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(O)/tarn-install $(DESTDIR)$(BINDIR)/tarn
	[ ! -f $(O)/libtarn-debug.so ] || install -m 755 $(O)/libtarn-debug.so $(DESTDIR)$(LIBDIR)/

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	for d in $(INCLUDEDIR)/tarn $(LIBDIR)/cmake/tarn; do \
	    [ ! -d $(DESTDIR)$$d ] || rmdir --ignore-fail-on-non-empty $(DESTDIR)$$d; done

clean:
	rm -rf $(O)
