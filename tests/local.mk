# Check suites (see tests/README in docs/testing.md).  `make check` runs them.
if HAVE_CHECK
check_PROGRAMS = tests/check_window tests/check_reference tests/check_equivalence tests/check_errors \
	tests/check_grad tests/check_symbols tests/check_selection tests/check_tuner docs/examples/hello \
	tests/check_limits tests/check_faults tests/check_threads
TESTS = $(check_PROGRAMS) tests/exports.sh tests/info-cli.sh tests/tune-cli.sh
noinst_LTLIBRARIES += tests/libtestutil.la
tests_libtestutil_la_SOURCES = tests/testutil.c tests/testutil.h tests/cases.c tests/cases.h
tests_libtestutil_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = tests/libtestutil.la libnatten.la $(CHECK_LIBS) -lm
tests_check_window_SOURCES = tests/check_window.c
tests_check_window_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_window_LDADD = $(TEST_LIBS)
tests_check_reference_SOURCES = tests/check_reference.c
tests_check_reference_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_reference_LDADD = $(TEST_LIBS)
tests_check_equivalence_SOURCES = tests/check_equivalence.c
tests_check_equivalence_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_equivalence_LDADD = $(TEST_LIBS)
tests_check_limits_SOURCES = tests/check_limits.c
tests_check_limits_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_limits_LDADD = $(TEST_LIBS)
tests_check_faults_SOURCES = tests/check_faults.c
tests_check_faults_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_faults_LDADD = $(TEST_LIBS)
tests_check_threads_SOURCES = tests/check_threads.c
tests_check_threads_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_threads_LDADD = $(TEST_LIBS)
tests_check_selection_SOURCES = tests/check_selection.c
tests_check_selection_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_selection_LDADD = $(TEST_LIBS)
# check_tuner drives lib/tune.c's internals with fake backends: it compiles
# the few library sources it needs instead of linking the (hidden-symbol)
# shared library.
tests_check_tuner_SOURCES = tests/check_tuner.c lib/tune.c lib/validate.c lib/status.c lib/alloc.c
tests_check_tuner_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_tuner_LDADD = $(CHECK_LIBS) -lm
tests_check_errors_SOURCES = tests/check_errors.c
tests_check_errors_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_errors_LDADD = $(TEST_LIBS)
tests_check_grad_SOURCES = tests/check_grad.c
tests_check_grad_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_grad_LDADD = $(TEST_LIBS)
tests_check_symbols_SOURCES = tests/check_symbols.c
tests_check_symbols_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_symbols_LDADD = libnatten.la $(CHECK_LIBS)
docs_examples_hello_SOURCES = docs/examples/hello.c
docs_examples_hello_LDADD = libnatten.la
if ENABLE_OPENMP_BACKEND
# The OpenMP backend's tiling edges and run-to-run reproducibility; its
# configurations and misaligned tensors from the same source, as a second
# program that `make -j` runs beside the first.
check_PROGRAMS += tests/check_openmp tests/check_openmp_configs
tests_check_openmp_SOURCES = tests/check_openmp.c
tests_check_openmp_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_openmp_LDADD = $(TEST_LIBS)
tests_check_openmp_configs_SOURCES = tests/check_openmp.c
tests_check_openmp_configs_CPPFLAGS = $(AM_CPPFLAGS) -DCHECK_OPENMP_CONFIGS
tests_check_openmp_configs_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_openmp_configs_LDADD = $(TEST_LIBS)
endif
EXTRA_DIST += tests/exports.sh
# OpenMP threads wait passively (sleep, not spin) unless told otherwise: the
# suites make many tiny calls, and with test programs side by side (make -j,
# the GPU host's sanitizers) spinning threads starve the working ones.  On a
# 2-CPU machine beside two busy loops check_selection took 34 s with
# OMP_WAIT_POLICY=active, 3.3 s with libgomp's default, 1.6 s passive (and
# 175 s with the default under a heavier, shared load).
AM_TESTS_ENVIRONMENT = srcdir=$(srcdir); export srcdir; \
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-passive}; export OMP_WAIT_POLICY;
# natten-bench's command line, output formats and tiny suites (bench/).
TESTS += tests/bench-cli.sh
# the GPU-host scripts' logic (gpu-sanitize.sh, gpu-profile.sh) with stand-in tools
TESTS += tests/gpu-tools.sh
if HAVE_HIP
# ROCm test memory (tt_hip_mem) and the hip-tiled suite (exits 77 without an AMD GPU).
tests_libtestutil_la_SOURCES += tests/testutil-hip.c
tests_libtestutil_la_CFLAGS += -DTT_HAVE_HIP $(HIP_CPPFLAGS)
TEST_LIBS += $(HIP_LIBS)
check_PROGRAMS += tests/check_hip
tests_check_hip_SOURCES = tests/check_hip.c
tests_check_hip_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_hip_LDADD = $(TEST_LIBS)
endif
if HAVE_CUDA
# CUDA test memory (tt_cuda_mem) and the CUDA-only suite; both link their own
# static CUDA runtime (libnatten keeps its copy private).
tests_libtestutil_la_SOURCES += tests/testutil-cuda.c
tests_libtestutil_la_CFLAGS += -DTT_HAVE_CUDA $(CUDA_CPPFLAGS)
TEST_LIBS += $(CUDA_LIBS)
check_PROGRAMS += tests/check_cuda
tests_check_cuda_SOURCES = tests/check_cuda.c
tests_check_cuda_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CUDA_CPPFLAGS)
tests_check_cuda_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/check_cuda_tc
tests_check_cuda_tc_SOURCES = tests/check_cuda_tc.c
tests_check_cuda_tc_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CUDA_CPPFLAGS)
tests_check_cuda_tc_LDADD = $(TEST_LIBS)
endif
else
check-local:
	@echo "make check needs the Check library (Debian: apt-get install check); configure did not find it" >&2
	@exit 1
endif
EXTRA_DIST += tests/bench-cli.sh
EXTRA_DIST += tests/info-cli.sh tests/tune-cli.sh

# make check-valgrind: the Check suites under valgrind memcheck, without Check's
# fork (CK_FORK=no) so that valgrind follows every test; any memcheck error or
# definite/indirect leak fails the suite.  Slow: not run by CI; see
# docs/reliability.md.  Pick suites with TESTS='tests/check_limits ...'.
VALGRIND = valgrind
VALGRIND_FLAGS = --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=1 -q
check-valgrind:
	CK_FORK=no CK_TIMEOUT_MULTIPLIER=100 $(MAKE) $(AM_MAKEFLAGS) check \
	    LOG_COMPILER='$(LIBTOOL) --mode=execute $(VALGRIND) $(VALGRIND_FLAGS)' \
	    TEST_SUITE_LOG=test-suite-valgrind.log
.PHONY: check-valgrind
EXTRA_DIST += tests/gpu-sanitize.sh tests/gpu-tools.sh tools/gpu-profile.sh
