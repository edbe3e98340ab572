# libFuzzer targets (docs/reliability.md).  Built only when configure found a
# compiler that links -fsanitize=fuzzer (./configure CC=clang --enable-fuzzing,
# best together with CFLAGS=-fsanitize=address,undefined).
# `make fuzz-smoke` runs each target for FUZZ_SECONDS from its seed corpus.
FUZZ_TARGETS = fuzz/fuzz_ops fuzz/fuzz_wisdom
FUZZ_SECONDS = 60
FUZZ_FLAGS = -timeout=20 -print_final_stats=1
EXTRA_DIST += fuzz/seeds fuzz/fuzz_ops.c fuzz/fuzz_wisdom.c
if FUZZING
EXTRA_PROGRAMS += $(FUZZ_TARGETS)
fuzz_fuzz_ops_SOURCES = fuzz/fuzz_ops.c
fuzz_fuzz_ops_LDFLAGS = -static -fsanitize=fuzzer
fuzz_fuzz_ops_LDADD = libnatten.la -lm
# fuzz_wisdom calls the internal parser: linked statically, hidden symbols resolve.
fuzz_fuzz_wisdom_SOURCES = fuzz/fuzz_wisdom.c
fuzz_fuzz_wisdom_LDFLAGS = -static -fsanitize=fuzzer
fuzz_fuzz_wisdom_LDADD = libnatten.la -lm
CLEANFILES += $(FUZZ_TARGETS)

fuzz-smoke: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	    name=`basename $$t`; \
	    mkdir -p fuzz/corpus/$$name || exit 1; \
	    echo "fuzz-smoke: $$name for $(FUZZ_SECONDS) s"; \
	    ./$$t $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) fuzz/corpus/$$name \
	        $(srcdir)/fuzz/seeds/$$name || exit 1; \
	done
else
fuzz-smoke:
	@echo "fuzz-smoke: skipped: fuzzing is not configured (needs ./configure CC=clang --enable-fuzzing and libFuzzer; Debian: apt-get install clang libclang-rt-14-dev)"
endif
.PHONY: fuzz-smoke
