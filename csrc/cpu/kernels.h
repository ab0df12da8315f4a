// SIMD kernels of the CPU backend, compiled once per instruction set (kernels_<isa>.cpp, each with
// its own compiler flags) and chosen at run time from what the CPU supports.
#pragma once

namespace ami::cpu {

struct Kernels {
  const char* isa;  // "avx512", "avx2", "generic"
  int mr;           // rows per micro-tile: gemm's M must be a multiple of it
  int nr;           // columns per packed weight panel
  // C[M, Npad] = A[M, K] (row stride lda) @ Bp + bias; Bp = weights packed by pack_weights into
  // Npad/nr panels of (K, nr), bias (Npad). C has row stride ldc >= Npad.
  void (*gemm_bias)(const float* A, int lda, int M, int K, const float* Bp, int Npad, const float* bias,
                    float* C, int ldc);
  // In place on the first n columns of M rows of C: LayerNorm(gamma, beta, eps), then activation.
  void (*layer_norm_act)(float* C, int ldc, int M, int n, const float* gamma, const float* beta, float eps,
                         int activation);
  // In place on the first n columns of M rows of C: the activation alone (a hidden layer without LayerNorm).
  void (*act)(float* C, int ldc, int M, int n, int activation);
};

const Kernels* kernels_avx512();  // nullptr when not compiled in
const Kernels* kernels_avx2();    // nullptr when not compiled in
const Kernels& kernels_generic();

// "auto" picks the widest ISA that is both compiled in and supported by this CPU.
const Kernels& select_kernels(const char* isa);
// ISAs usable on this machine, widest first.
const char* const* available_isas(int* count);

}  // namespace ami::cpu
