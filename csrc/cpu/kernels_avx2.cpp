// Compiled with -mavx2 -mfma (see CMakeLists.txt).
#define AMI_ISA_NS avx2
#define AMI_ISA_NAME "avx2"
#define AMI_VEC 8
#define AMI_MR 6
#define AMI_NV 2
#include "cpu/kernels_impl.inl"

namespace ami::cpu {
const Kernels* kernels_avx2() { return &avx2::kKernels; }
}  // namespace ami::cpu
