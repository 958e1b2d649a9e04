# petrel-bench, the load generator of `make bench` (tests/bench/run.sh).
# Usable on its own (make -f tests/bench/bench.mk) or included by the
# Makefile; names are prefixed so they clash with nothing there.
BENCH_CC     ?= cc
BENCH_CFLAGS ?= -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow \
                -Wno-unused-parameter -Wno-missing-field-initializers
BENCH_SRC    := $(wildcard tests/bench/*.c)

build/bench/petrel-bench: $(BENCH_SRC) tests/bench/bench.h tests/bench/bench.mk
	@mkdir -p build/bench
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $(BENCH_SRC) -lev -lssl -lcrypto
