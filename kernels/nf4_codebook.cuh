// The 16-value NF4 codebook in constant memory, for the kernels that decode
// NF4 (the list in kernels/nf4_values.h, which Codebook() uses too). Each
// including translation unit gets its own copy.
#ifndef LORAD_KERNELS_NF4_CODEBOOK_CUH_
#define LORAD_KERNELS_NF4_CODEBOOK_CUH_

#include "kernels/nf4_values.h"

namespace lorad::kernels {
namespace {

__constant__ float c_nf4[16] = {LORAD_NF4_VALUES};

}  // namespace
}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_NF4_CODEBOOK_CUH_
