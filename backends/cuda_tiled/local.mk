# cuda-tiled: the portable CUDA backend (every op and parameter; fp32, fp64,
# fp16, bf16 on sm_80+).  One .cu per dtype so that `make -j` compiles them
# side by side; kernels.cuh holds the templates they instantiate.
ct_headers = backends/cuda_tiled/cuda-tiled.h backends/cuda_tiled/kernels.cuh backends/cuda_tiled/fast2d.cuh \
	backends/cuda_tiled/mma2d.cuh backends/cuda_tiled/bulk2d.cuh
EXTRA_DIST += $(ct_headers)
if HAVE_CUDA
libnatten_la_SOURCES += backends/cuda_tiled/cuda-tiled.cu \
	backends/cuda_tiled/tiled-f32.cu backends/cuda_tiled/tiled-f64.cu \
	backends/cuda_tiled/tiled-f16.cu backends/cuda_tiled/tiled-bf16.cu
backends/cuda_tiled/cuda-tiled.lo backends/cuda_tiled/tiled-f32.lo backends/cuda_tiled/tiled-f64.lo \
backends/cuda_tiled/tiled-f16.lo backends/cuda_tiled/tiled-bf16.lo: \
	$(srcdir)/backends/cuda_tiled/cuda-tiled.h $(srcdir)/backends/cuda_tiled/kernels.cuh \
	$(srcdir)/backends/cuda_tiled/fast2d.cuh $(srcdir)/backends/cuda_tiled/mma2d.cuh \
	$(srcdir)/backends/cuda_tiled/bulk2d.cuh $(srcdir)/backends/cuda-common.cuh \
	$(srcdir)/lib/natten-impl.h $(srcdir)/lib/natten-window.h
endif

# The backend's timing program (make bench/cuda-tiled-bench; not built by default).
EXTRA_PROGRAMS = bench/cuda-tiled-bench
bench_cuda_tiled_bench_SOURCES = bench/cuda-tiled-bench.c
bench_cuda_tiled_bench_CFLAGS = $(AM_CFLAGS) $(CUDA_CPPFLAGS)
bench_cuda_tiled_bench_LDADD = libnatten.la $(CUDA_LIBS)
CLEANFILES = $(EXTRA_PROGRAMS)
