/*
 * cuda-tc.h - private to backends/cuda_tc: what the host part (cuda-tc.cu)
 * and the per-dtype kernel files (tc-f16.cu, tc-bf16.cu) share.
 */
#ifndef NATTEN_CUDA_TC_H
#define NATTEN_CUDA_TC_H

#include "tc_kernels.cuh"

/* Run the fused forward (backward = 0) or backward (1) for head dim D
 * (32, 64 or 128) on stream st with kernel configuration variant (-1: the
 * default; 0..tc::N_CFG-1: tc::cfg_names).  Parameters were checked by
 * supports(). */
cudaError_t tc_run_f16(const tc::Params &p, cudaStream_t st, int D, int backward, int variant);
cudaError_t tc_run_bf16(const tc::Params &p, cudaStream_t st, int D, int backward, int variant);
/* The forward alone, per head dim (tc-fwd32.cu ...), fp16 or (bf16 != 0) bf16. */
cudaError_t tc_forward_d32(const tc::Params &p, cudaStream_t st, int bf16, int variant);
cudaError_t tc_forward_d64(const tc::Params &p, cudaStream_t st, int bf16, int variant);
cudaError_t tc_forward_d128(const tc::Params &p, cudaStream_t st, int bf16, int variant);
/* The Hopper forward, head dim 128 (tc-fwd128-sm90a.cu, built only with
 * HAVE_CUDA_TC_SM90A; sm_90a code only), variant which (0: two blocks of two
 * warpgroups per SM; 1: warp-specialised), and whether its kernels load on
 * the current device (cudaSuccess). */
cudaError_t tc_forward_d128_sm90a(const tc::Params &p, cudaStream_t st, int bf16, int which);
cudaError_t tc_probe_sm90a(void);
/* which 4 (v12), the split forward: plans p for it (p.nsm, p.force_split
 * set before; boxes, p.sfull, p.sparts after: 1 part, no split) and returns
 * the bytes of device scratch p.part must then hold (0: none) and the grid
 * of whole boxes (*grid).  tc_forward_d128_sm90a's which 4 runs a p planned
 * so as it is (plans it itself when p.sparts is 0). */
size_t tc_forward_split_plan(tc::Params &p, int64_t *grid);
/* v14: the current device's kept arrival counters of the split forward
 * (zero between launches; *n of them), or NULL (then *n is 0). */
unsigned int *tc_split_counters(size_t *n);
/* The Hopper backward, head dim 128 (tc-bwd128-sm90a.cu, built with the
 * forward's), variant which (0..3: the configurations named in cuda-tc.cu;
 * 4: variant 1 without v17's PIPE, for measurements);
 * p.delta must hold B*H*L0*L1*L2 floats.  And whether its kernels load. */
cudaError_t tc_backward_d128_sm90a(const tc::Params &p, cudaStream_t st, int bf16, int which);
cudaError_t tc_probe_sm90a_bwd(void);

#endif
