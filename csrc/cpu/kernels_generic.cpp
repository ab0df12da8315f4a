// Baseline ISA of the compiler target (SSE2 on x86-64, NEON on aarch64), plus the dispatcher.
#include <cstring>
#include <stdexcept>
#include <string>

#define AMI_ISA_NS generic
#define AMI_ISA_NAME "generic"
#define AMI_VEC 4
#define AMI_MR 4
#define AMI_NV 2
#include "cpu/kernels_impl.inl"

namespace ami::cpu {

const Kernels& kernels_generic() { return generic::kKernels; }

#ifndef AMI_ROBOT_HAVE_AVX512
const Kernels* kernels_avx512() { return nullptr; }
#endif
#ifndef AMI_ROBOT_HAVE_AVX2
const Kernels* kernels_avx2() { return nullptr; }
#endif

namespace {
bool cpu_supports(const char* isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return std::strcmp(isa, "generic") == 0;
}
}  // namespace

const char* const* available_isas(int* count) {
  static const char* isas[3];
  static int n = [] {
    int k = 0;
    if (kernels_avx512() && cpu_supports("avx512")) isas[k++] = "avx512";
    if (kernels_avx2() && cpu_supports("avx2")) isas[k++] = "avx2";
    isas[k++] = "generic";
    return k;
  }();
  *count = n;
  return isas;
}

const Kernels& select_kernels(const char* isa) {
  int count = 0;
  const char* const* isas = available_isas(&count);
  const std::string want = isa;
  for (int i = 0; i < count; ++i) {
    if (want == "auto" || want == isas[i]) {
      if (std::strcmp(isas[i], "avx512") == 0) return *kernels_avx512();
      if (std::strcmp(isas[i], "avx2") == 0) return *kernels_avx2();
      return kernels_generic();
    }
  }
  std::string known;
  for (int i = 0; i < count; ++i) known += std::string(i ? ", " : "") + isas[i];
  throw std::invalid_argument("CPU kernels '" + want + "' are not available here (available: auto, " + known + ")");
}

}  // namespace ami::cpu
