/* testutil-cuda.c - test tensors in CUDA device memory (device 0). */
#include "testutil.h"

#include <cuda_runtime_api.h>

static int cu_alloc(void **p, size_t bytes)
{
    if (cudaMalloc(p, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError();
        *p = NULL;
        return 0;
    }
    return 1;
}

static void cu_release(void *p) { (void)cudaFree(p); }

/* From pageable memory cudaMemcpy may return before its DMA has landed, and
 * a kernel on a non-blocking stream does not wait for the legacy stream's
 * copy: the legacy stream is synchronised, so that an upload (inputs, and
 * the poison of outputs) is in place for whatever stream runs next. */
static int cu_upload(void *dev, const void *host, size_t bytes)
{
    return cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice) == cudaSuccess &&
           cudaStreamSynchronize(0) == cudaSuccess;
}

static int cu_download(void *host, const void *dev, size_t bytes)
{
    return cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
}

const tt_mem tt_cuda_mem = {kDLCUDA, cu_alloc, cu_release, cu_upload, cu_download};
