// Body of the CPU kernels, included by kernels_<isa>.cpp with AMI_ISA_NS, AMI_VEC (floats per
// vector), AMI_MR and AMI_NV (vectors per panel row) defined. Uses GCC/Clang vector extensions so
// one source serves every ISA; no standard-library code is instantiated here (per-ISA flags).
#include <cstddef>
#include <cstdint>

#include "cpu/kernels.h"

namespace ami::cpu::AMI_ISA_NS {
namespace {

typedef float vf __attribute__((vector_size(AMI_VEC * 4)));
typedef int32_t vi __attribute__((vector_size(AMI_VEC * 4)));
constexpr int W = AMI_VEC;
constexpr int MR = AMI_MR;
constexpr int NV = AMI_NV;
constexpr int NR = W * NV;

inline vf load(const float* p) { vf v; __builtin_memcpy(&v, p, sizeof(vf)); return v; }
inline void store(float* p, vf v) { __builtin_memcpy(p, &v, sizeof(vf)); }
inline vf splat(float x) { return x - vf{}; }  // exact for every x (unlike 0 + x for -0), folds to a broadcast
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }

inline void micro_tile(const float* __restrict A, int lda, int K, const float* __restrict B,
                       const float* __restrict bias, float* __restrict C, int ldc) {
  vf acc[MR][NV];
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    const vf b = load(bias + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i][j] = b;
  }
  for (int k = 0; k < K; ++k) {
    vf b[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) b[j] = load(B + k * NR + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const vf a = splat(A[i * lda + k]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] += a * b[j];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) store(C + i * ldc + j * W, acc[i][j]);
  }
}

void gemm_bias(const float* A, int lda, int M, int K, const float* Bp, int Npad, const float* bias, float* C,
               int ldc) {
  for (int jp = 0; jp < Npad; jp += NR) {
    const float* B = Bp + static_cast<size_t>(jp) * K;
    for (int i = 0; i < M; i += MR) micro_tile(A + static_cast<size_t>(i) * lda, lda, K, B, bias + jp, C + static_cast<size_t>(i) * ldc + jp, ldc);
  }
}

// exp(x) for x in about [-87, 88]: Cephes range reduction and degree-6 polynomial (~1 ulp).
inline vf vexp(vf x) {
  x = vmin(vmax(x, splat(-87.3f)), splat(88.3f));
  vf fx = x * 1.44269504088896341f + 0.5f;
  vi n = __builtin_convertvector(fx, vi);
  vf fn = __builtin_convertvector(n, vf);
  fn = fn > fx ? fn - 1.0f : fn;  // floor
  n = __builtin_convertvector(fn, vi);
  const vf r = x - fn * 0.693359375f + fn * 2.12194440e-4f;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const vf y = p * r * r + r + 1.0f;
  const vi scale_bits = (n + 127) << 23;
  vf scale;
  __builtin_memcpy(&scale, &scale_bits, sizeof(vf));
  return y * scale;
}

// erf(x): rational approximation on [-4, 4] (Eigen's float erf), |error| < 2e-7.
inline vf verf(vf x) {
  x = vmin(vmax(x, splat(-4.0f)), splat(4.0f));
  const vf x2 = x * x;
  vf p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = x * p;
  vf q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  return p / q;
}

inline vf activate(vf x, int activation) {
  switch (activation) {
    case 0: return 0.5f * x * (1.0f + verf(x * 0.70710678118654752f));
    case 1: return x / (1.0f + vexp(-x));
    case 2: return x > 0.0f ? x : vf{};
    default: {  // tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1))
      const vf ax = x > 0.0f ? x : -x;
      const vf t = 1.0f - 2.0f / (vexp(2.0f * ax) + 1.0f);
      return x < 0.0f ? -t : t;
    }
  }
}

void layer_norm_act(float* C, int ldc, int M, int n, const float* gamma, const float* beta, float eps,
                    int activation) {
  const int nv = n / W * W;
  for (int r = 0; r < M; ++r) {
    float* row = C + static_cast<size_t>(r) * ldc;
    vf vsum{};
    for (int j = 0; j < nv; j += W) vsum += load(row + j);
    float sum = 0.0f;
    for (int l = 0; l < W; ++l) sum += vsum[l];
    for (int j = nv; j < n; ++j) sum += row[j];
    const float mean = sum / static_cast<float>(n);
    vf vsq{};
    for (int j = 0; j < nv; j += W) {
      const vf d = load(row + j) - mean;
      vsq += d * d;
    }
    float sq = 0.0f;
    for (int l = 0; l < W; ++l) sq += vsq[l];
    for (int j = nv; j < n; ++j) sq += (row[j] - mean) * (row[j] - mean);
    const float inv = 1.0f / __builtin_sqrtf(sq / static_cast<float>(n) + eps);
    for (int j = 0; j < nv; j += W) {
      store(row + j, activate((load(row + j) - mean) * inv * load(gamma + j) + load(beta + j), activation));
    }
    if (nv < n) {  // tail: pad to one vector
      float tmp[W] = {};
      for (int j = nv; j < n; ++j) tmp[j - nv] = (row[j] - mean) * inv * gamma[j] + beta[j];
      const vf y = activate(load(tmp), activation);
      for (int j = nv; j < n; ++j) row[j] = y[j - nv];
    }
  }
}

void act(float* C, int ldc, int M, int n, int activation) {
  const int nv = n / W * W;
  for (int r = 0; r < M; ++r) {
    float* row = C + static_cast<size_t>(r) * ldc;
    for (int j = 0; j < nv; j += W) store(row + j, activate(load(row + j), activation));
    if (nv < n) {
      float tmp[W] = {};
      for (int j = nv; j < n; ++j) tmp[j - nv] = row[j];
      const vf y = activate(load(tmp), activation);
      for (int j = nv; j < n; ++j) row[j] = y[j - nv];
    }
  }
}

const Kernels kKernels = {AMI_ISA_NAME, MR, NR, &gemm_bias, &layer_norm_act, &act};

}  // namespace
}  // namespace ami::cpu::AMI_ISA_NS
