# Petrel build. Plain GNU make; every source file is found by wildcard so a
# new command or module is one new file, not an edit here.

CC       ?= cc
B        ?= build
BIN      ?= bin
CSTD     := -std=c17 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers
OPT      ?= -O2 -g
SAN      ?=
# SAN=1: ASan+UBSan build in its own tree, so it never mixes with the normal one.
ifeq ($(SAN),1)
  B      := build-san
  BIN    := build-san/bin
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN  := -fsanitize=address,undefined
endif
# FUZZ=1 (set by `make fuzz`): clang with libFuzzer instrumentation.
ifeq ($(FUZZ),1)
  CC     := clang
  B      := build-fuzz
  BIN    := build-fuzz/bin
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  LDSAN  := -fsanitize=address,undefined
endif
CFLAGS   += $(CSTD) $(WARN) $(OPT) -Icommon -I$(B)/gen -Ifrontend -Ibackend $(shell pkg-config --cflags libpq openssl hiredis libprotobuf-c 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs libpq openssl hiredis libprotobuf-c 2>/dev/null) -lev -lcrypt -lz -lm -lunistring -pthread
LDFLAGS  += $(LDSAN)

# Quiet by default (one line per file); `make V=1` shows the commands.
ifeq ($(V),1)
  Q :=
  say = @true
else
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2)
endif

PROTO_SRC  := $(wildcard proto/*.proto)
PROTO_C    := $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTO_SRC))
PROTO_H    := $(PROTO_C:.c=.h)
MIGRATIONS := $(sort $(wildcard backend/migrations/*.sql))

COMMON_SRC   := $(wildcard common/*.c) $(PROTO_C)
FRONTEND_SRC := $(filter-out frontend/main.c,$(wildcard frontend/*.c frontend/*/*.c))
BACKEND_SRC  := $(filter-out backend/main.c,$(wildcard backend/*.c backend/*/*.c)) $(B)/gen/migrations.c
ADMIN_SRC    := $(wildcard admin/*.c)
UNIT_SRC     := $(wildcard tests/unit/test_*.c)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(patsubst $(B)/%,%,$(1)))

COMMON_OBJ   := $(call obj,$(COMMON_SRC))
FRONTEND_OBJ := $(call obj,$(FRONTEND_SRC))
BACKEND_OBJ  := $(call obj,$(BACKEND_SRC))
UNIT_BIN     := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60

BINS := $(BIN)/petrel-frontend $(BIN)/petrel-backend $(BIN)/petrel-admin

.PHONY: all deps test unit run bench fuzz fuzz-build fuzz-bins image-test clean
# Generated protobuf headers are intermediates that must survive the build.
.SECONDARY:
all: $(BINS)

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/gen
	$(call say,PROTOC,$<)
	$(Q)protoc-c --proto_path=proto --c_out=$(B)/gen $<

$(B)/gen/migrations.c: $(MIGRATIONS) tools/embed-migrations.sh
	@mkdir -p $(B)/gen
	sh tools/embed-migrations.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(B)/obj/gen/%.o: $(B)/gen/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/obj/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libcommon.a: $(COMMON_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(B)/libfrontend.a: $(FRONTEND_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(B)/libbackend.a: $(BACKEND_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/petrel-frontend: $(B)/obj/frontend/main.o $(B)/libfrontend.a $(B)/libcommon.a
	@mkdir -p $(BIN)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/petrel-backend: $(B)/obj/backend/main.o $(B)/libbackend.a $(B)/libcommon.a
	@mkdir -p $(BIN)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BIN)/petrel-admin: $(call obj,$(ADMIN_SRC)) $(B)/libbackend.a $(B)/libcommon.a
	@mkdir -p $(BIN)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Each unit test links against every library; the linker takes only what it uses.
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libfrontend.a $(B)/libbackend.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/fuzz/%: $(B)/obj/tests/fuzz/%.o $(B)/libfrontend.a $(B)/libbackend.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

deps:
	@sh tools/deps.sh

unit: $(UNIT_BIN)

fuzz-bins: $(FUZZ_BIN)

# The fuzz targets, built with clang in build-fuzz/ (tests/run replays each
# one's committed corpus; `make fuzz` explores for FUZZ_SECONDS each).
fuzz-build:
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-bins

fuzz: fuzz-build
	@sh tests/fuzz/run $(FUZZ_SECONDS)

# Petrel against Debian's Dovecot on this machine, same run (tests/bench).
bench: deps
	@bash tests/bench/run.sh

# Builds the container images and runs them as a cluster with podman; prints
# SKIP (and succeeds) where no container engine can run.
image-test:
	@bash tests/image/run.sh

# With SAN=1 the suite runs the build-san/ binaries: tests/run reads the unit
# tests from PETREL_BUILD_DIR, deploy/local/cluster and the integration tests
# take the servers from PETREL_CLUSTER_BIN (and fail on sanitizer reports).
test: deps
	@$(MAKE) --no-print-directory all unit fuzz-build
	@PETREL_BUILD_DIR=$(B) PETREL_CLUSTER_BIN=$(abspath $(BIN)) sh tests/run

run: deps
	@$(MAKE) --no-print-directory all
	@bash deploy/local/run

clean:
	rm -rf build build-san build-fuzz bin

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
