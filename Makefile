# knytt -- plain Makefile.  Honours PREFIX, DESTDIR, LIBDIR, INCLUDEDIR,
# MANDIR, BINDIR; CC, CFLAGS, LDFLAGS.
#
#   make            libknytt.a, libknytt.so, the examples, build/bin/knytt
#   make test       Check suites + meta checks + the knytt CLI test +
#                   the Python and Node binding tests (make test-bindings)
#   make run        knyttd serving the demo shop (build/demo.db), with curl
#                   examples
#   make demo       knytt demo on build/demo.db (make index-demo: the index)
#   make sanitize   the same suites under ASan + UBSan, then make tsan
#   make tsan       the engine's and the profile cache's concurrency cases
#                   under ThreadSanitizer
#   make fuzz       every libFuzzer target FUZZ_SECONDS (30) each
#   make bench      every benchmark (make bench-deps first)
#   make deps       Debian packages the build and tests need
#   make install    PREFIX=/usr/local DESTDIR=

VERSION_MAJOR := 1
VERSION := 1.0.0

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(abspath $(CURDIR)/../shared/data)

CC ?= cc
ARCH := $(shell uname -m)
PKGS := sqlite3 libpq libcjson libcurl libcrypto
# The pkg-config flags are computed when a recipe first needs them, not
# when this file is parsed: in "make deps demo" pkg-config and the -dev
# packages only exist once the deps recipe has run, and flags read at
# parse time would miss libpq-fe.h on a fresh machine.  lazy(VAR,cmd)
# runs cmd once, on first use, and keeps the answer.
lazy = $(eval $(1) := $$(shell $(2)))$($(1))
PKG_CFLAGS = $(call lazy,PKG_CFLAGS,pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(call lazy,PKG_LIBS,pkg-config --libs $(PKGS) 2>/dev/null)
BLAS_CFLAGS = $(call lazy,BLAS_CFLAGS,pkg-config --cflags openblas \
	2>/dev/null)
BLAS_LIBS = $(call lazy,BLAS_LIBS,pkg-config --libs openblas 2>/dev/null \
	|| echo -lopenblas)
CHECK_LIBS = $(call lazy,CHECK_LIBS,pkg-config --libs check 2>/dev/null \
	|| echo -lcheck; pkg-config --libs libmicrohttpd 2>/dev/null \
	|| echo -lmicrohttpd)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter
OPT ?= -O2 -g
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -pthread -fvisibility=hidden \
	-Iinclude $(WARN) $(OPT) $(BLAS_CFLAGS) $(PKG_CFLAGS)
LIBS = $(PKG_LIBS) $(BLAS_LIBS) -llapacke -lm -lpthread

SAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow \
	-fno-sanitize-recover=undefined,float-cast-overflow \
	-fno-omit-frame-pointer
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

# Only ISA files get ISA flags; the rest builds for the baseline CPU.
# The fuzz build uses the same flags (see FUZZ_CFLAGS).
ISA_SRCS := lib/vec/vec_avx2.c lib/vec/vec_avx512.c
AVX2_FLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl
LIB_SRCS := $(filter-out $(ISA_SRCS),$(wildcard lib/*/*.c))
ifeq ($(ARCH),x86_64)
LIB_SRCS += $(ISA_SRCS)
endif
TEST_SRCS := $(wildcard tests/check_*.c)
# linked into the test binary too, but not suites
TEST_HELPERS := tests/kdtest.c benchmarks/search/synshop.c
SUITES := $(filter-out main,$(patsubst tests/check_%.c,%,$(TEST_SRCS)))
EXAMPLES := $(patsubst examples/%.c,%,$(wildcard examples/*.c))
CLI_SRCS := $(wildcard examples/knytt/*.c)
KNYTTD_SRCS := $(wildcard services/knyttd/*.c)
KNYTTD_LIBS = $(call lazy,KNYTTD_LIBS,pkg-config --libs libmicrohttpd \
	libsodium 2>/dev/null || echo -lmicrohttpd -lsodium)

# "make deps X": every compile waits for deps (also under -j), so that it
# sees the packages deps installs.
AFTER_DEPS := $(if $(filter deps,$(MAKECMDGOALS)),| deps)

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_ALL := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))

# $(1) = build dir, $(2) = extra flags
define build_rules
$(1)/obj/%.o: %.c $$(wildcard include/*.h lib/*.h lib/*/*.h) $(AFTER_DEPS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BASE_CFLAGS) $(2) $$(CFLAGS) -c $$< -o $$@

$(1)/obj/lib/vec/vec_avx2.o: lib/vec/vec_avx2.c lib/vec/vec.h $(AFTER_DEPS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BASE_CFLAGS) $(2) $$(CFLAGS) $$(AVX2_FLAGS) -c $$< -o $$@

$(1)/obj/lib/vec/vec_avx512.o: lib/vec/vec_avx512.c lib/vec/vec.h $(AFTER_DEPS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BASE_CFLAGS) $(2) $$(CFLAGS) $$(AVX512_FLAGS) -c $$< -o $$@

$(1)/libknytt.a: $$(patsubst %.c,$(1)/obj/%.o,$$(LIB_SRCS))
	@rm -f $$@
	ar rcs $$@ $$^

$(1)/suites.inc: $$(TEST_SRCS)
	@mkdir -p $(1)
	@printf '%s\n' $$(foreach s,$$(SUITES),'KNYTT_SUITE($$(s))') > $$@.tmp
	@cmp -s $$@.tmp $$@ || mv $$@.tmp $$@; rm -f $$@.tmp

$(1)/check_knytt: $$(patsubst %.c,$(1)/obj/%.o,$$(TEST_SRCS) $$(TEST_HELPERS)) \
		$(1)/libknytt.a
	$$(CC) $$(BASE_CFLAGS) $(2) $$(LDFLAGS) -o $$@ \
		$$(patsubst %.c,$(1)/obj/%.o,$$(TEST_SRCS) $$(TEST_HELPERS)) \
		$(1)/libknytt.a $$(CHECK_LIBS) $$(LIBS)

$$(patsubst %.c,$(1)/obj/%.o,$$(TEST_SRCS) $$(TEST_HELPERS)): $(1)/suites.inc
endef

all: build/libknytt.a build/libknytt.so examples build/bin/knytt \
	build/bin/knyttd

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

build/bin/%: examples/%.c build/libknytt.a include/knytt.h $(AFTER_DEPS)
	@mkdir -p build/bin
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< build/libknytt.a $(LIBS)

# The knytt command-line tool: every examples/knytt/*.c, one binary.
build/bin/knytt: $(CLI_SRCS) examples/knytt/cli.h build/libknytt.a \
		include/knytt.h
	@mkdir -p build/bin
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_SRCS) \
		build/libknytt.a $(LIBS)

# knyttd, the HTTP/JSON service (services/knyttd, man/knyttd.8).
build/bin/knyttd: $(KNYTTD_SRCS) services/knyttd/knyttd.h build/libknytt.a \
		include/knytt.h
	@mkdir -p build/bin
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(KNYTTD_SRCS) \
		build/libknytt.a $(KNYTTD_LIBS) $(LIBS)

build-san/bin/knyttd: $(KNYTTD_SRCS) services/knyttd/knyttd.h \
		build-san/libknytt.a include/knytt.h
	@mkdir -p build-san/bin
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ \
		$(KNYTTD_SRCS) build-san/libknytt.a $(KNYTTD_LIBS) $(LIBS)

build-san/bin/knytt: $(CLI_SRCS) examples/knytt/cli.h build-san/libknytt.a \
		include/knytt.h
	@mkdir -p build-san/bin
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ \
		$(CLI_SRCS) build-san/libknytt.a $(LIBS)

# CK_DEFAULT_TIMEOUT: generous, because sanitizer builds run 5-10x slower.
test: build/check_knytt build/libknytt.so examples build/bin/knytt \
		build/bin/knyttd $(patsubst %,build/fuzz/%,$(FUZZ_ALL))
	KNYTT_DATA_DIR=$(DATADIR) CK_DEFAULT_TIMEOUT=600 \
		KNYTTD_BIN=build/bin/knyttd ./build/check_knytt
	sh tests/meta.sh build
	sh tests/make_deps.sh
	sh tests/cli.sh build/bin/knytt
	$(MAKE) --no-print-directory test-bindings
	sh tests/fuzz/replay.sh build $(FUZZ_ALL)
	$(MAKE) --no-print-directory test-browser

sanitize: build-san/check_knytt build-san/bin/knytt build-san/bin/knyttd \
		$(patsubst %,build-san/fuzz/%,$(FUZZ_ALL))
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 KNYTT_DATA_DIR=$(DATADIR) \
	KNYTTD_BIN=build-san/bin/knyttd KNYTT_BIN=build-san/bin/knytt \
	KNYTT_SANITIZE=1 CK_DEFAULT_TIMEOUT=1200 ./build-san/check_knytt
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 sh tests/cli.sh build-san/bin/knytt
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 \
		sh tests/fuzz/replay.sh build-san $(FUZZ_ALL)
	$(MAKE) tsan

# Queries, feedback, item writes and training swaps from several threads
# (tests/check_engine.c, case concurrency), and profiles loaded, used and
# evicted from several threads (tests/check_profcache.c, case
# concurrency) under ThreadSanitizer; any report fails the run.  OpenBLAS
# keeps to one thread: its own threads are not instrumented.
TSAN_RUN = TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1 \
	OPENBLAS_NUM_THREADS=1 KNYTT_DATA_DIR=$(DATADIR) KNYTT_SANITIZE=1 \
	KNYTT_STRESS_MS=3000 CK_RUN_CASE=concurrency CK_DEFAULT_TIMEOUT=600
tsan: build-tsan/check_knytt
	$(TSAN_RUN) CK_RUN_SUITE=engine ./build-tsan/check_knytt
	$(TSAN_RUN) CK_RUN_SUITE=profcache ./build-tsan/check_knytt
	$(TSAN_RUN) CK_RUN_SUITE=where CK_RUN_CASE=packs ./build-tsan/check_knytt

bench: all build/bin/bindings_qps $(if $(NODE_INCLUDE),build/node/knytt.node)
	benchmarks/ann/run --csv build/bench-ann.csv
	benchmarks/train/run --csv build/bench-train.csv
	benchmarks/engine/run --csv build/bench-engine.csv
	benchmarks/bindings/run --csv build/bench-bindings.csv
	benchmarks/search/run --csv build/bench-search.csv

bench-deps:
	$(SUDO) apt-get install -y g++ libhnswlib-dev libfaiss-dev gnuplot-nox wrk

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# "=", not ":=": NODE_DEV_PKG is set further down (bindings)
DEB_PKGS = build-essential pkg-config libopenblas-dev liblapacke-dev \
	libsqlite3-dev libpq-dev postgresql libcjson-dev \
	libcurl4-openssl-dev libssl-dev check libsubunit-dev \
	libmicrohttpd-dev gnuplot-nox man-db python3-pytest python3-numpy \
	nodejs $(NODE_DEV_PKG) libsodium-dev curl clang libclang-rt-14-dev \
	chromium $(NPM_PKG) prometheus
deps:
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(DEB_PKGS)

# ---- bindings: bindings/python (ctypes) and bindings/node (N-API) ----
# Debian's python3 sees python3-numpy / python3-pytest even when another
# python3 comes first in PATH.
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || \
	echo python3)
NODE ?= node
NODE_BIN := $(shell command -v $(NODE) 2>/dev/null)
# node_api.h: next to the running node (nodesource, nvm, /usr/local), then
# Debian's libnode-dev.  NODE_INCLUDE=DIR overrides.
NODE_PREFIX := $(if $(NODE_BIN),$(shell $(NODE) -p \
	"require('path').resolve(process.execPath, '..', '..')" 2>/dev/null))
NODE_INCLUDE ?= $(patsubst %/node_api.h,%,$(firstword $(wildcard \
	$(addsuffix /node_api.h,$(NODE_PREFIX)/include/node \
	/usr/include/node /usr/local/include/node))))
# Only when no node_api.h is found: libnode-dev conflicts with the
# nodesource nodejs package, which ships the headers itself.
NODE_DEV_PKG := $(if $(NODE_INCLUDE),,libnode-dev)
# npm for the browser tests' puppeteer-core: nodesource's nodejs brings
# its own; Debian's comes apart (and conflicts with nodesource's).
NPM_PKG := $(if $(shell command -v npm 2>/dev/null),,npm)
NODE_SRCS := $(wildcard bindings/node/src/*.c)

# Small C programs the binding tests and benchmark compare against; they
# link libknytt.so like the bindings do.
build/bin/knytt_ref: bindings/tests/knytt_ref.c build/libknytt.so
	@mkdir -p build/bin
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -Lbuild -lknytt \
		-Wl,-rpath,'$$ORIGIN/..'
build/bin/bindings_qps: benchmarks/bindings/c_qps.c build/libknytt.so
	@mkdir -p build/bin
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -Lbuild -lknytt \
		-Wl,-rpath,'$$ORIGIN/..'

build/node/knytt.node: $(NODE_SRCS) bindings/node/src/addon.h \
		build/libknytt.so include/knytt.h
	@[ -n "$(NODE_INCLUDE)" ] || { echo "node_api.h not found: install" \
		"nodejs (with its headers) or set NODE_INCLUDE=DIR"; exit 1; }
	@mkdir -p build/node
	$(CC) -std=c11 -D_GNU_SOURCE -fPIC -shared -pthread \
		-fvisibility=hidden -Iinclude -isystem $(NODE_INCLUDE) \
		$(WARN) $(OPT) $(CFLAGS) $(LDFLAGS) -o $@ $(NODE_SRCS) \
		-Lbuild -lknytt -Wl,-rpath,'$$ORIGIN/..'
bindings: build/libknytt.so build/node/knytt.node

BINDING_ENV := KNYTT_LIBRARY=$(CURDIR)/build/libknytt.so \
	KNYTT_REF=$(CURDIR)/build/bin/knytt_ref \
	KNYTT_CLI=$(CURDIR)/build/bin/knytt PYTHON=$(PYTHON)
test-python: build/libknytt.so build/bin/knytt_ref build/bin/knytt
	@$(PYTHON) -c 'import pytest, numpy' 2>/dev/null || { echo \
		"test-python: $(PYTHON) lacks pytest or numpy: run make deps" \
		"(python3-pytest, python3-numpy)"; exit 1; }
	$(BINDING_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider \
		--basetemp=$(CURDIR)/build/pytest-tmp \
		bindings/python/tests

ifneq ($(and $(NODE_BIN),$(NODE_INCLUDE)),)
test-node: build/node/knytt.node build/bin/knytt_ref build/bin/knytt
	$(BINDING_ENV) $(NODE) --test $(wildcard bindings/node/test/*.test.js)
else
test-node:
	@echo "test-node: SKIPPED: $(if $(NODE_BIN),node_api.h not found" \
		"(set NODE_INCLUDE=DIR),node not found) -- run make deps"
endif
test-bindings: test-python test-node

# ---- the web pages in a real browser (tests/browser, issue 18) ----
# Debian's chromium driven by puppeteer-core (pinned in
# tests/browser/package-lock.json, installed there by npm ci; it never
# downloads a browser).  Skipped, saying so, without chromium or node.
CHROMIUM ?= $(shell command -v chromium 2>/dev/null)
test-browser: build/bin/knytt build/bin/knyttd
ifneq ($(and $(CHROMIUM),$(NODE_BIN)),)
	@[ -d tests/browser/node_modules/puppeteer-core ] || \
		npm ci --prefix tests/browser --no-audit --no-fund -q
	CHROMIUM=$(CHROMIUM) timeout 300 $(NODE) tests/browser/shop.test.js .
else
	@echo "test-browser: SKIPPED: $(if $(CHROMIUM),node,chromium) not" \
		"found -- run make deps (chromium, nodejs, npm)"
endif
.PHONY: bindings test-python test-node test-bindings

install: build/libknytt.a build/libknytt.so build/bin/knytt build/bin/knyttd
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(BINDIR)
	install -m 755 build/bin/knytt build/bin/knyttd $(DESTDIR)$(BINDIR)/
	# knyttd's pages, where it looks by default: BINDIR/../share/knytt/www
	install -d $(DESTDIR)$(BINDIR)/../share/knytt/www/admin
	install -m 644 services/knyttd/www/*.* \
		$(DESTDIR)$(BINDIR)/../share/knytt/www/
	install -m 644 services/knyttd/www/admin/*.* \
		$(DESTDIR)$(BINDIR)/../share/knytt/www/admin/
	install -m 644 include/knytt.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 build/libknytt.a $(DESTDIR)$(LIBDIR)/
	install -m 755 build/libknytt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libknytt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libknytt.so.$(VERSION_MAJOR)
	ln -sf libknytt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libknytt.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    knytt.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/knytt.pc
	for f in man/*.[1-9]; do \
		s=$${f##*.}; d=$(DESTDIR)$(MANDIR)/man$$s; install -d $$d; \
		if [ -L $$f ]; then ln -sf "$$(readlink $$f)" $$d/$${f##*/}; \
		else install -m 644 $$f $$d/; fi; done

clean:
	rm -rf build build-san build-tsan build-fuzz knytt.pc

.PHONY: all test sanitize tsan bench bench-deps deps install clean examples
.SECONDARY:

# The main job: generate a shop, import it into build/demo.db, train and
# query it (knytt demo).  The index demo of the first release stays as
# make index-demo.
demo: build/bin/knytt
	./build/bin/knytt demo --db sqlite:build/demo.db

# The service on the demo shop: loads it into build/demo.db if absent,
# starts knyttd in the foreground and prints curl examples with a key.
LISTEN ?= 127.0.0.1:8080
run: build/bin/knytt build/bin/knyttd
	sh services/knyttd/run-demo.sh build $(LISTEN)
index-demo: build/bin/index_demo
	./build/bin/index_demo
.PHONY: demo index-demo run

# ---- fuzzing (tests/fuzz/, see tests/fuzz/README) ----------------------
# Every tests/fuzz/fuzz_<target>.c is a libFuzzer target, found by name:
#   make fuzz [FUZZ_SECONDS=30] [FUZZ_TARGETS="fuzz_a fuzz_b"]
# builds each with clang -fsanitize=fuzzer,address,undefined as
# build-fuzz/<target> and runs it FUZZ_SECONDS on tests/fuzz/corpus/<target>/
# (seeds) and tests/fuzz/regress/<target>/ (inputs that once crashed), with
# a working corpus in build-fuzz/corpus/<target>/; crashes are written to
# build-fuzz/crashes/<target>/ and fail the run.  make test builds the same
# files with $(CC) and tests/fuzz/replay.c as main (build/fuzz/<target>)
# and replays the seeds and the regressions; make sanitize does so under
# ASan + UBSan.
# A target that needs sources beyond libknytt (knyttd's, for instance)
# names them, and the libraries they need, for its three builds:
#   FUZZ_X := build-fuzz/fuzz_x build/fuzz/fuzz_x build-san/fuzz/fuzz_x
#   $(FUZZ_X): FUZZ_EXTRA_SRCS = services/knyttd/route.c
#   $(FUZZ_X): FUZZ_EXTRA_LIBS = -lmicrohttpd
#   $(FUZZ_X): services/knyttd/route.c
# fuzz_cli_args includes examples/knytt/main.c (its parser is static).
FUZZ_CLI := build-fuzz/fuzz_cli_args build/fuzz/fuzz_cli_args \
	build-san/fuzz/fuzz_cli_args
$(FUZZ_CLI): FUZZ_EXTRA_SRCS = $(filter-out examples/knytt/main.c,$(CLI_SRCS))
$(FUZZ_CLI): $(CLI_SRCS) examples/knytt/cli.h
# fuzz_knyttd_request links knyttd but its main.c (the harness is main).
FUZZ_KD := build-fuzz/fuzz_knyttd_request build/fuzz/fuzz_knyttd_request \
	build-san/fuzz/fuzz_knyttd_request
$(FUZZ_KD): FUZZ_EXTRA_SRCS = $(filter-out services/knyttd/main.c,$(KNYTTD_SRCS))
$(FUZZ_KD): FUZZ_EXTRA_LIBS = $(KNYTTD_LIBS)
$(FUZZ_KD): $(KNYTTD_SRCS) services/knyttd/knyttd.h
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_HDRS := $(wildcard tests/fuzz/*.h) $(wildcard include/*.h lib/*.h lib/*/*.h)
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread -Iinclude $(BLAS_CFLAGS) \
	$(PKG_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1
FUZZ_OBJS := $(patsubst %.c,build-fuzz/obj/%.o,$(LIB_SRCS))
build-fuzz/obj/%.o: %.c $(wildcard include/*.h lib/*.h lib/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
build-fuzz/obj/lib/vec/vec_avx2.o: lib/vec/vec_avx2.c lib/vec/vec.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(AVX2_FLAGS) -c $< -o $@
build-fuzz/obj/lib/vec/vec_avx512.o: lib/vec/vec_avx512.c lib/vec/vec.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(AVX512_FLAGS) -c $< -o $@
build-fuzz/libknytt.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HDRS) build-fuzz/libknytt.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_EXTRA_SRCS) \
		build-fuzz/libknytt.a $(FUZZ_EXTRA_LIBS) $(LIBS)
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HDRS) \
		build/libknytt.a
	@mkdir -p build/fuzz
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay.c \
		$(FUZZ_EXTRA_SRCS) build/libknytt.a $(FUZZ_EXTRA_LIBS) $(LIBS)
build-san/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HDRS) \
		build-san/libknytt.a
	@mkdir -p build-san/fuzz
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
		tests/fuzz/replay.c $(FUZZ_EXTRA_SRCS) build-san/libknytt.a \
		$(FUZZ_EXTRA_LIBS) $(LIBS)
# The seed corpora are generated (the binary ones by the library's own
# writers) and committed: make fuzz-seeds rewrites them.
build/fuzz-seeds: tests/fuzz/seeds.c $(FUZZ_HDRS) build/libknytt.a
	@mkdir -p build
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< build/libknytt.a $(LIBS)
fuzz-seeds: build/fuzz-seeds
	./build/fuzz-seeds tests/fuzz/corpus
fuzz-build: $(patsubst %,build-fuzz/%,$(FUZZ_TARGETS))
fuzz: fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
.PHONY: fuzz fuzz-build fuzz-seeds
