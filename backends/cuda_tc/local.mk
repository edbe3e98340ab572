# cuda-tc: fused NA forward/backward on tensor cores (mma.sync), fp16/bf16,
# compiled only for the configured architectures >= sm_80 (CUDA_TC_GENCODE).
# One .cu per dtype so that `make -j2` compiles them side by side; the
# kernel templates are in tc_kernels.cuh.  standalone/ holds the device
# harness (built by hand with nvcc, see NOTES.md), not part of the build.
tc_headers = backends/cuda_tc/cuda-tc.h backends/cuda_tc/tc_kernels.cuh
EXTRA_DIST += $(tc_headers) backends/cuda_tc/NOTES.md backends/cuda_tc/standalone/harness.cu \
	backends/cuda_tc/standalone/gpu-run.sh backends/cuda_tc/standalone/gpu-run2.sh \
	backends/cuda_tc/standalone/gpu-run3.sh
if HAVE_CUDA_TC
libnatten_la_SOURCES += backends/cuda_tc/cuda-tc.cu backends/cuda_tc/tc-f16.cu backends/cuda_tc/tc-bf16.cu
backends/cuda_tc/cuda-tc.lo backends/cuda_tc/tc-f16.lo backends/cuda_tc/tc-bf16.lo: \
	NVCC_ARCH_FLAGS = $(CUDA_TC_GENCODE)
backends/cuda_tc/cuda-tc.lo backends/cuda_tc/tc-f16.lo backends/cuda_tc/tc-bf16.lo: \
	$(srcdir)/backends/cuda_tc/cuda-tc.h $(srcdir)/backends/cuda_tc/tc_kernels.cuh \
	$(srcdir)/lib/natten-impl.h $(srcdir)/lib/natten-window.h
endif
