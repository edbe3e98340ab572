/* tiled-f16.hip - hip-tiled: backends/cuda_tiled/tiled-f16.cu itself, built by hipcc (see hip-tiled.h). */
#include "hip-tiled.h"

namespace natten_hip {
#include "../cuda_tiled/tiled-f16.cu"
}
