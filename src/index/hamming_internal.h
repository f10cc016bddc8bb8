// Kernel tables defined in the per-ISA translation units. Included only by hamming_*.cpp.
#pragma once

#include "index/hamming.h"

namespace imsat::index::internal {

extern const HammingKernel kScalarKernel;
extern const HammingKernel kAvx2Kernel;
extern const HammingKernel kAvx512Kernel;

}  // namespace imsat::index::internal
