/* testutil-hip.c - test tensors in HIP device memory (device 0), for hip-tiled. */
#include "testutil.h"

#include <hip/hip_runtime_api.h>

static int hip_alloc(void **p, size_t bytes)
{
    if (hipMalloc(p, bytes ? bytes : 1) != hipSuccess) {
        (void)hipGetLastError();
        *p = NULL;
        return 0;
    }
    return 1;
}

static void hip_release(void *p) { (void)hipFree(p); }

static int hip_upload(void *dev, const void *host, size_t bytes)
{
    return hipMemcpy(dev, host, bytes, hipMemcpyHostToDevice) == hipSuccess;
}

static int hip_download(void *host, const void *dev, size_t bytes)
{
    return hipMemcpy(host, dev, bytes, hipMemcpyDeviceToHost) == hipSuccess;
}

const tt_mem tt_hip_mem = {kDLROCM, hip_alloc, hip_release, hip_upload, hip_download};
