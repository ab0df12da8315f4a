// Compiled with -mavx512f -mavx512vl -mfma (see CMakeLists.txt).
#define AMI_ISA_NS avx512
#define AMI_ISA_NAME "avx512"
#define AMI_VEC 16
#define AMI_MR 8
#define AMI_NV 2
#include "cpu/kernels_impl.inl"

namespace ami::cpu {
const Kernels* kernels_avx512() { return &avx512::kKernels; }
}  // namespace ami::cpu
