# stagecoach build. Every library through pkg-config.
VERSION    := 0.1.0
PREFIX     ?= /usr/local
BUILD      ?= build
CC         ?= cc
PKGS       := sqlite3 libmariadb libarchive libsodium inih jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
CFLAGS     ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
              -DSC_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
override LDLIBS += $(PKG_LIBS)

SRCS       := $(sort $(wildcard src/*.c src/*/*.c))
OBJS       := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS   := $(filter-out $(BUILD)/src/main.o,$(OBJS))
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/helpers/%)

.PHONY: all install test unit integration demo lint format sanitize clean deps

all: $(BUILD)/stagecoach

$(BUILD)/stagecoach: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) $(shell pkg-config --libs cmocka)

# Small C programs the integration tests drive (e.g. a busy SQLite writer).
$(BUILD)/tests/helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs sqlite3)

-include $(OBJS:.o=.d)

install: $(BUILD)/stagecoach
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BUILD)/stagecoach $(DESTDIR)$(PREFIX)/bin/stagecoach
	install -m 0644 docs/stagecoach.1 $(DESTDIR)$(PREFIX)/share/man/man1/stagecoach.1

deps:
	scripts/install-deps.sh

# Every unit binary runs, then the target fails if any of them failed.
unit: $(UNIT_BINS)
	@failed=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || failed=1; done; exit $$failed

integration: $(BUILD)/stagecoach $(HELPER_BINS)
	bats --print-output-on-failure tests/integration

# The whole suite: unit tests, then the real binary against real SQLite and restic.
test: unit integration

# A real backup end to end on an embedded default (demo SQLite DB, local restic repo).
demo:
	scripts/demo.sh

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --std=c11 --include=/usr/include/jansson.h -I/usr/include/mariadb src tests/unit
	clang-format --dry-run -Werror $(SRCS) $(wildcard src/*/*.h) $(UNIT_SRCS)

format:
	clang-format -i $(SRCS) $(wildcard src/*/*.h) $(UNIT_SRCS)

# The unit and integration suites under AddressSanitizer + UBSan.
sanitize:
	$(MAKE) BUILD=build-san CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
	  LDFLAGS='-fsanitize=address,undefined' build-san/stagecoach unit
	SC_BIN=$(CURDIR)/build-san/stagecoach bats tests/integration

clean:
	rm -rf $(BUILD) build-san
