# cuda-tc: fused NA forward/backward on tensor cores (mma.sync), fp16/bf16,
# compiled only for the configured architectures >= sm_80 (CUDA_TC_GENCODE).
# The backward per dtype, the forward per head dim, so that a parallel make
# compiles them side by side; the kernel templates are in tc_kernels.cuh.
# standalone/ holds the device harness (built by hand with nvcc, see
# NOTES.md), not part of the build.
tc_headers = backends/cuda_tc/cuda-tc.h backends/cuda_tc/tc_kernels.cuh backends/cuda_tc/tc_wgmma.cuh \
	backends/cuda_tc/tc_wgmma_bwd.cuh
EXTRA_DIST += $(tc_headers) backends/cuda_tc/NOTES.md backends/cuda_tc/standalone/harness.cu \
	backends/cuda_tc/standalone/gpu-run.sh backends/cuda_tc/standalone/gpu-run2.sh \
	backends/cuda_tc/standalone/gpu-run3.sh backends/cuda_tc/standalone/gpu-run4.sh \
	backends/cuda_tc/standalone/gpu-run5.sh backends/cuda_tc/standalone/gpu-run6.sh \
	backends/cuda_tc/standalone/gpu-run7.sh backends/cuda_tc/standalone/gpu-run8.sh \
	backends/cuda_tc/standalone/gpu-run9.sh backends/cuda_tc/standalone/gpu-run10.sh \
	backends/cuda_tc/standalone/gpu-run11.sh backends/cuda_tc/standalone/gpu-run12.sh \
	backends/cuda_tc/standalone/gpu-run13.sh backends/cuda_tc/standalone/gpu-run14.sh \
	backends/cuda_tc/standalone/gpu-run15.sh backends/cuda_tc/standalone/gpu-run16.sh \
	backends/cuda_tc/standalone/gpu-run17.sh backends/cuda_tc/standalone/gpu-run18.sh \
	backends/cuda_tc/standalone/gpu-run-split.sh backends/cuda_tc/standalone/gpu-run-tc11.sh \
	backends/cuda_tc/standalone/dispatch-check.cu backends/cuda_tc/standalone/bwd-count.cu \
	backends/cuda_tc/tc-fwd128-sm90a.cu backends/cuda_tc/tc-bwd128-sm90a.cu
if HAVE_CUDA_TC
tc_sources = backends/cuda_tc/cuda-tc.cu backends/cuda_tc/tc-f16.cu backends/cuda_tc/tc-bf16.cu \
	backends/cuda_tc/tc-fwd32.cu backends/cuda_tc/tc-fwd64.cu backends/cuda_tc/tc-fwd128.cu
tc_objects = backends/cuda_tc/cuda-tc.lo backends/cuda_tc/tc-f16.lo backends/cuda_tc/tc-bf16.lo \
	backends/cuda_tc/tc-fwd32.lo backends/cuda_tc/tc-fwd64.lo backends/cuda_tc/tc-fwd128.lo
libnatten_la_SOURCES += $(tc_sources)
$(tc_objects): NVCC_ARCH_FLAGS = $(CUDA_TC_GENCODE)
$(tc_objects): \
	$(srcdir)/backends/cuda_tc/cuda-tc.h $(srcdir)/backends/cuda_tc/tc_kernels.cuh $(srcdir)/backends/cuda-common.cuh \
	$(srcdir)/lib/natten-impl.h $(srcdir)/lib/natten-window.h
# The Hopper forward and backward (wgmma): sm_90a only, when configure found
# 90 among the architectures (HAVE_CUDA_TC_SM90A); one translation unit each
# (the forward: two kernels; the backward: two variants x two dtypes).
if HAVE_CUDA_TC_SM90A
tc_sm90a_objects = backends/cuda_tc/tc-fwd128-sm90a.lo backends/cuda_tc/tc-bwd128-sm90a.lo
libnatten_la_SOURCES += backends/cuda_tc/tc-fwd128-sm90a.cu backends/cuda_tc/tc-bwd128-sm90a.cu
$(tc_sm90a_objects): NVCC_ARCH_FLAGS = $(CUDA_TC_SM90A_GENCODE)
$(tc_sm90a_objects): \
	$(srcdir)/backends/cuda_tc/cuda-tc.h $(srcdir)/backends/cuda_tc/tc_kernels.cuh \
	$(srcdir)/backends/cuda_tc/tc_wgmma.cuh $(srcdir)/lib/natten-window.h
backends/cuda_tc/tc-bwd128-sm90a.lo: $(srcdir)/backends/cuda_tc/tc_wgmma_bwd.cuh
endif
endif
