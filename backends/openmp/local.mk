# The OpenMP CPU backend: a convenience library so that only these sources
# are compiled with $(OPENMP_CFLAGS) (and OPENMP_EXTRA_CFLAGS, a configure
# variable: .ci/run's sanitizer build); libnatten links with OpenMP's runtime.
if ENABLE_OPENMP_BACKEND
noinst_LTLIBRARIES += backends/openmp/libnatten_openmp.la
backends_openmp_libnatten_openmp_la_SOURCES = backends/openmp/openmp.c backends/openmp/kernels.h backends/openmp/fast.h
backends_openmp_libnatten_openmp_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(OPENMP_EXTRA_CFLAGS)
libnatten_la_LIBADD += backends/openmp/libnatten_openmp.la
libnatten_la_LDFLAGS += $(OPENMP_CFLAGS)
endif
