/* cuda-tiled.hip - hip-tiled: backends/cuda_tiled/cuda-tiled.cu itself, built by hipcc (see hip-tiled.h). */
#include "hip-tiled.h"

namespace natten_hip {
#include "../cuda_tiled/cuda-tiled.cu"
}
