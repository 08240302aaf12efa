# knytt -- plain Makefile.  Honours PREFIX, DESTDIR, LIBDIR, INCLUDEDIR,
# MANDIR, BINDIR; CC, CFLAGS, LDFLAGS.
#
#   make            libknytt.a, libknytt.so, the examples, build/bin/knytt
#   make test       Check suites + meta checks + the knytt CLI test
#   make demo       knytt demo on build/demo.db (make index-demo: the index)
#   make sanitize   the same suites under ASan + UBSan, then make tsan
#   make tsan       the engine's concurrency case under ThreadSanitizer
#   make bench      every benchmark (make bench-deps first)
#   make deps       Debian packages the build and tests need
#   make install    PREFIX=/usr/local DESTDIR=

VERSION_MAJOR := 0
VERSION := 0.1.0

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(abspath $(CURDIR)/../shared/data)

CC ?= cc
ARCH := $(shell uname -m)
PKGS := sqlite3 libpq libcjson libcurl libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck) \
	$(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter
OPT ?= -O2 -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -pthread -fvisibility=hidden \
	-Iinclude $(WARN) $(OPT) $(BLAS_CFLAGS) $(PKG_CFLAGS)
LIBS := $(PKG_LIBS) $(BLAS_LIBS) -llapacke -lm -lpthread

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

# Only ISA files get ISA flags; the rest builds for the baseline CPU.
ISA_SRCS := lib/vec/vec_avx2.c lib/vec/vec_avx512.c
LIB_SRCS := $(filter-out $(ISA_SRCS),$(wildcard lib/*/*.c))
ifeq ($(ARCH),x86_64)
LIB_SRCS += $(ISA_SRCS)
endif
TEST_SRCS := $(wildcard tests/check_*.c)
SUITES := $(filter-out main,$(patsubst tests/check_%.c,%,$(TEST_SRCS)))
EXAMPLES := $(patsubst examples/%.c,%,$(wildcard examples/*.c))
CLI_SRCS := $(wildcard examples/knytt/*.c)

# $(1) = build dir, $(2) = extra flags
define build_rules
$(1)/obj/%.o: %.c $$(wildcard include/*.h lib/*.h lib/*/*.h)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BASE_CFLAGS) $(2) $$(CFLAGS) -c $$< -o $$@

$(1)/obj/lib/vec/vec_avx2.o: lib/vec/vec_avx2.c lib/vec/vec.h
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BASE_CFLAGS) $(2) $$(CFLAGS) -mavx2 -mfma -c $$< -o $$@

$(1)/obj/lib/vec/vec_avx512.o: lib/vec/vec_avx512.c lib/vec/vec.h
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BASE_CFLAGS) $(2) $$(CFLAGS) -mavx2 -mfma -mavx512f \
		-mavx512bw -mavx512vl -c $$< -o $$@

$(1)/libknytt.a: $$(patsubst %.c,$(1)/obj/%.o,$$(LIB_SRCS))
	@rm -f $$@
	ar rcs $$@ $$^

$(1)/suites.inc: $$(TEST_SRCS)
	@mkdir -p $(1)
	@printf '%s\n' $$(foreach s,$$(SUITES),'KNYTT_SUITE($$(s))') > $$@.tmp
	@cmp -s $$@.tmp $$@ || mv $$@.tmp $$@; rm -f $$@.tmp

$(1)/check_knytt: $$(patsubst %.c,$(1)/obj/%.o,$$(TEST_SRCS)) $(1)/libknytt.a
	$$(CC) $$(BASE_CFLAGS) $(2) $$(LDFLAGS) -o $$@ \
		$$(patsubst %.c,$(1)/obj/%.o,$$(TEST_SRCS)) $(1)/libknytt.a \
		$$(CHECK_LIBS) $$(LIBS)

$$(patsubst %.c,$(1)/obj/%.o,$$(TEST_SRCS)): $(1)/suites.inc
endef

all: build/libknytt.a build/libknytt.so examples build/bin/knytt

$(eval $(call build_rules,build,))
$(eval $(call build_rules,build-san,$(SAN_FLAGS)))
$(eval $(call build_rules,build-tsan,$(TSAN_FLAGS)))
build/obj/tests/%.o: BASE_CFLAGS += -Ibuild
build-san/obj/tests/%.o: BASE_CFLAGS += -Ibuild-san
build-tsan/obj/tests/%.o: BASE_CFLAGS += -Ibuild-tsan

build/libknytt.so: $(patsubst %.c,build/obj/%.o,$(LIB_SRCS)) lib/knytt.vers
	$(CC) -shared -Wl,-soname,libknytt.so.$(VERSION_MAJOR) \
		-Wl,--version-script=lib/knytt.vers -Wl,--no-undefined \
		$(LDFLAGS) -o build/libknytt.so.$(VERSION) \
		$(patsubst %.c,build/obj/%.o,$(LIB_SRCS)) $(LIBS)
	ln -sf libknytt.so.$(VERSION) build/libknytt.so.$(VERSION_MAJOR)
	ln -sf libknytt.so.$(VERSION) build/libknytt.so

examples: $(patsubst %,build/bin/%,$(EXAMPLES))

build/bin/%: examples/%.c build/libknytt.a include/knytt.h
	@mkdir -p build/bin
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< build/libknytt.a $(LIBS)

# The knytt command-line tool: every examples/knytt/*.c, one binary.
build/bin/knytt: $(CLI_SRCS) examples/knytt/cli.h build/libknytt.a \
		include/knytt.h
	@mkdir -p build/bin
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_SRCS) \
		build/libknytt.a $(LIBS)

build-san/bin/knytt: $(CLI_SRCS) examples/knytt/cli.h build-san/libknytt.a \
		include/knytt.h
	@mkdir -p build-san/bin
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ \
		$(CLI_SRCS) build-san/libknytt.a $(LIBS)

# CK_DEFAULT_TIMEOUT: generous, because sanitizer builds run 5-10x slower.
test: build/check_knytt build/libknytt.so examples build/bin/knytt
	KNYTT_DATA_DIR=$(DATADIR) CK_DEFAULT_TIMEOUT=600 ./build/check_knytt
	sh tests/meta.sh build
	sh tests/cli.sh build/bin/knytt

sanitize: build-san/check_knytt build-san/bin/knytt
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 KNYTT_DATA_DIR=$(DATADIR) \
	KNYTT_SANITIZE=1 CK_DEFAULT_TIMEOUT=1200 ./build-san/check_knytt
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 sh tests/cli.sh build-san/bin/knytt
	$(MAKE) tsan

# Queries, feedback, item writes and training swaps from several threads
# (tests/check_engine.c, case concurrency) under ThreadSanitizer; any
# report fails the run.  OpenBLAS keeps to one thread: its own threads
# are not instrumented.
tsan: build-tsan/check_knytt
	TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1 \
	OPENBLAS_NUM_THREADS=1 KNYTT_DATA_DIR=$(DATADIR) KNYTT_SANITIZE=1 \
	KNYTT_STRESS_MS=3000 CK_RUN_SUITE=engine CK_RUN_CASE=concurrency \
	CK_DEFAULT_TIMEOUT=600 ./build-tsan/check_knytt

bench: all
	benchmarks/ann/run --csv build/bench-ann.csv
	benchmarks/train/run --csv build/bench-train.csv
	benchmarks/engine/run --csv build/bench-engine.csv

bench-deps:
	$(SUDO) apt-get install -y g++ libhnswlib-dev libfaiss-dev gnuplot-nox

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_PKGS := build-essential pkg-config libopenblas-dev liblapacke-dev \
	libsqlite3-dev libpq-dev postgresql libcjson-dev \
	libcurl4-openssl-dev libssl-dev check libsubunit-dev \
	libmicrohttpd-dev gnuplot-nox
deps:
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(DEB_PKGS)

install: build/libknytt.a build/libknytt.so build/bin/knytt
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(BINDIR)
	install -m 755 build/bin/knytt $(DESTDIR)$(BINDIR)/
	install -m 644 include/knytt.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 build/libknytt.a $(DESTDIR)$(LIBDIR)/
	install -m 755 build/libknytt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libknytt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libknytt.so.$(VERSION_MAJOR)
	ln -sf libknytt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libknytt.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    knytt.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/knytt.pc
	for f in man/*.[1-9]; do \
		s=$${f##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
		install -m 644 $$f $(DESTDIR)$(MANDIR)/man$$s/; done

clean:
	rm -rf build build-san build-tsan knytt.pc

.PHONY: all test sanitize tsan bench bench-deps deps install clean examples
.SECONDARY:

# The main job: generate a shop, import it into build/demo.db, train and
# query it (knytt demo).  The index demo of the first release stays as
# make index-demo.
demo: build/bin/knytt
	./build/bin/knytt demo --db sqlite:build/demo.db
index-demo: build/bin/index_demo
	./build/bin/index_demo
.PHONY: demo index-demo

# libFuzzer targets for the loaders (clang): make fuzz, then run
# ./build-fuzz/fuzz_index_load -max_total_time=60 tests/fixtures
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude $(BLAS_CFLAGS) $(PKG_CFLAGS) \
	-fsanitize=fuzzer-no-link,address,undefined -g -O1
FUZZ_OBJS := $(patsubst %.c,build-fuzz/obj/%.o,$(LIB_SRCS))
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
build-fuzz/obj/lib/vec/vec_avx2.o: lib/vec/vec_avx2.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -mavx2 -mfma -c $< -o $@
build-fuzz/obj/lib/vec/vec_avx512.o: lib/vec/vec_avx512.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -mavx2 -mfma -mavx512f -mavx512bw -mavx512vl \
		-c $< -o $@
build-fuzz/fuzz_index_load: tests/fuzz/fuzz_index_load.c $(FUZZ_OBJS)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)
fuzz: build-fuzz/fuzz_index_load
.PHONY: fuzz
