# stagecoach build. Every library through pkg-config.
VERSION    := 0.1.0
PREFIX     ?= /usr/local
BUILD      ?= build
CC         ?= cc
PKGS       := sqlite3 libmariadb libpq libarchive libsodium inih jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
CFLAGS     ?= -O2 -g
override CFLAGS += -std=c11 -pthread -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
              -DSC_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
override LDLIBS += $(PKG_LIBS)

# Every .c and .h under src/, at any depth: a new folder needs no line here.
SRCS       := $(sort $(shell find src -name '*.c'))
HDRS       := $(sort $(shell find src -name '*.h'))
OBJS       := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS   := $(filter-out $(BUILD)/src/main.o,$(OBJS))
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/helpers/%)

.PHONY: all install test unit integration demo lint format tidy sanitize fuzz fuzz-build clean deps

all: $(BUILD)/stagecoach

$(BUILD)/stagecoach: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# What the unit tests share (tests/unit/testutil.c), linked into each.
TESTUTIL   := $(BUILD)/tests/testutil.o
$(TESTUTIL): tests/unit/testutil.c tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) $(TESTUTIL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TESTUTIL) $(LIB_OBJS) $(LDLIBS) $(shell pkg-config --libs cmocka)

# The helper programs alone (CI builds them before suites run side by side).
.PHONY: helpers
helpers: $(HELPER_BINS)

# Small C programs the integration tests drive (e.g. a busy SQLite writer).
# tests/helpers/common/ holds what they share with each other and the bench.
HELPER_COMMON := $(wildcard tests/helpers/common/*.c)
$(BUILD)/tests/helpers/%: tests/helpers/%.c $(HELPER_COMMON) $(wildcard tests/helpers/common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(HELPER_COMMON) $(shell pkg-config --libs sqlite3)

-include $(OBJS:.o=.d)

install: $(BUILD)/stagecoach
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BUILD)/stagecoach $(DESTDIR)$(PREFIX)/bin/stagecoach
	install -m 0644 docs/stagecoach.1 $(DESTDIR)$(PREFIX)/share/man/man1/stagecoach.1
	install -d $(DESTDIR)$(PREFIX)/lib/stagecoach/restic-hooks
	install -m 0755 restic-hooks/* $(DESTDIR)$(PREFIX)/lib/stagecoach/restic-hooks/
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 completions/stagecoach.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/stagecoach

deps:
	scripts/install-deps.sh

# The Debian package (debian/): built by dpkg-buildpackage from a copy of
# the tree in $(BUILD)/deb/src, so that neither the tree nor its parent
# directory gets its output; the .deb, .buildinfo and .changes end up in
# $(BUILD)/deb/. lintian must find no error. check-version: the Makefile's
# VERSION and debian/changelog's must agree (stagecoach --version prints it).
DEB_DIR    := $(BUILD)/deb
DEB_SRC    := $(DEB_DIR)/src/stagecoach-$(VERSION)
.PHONY: deb check-version
check-version:
	@v="$$(dpkg-parsechangelog -l debian/changelog -S Version)"; \
	  if [ "$$v" != "$(VERSION)" ]; then \
	    echo "check-version: debian/changelog has $$v, the Makefile's VERSION is $(VERSION)" >&2; exit 1; fi; \
	  echo "check-version: $(VERSION) in the Makefile and debian/changelog"

deb: check-version
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_SRC)
	tar --exclude=./build --exclude='./build-*' --exclude=./demo --exclude=./.git \
	  --exclude=./tests/integration/tmp --exclude=node_modules -cf - . | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc -j2
	mv $(DEB_DIR)/src/stagecoach*_$(VERSION)_* $(DEB_DIR)/
	rm -rf $(DEB_DIR)/src
	lintian --fail-on error --info --display-info $(DEB_DIR)/stagecoach_$(VERSION)_*.changes
	@ls -l $(DEB_DIR)/stagecoach_$(VERSION)_*.deb

# Every unit binary runs, then the target fails if any of them failed.
unit: $(UNIT_BINS)
	@failed=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || failed=1; done; exit $$failed

# The .bats files BATS_JOBS at a time (GNU parallel; the suite mostly waits
# on restic, servers and sleeps); the tests of one file keep their order.
# Every file starts its own MariaDB/s3rver/REST server on free ports.
BATS_JOBS  ?= 2
BATS       := bats --print-output-on-failure $(if $(and $(filter-out 1,$(BATS_JOBS)),$(shell command -v parallel)),--jobs $(BATS_JOBS) --no-parallelize-within-files)

integration: $(BUILD)/stagecoach $(HELPER_BINS)
	$(BATS) tests/integration

# The whole suite: unit tests, then the real binary against real SQLite and restic.
test: unit integration

# A real backup end to end on an embedded default (demo SQLite DB, local restic repo).
demo:
	scripts/demo.sh

lint: check-layers
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --std=c11 --include=/usr/include/jansson.h -I/usr/include/mariadb src tests/unit tests/fuzz
	clang-format --dry-run -Werror $(SRCS) $(HDRS) $(UNIT_SRCS) tests/unit/testutil.[ch] $(wildcard tests/fuzz/*.c)

# No circle of imports, each layer importing only those below it, and no
# command calling another command's file (nm on build/src/cmd/*.o).
.PHONY: check-layers
check-layers: $(BUILD)/stagecoach
	python3 scripts/check-layers.py $(BUILD)

format:
	clang-format -i $(SRCS) $(HDRS) $(UNIT_SRCS) tests/unit/testutil.[ch] $(wildcard tests/fuzz/*.c)

# clang-tidy 14 with .clang-tidy (its comment says which checks and why) on
# every source and fuzz target, two at a time; any finding fails.
TIDY       ?= clang-tidy-14
TIDY_FLAGS := -std=c11 -D_GNU_SOURCE -DSC_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
tidy:
	@printf '%s\n' $(SRCS) $(wildcard tests/fuzz/fuzz_*.c) | \
	  xargs -P2 -I{} $(TIDY) --quiet {} -- $(TIDY_FLAGS) 2>/dev/null; \
	  rc=$$?; [ $$rc -eq 0 ] && echo "tidy: no findings" || { echo "tidy: findings above"; exit 1; }

# The unit and integration suites under AddressSanitizer + UBSan.
sanitize:
	$(MAKE) BUILD=build-san CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
	  LDFLAGS='-fsanitize=address,undefined' build-san/stagecoach unit
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  SC_BIN=$(CURDIR)/build-san/stagecoach $(BATS) tests/integration

# libFuzzer targets (tests/fuzz/fuzz_*.c) with ASan + UBSan, each run for
# FUZZ_SECONDS from its committed seeds (tests/fuzz/corpus/NAME); new inputs
# go to build-fuzz/corpus/NAME, crashes to build-fuzz/crash-NAME-*.
FUZZ_SECONDS ?= 60
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_FLAGS   := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer

fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang CFLAGS='$(FUZZ_FLAGS)' LDFLAGS='-fsanitize=address,undefined' \
	  $(patsubst $(BUILD)/%,build-fuzz/%,$(LIB_OBJS)) >/dev/null
	@set -e; for n in $(FUZZ_NAMES); do \
	  clang $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o build-fuzz/fuzz_$$n tests/fuzz/fuzz_$$n.c \
	    $(patsubst $(BUILD)/%,build-fuzz/%,$(LIB_OBJS)) $(LDLIBS); done

fuzz: fuzz-build
	@set -e; for n in $(FUZZ_NAMES); do \
	  mkdir -p build-fuzz/corpus/$$n; echo "== fuzz $$n for $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=1024 \
	    -artifact_prefix=build-fuzz/crash-$$n- -print_final_stats=1 \
	    build-fuzz/corpus/$$n tests/fuzz/corpus/$$n 2>&1 | grep -E '^(stat::number_of_executed_units|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY)' ; \
	  if ls build-fuzz/crash-$$n-* >/dev/null 2>&1; then echo "fuzz $$n: crash"; exit 1; fi; done

clean:
	rm -rf $(BUILD) build-san build-fuzz

# The integration suites with every stagecoach run under valgrind memcheck
# (scripts/valgrind-bats.sh): any memory error or definite leak fails it.
VALGRIND_SUITES ?= stage ship safety config
.PHONY: valgrind
valgrind: $(BUILD)/stagecoach $(HELPER_BINS)
	scripts/valgrind-bats.sh $(VALGRIND_SUITES)

# Benchmarks against what users would otherwise run (scripts/bench/run.py,
# results in docs/performance.md). Data is generated, cached in build-bench/;
# results go to build-bench/results.json. BENCH_SCALE=0.05 for a quick run.
# A second binary without BLAKE2b in the sink measures what hashing costs.
.PHONY: bench
bench:
	$(MAKE) BUILD=build-bench CFLAGS='-O2 -g' build-bench/stagecoach
	$(MAKE) BUILD=build-bench-nohash CFLAGS='-O2 -g -DSC_BENCH_NO_HASH' build-bench-nohash/stagecoach
	@mkdir -p build-bench/bench
	$(CC) -O2 -g -std=c11 -Wall -Wextra -Werror -o build-bench/bench/sqlite_load \
	  scripts/bench/sqlite_load.c $(HELPER_COMMON) $(shell pkg-config --cflags --libs sqlite3)
	python3 scripts/bench/run.py

# The suites that talk to restic (ship, the check tests in retention, ...),
# against Debian 13's restic 0.18 instead of the system's 0.14:
# scripts/install-deps.sh fetches it into SC_TEST_PREFIX. tests/integration/
# helpers.bash puts SC_RESTIC into the configs and first on PATH.
RESTIC018        ?= $(or $(SC_TEST_PREFIX),/opt/stagecoach-test)/restic-0.18/usr/bin/restic
RESTIC018_SUITES ?= ship offsite retention restore drill crash
.PHONY: integration-restic018
integration-restic018: $(BUILD)/stagecoach $(HELPER_BINS)
	@$(RESTIC018) version | grep -q '^restic 0\.18\.' || \
	  { echo "$(RESTIC018) is not restic 0.18: run scripts/install-deps.sh"; exit 1; }
	SC_RESTIC=$(RESTIC018) $(BATS) $(RESTIC018_SUITES:%=tests/integration/%.bats)

# The build and the unit tests on Debian 13 (trixie)'s gcc and libraries,
# in a debootstrap chroot made once and cached in DEBIAN13_DIR
# (scripts/test-debian13.sh; root, network to deb.debian.org).
DEBIAN13_DIR ?= $(CURDIR)/build/debian13
.PHONY: test-debian13
test-debian13:
	DEBIAN13_DIR=$(DEBIAN13_DIR) scripts/test-debian13.sh
