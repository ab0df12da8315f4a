// Device kernels of the CUDA planner. One plan = for each iteration:
//   sample_kernel          noise -> mean + std * eps -> projected sequences, and the step-0 MLP input
//   layer_kernel x H x L   one Linear layer of one rollout step for all samples (tensor-core or SIMT
//                          GEMM); LayerNorm + activation of the previous layer applied while loading
//                          its input, row statistics of this layer written beside its output; the
//                          last layer adds the residual, writes z_{t+1} and the per-tile latent cost
//   critic_kernel          with the critic cost term: C(z_t, g) per sample after each step's last layer
//                          that needs it (the goal's embedding by the same kernel once per plan)
//   select_refit_kernel    costs -> bitonic sort (cost, index) -> keep / best / weights -> update
//                          (CEM: refit to the elites; MPPI: weighted mean of all samples, scheduled std)
// then finalize_kernel (project the mean), the rollout of the mean and final_cost_kernel.
// Every reduction has a fixed order, so results do not depend on scheduling.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math_constants.h>
#include <mma.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda/philox_device.cuh"

namespace ami::cuda {

// GEMM tile: BM samples x BN output features, K consumed BK at a time, 4 warps.
constexpr int kBM = 32;
constexpr int kBN = 64;
constexpr int kBK = 64;
constexpr int kStages = 4;          // cp.async pipeline depth (K tiles in flight)
constexpr int kLayerThreads = 128;
constexpr int kLdsA = kBK + 4;      // float32 tile row strides (floats): 16-row steps stay 32-byte aligned
constexpr int kLdsB = kBK + 4;      //   for wmma, 16-byte chunks stay 16-byte aligned for cp.async
constexpr int kLdsBf = kBK + 8;     // bfloat16 tile row stride (elements)
constexpr int kLdc = kBN + 4;       // output tile row stride (floats)
constexpr int kSelectThreads = 512;

enum class Mode : int { FP32 = 0, TF32 = 1, BF16 = 2 };

// Dynamic shared memory (a macro so that csrc/cuda/emulation can run these kernels on the CPU).
#ifndef AMI_DYNAMIC_SHARED
#define AMI_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

struct LayerArgs {
  // this layer: y = x W^T + b, W (out_pad, in_pad) zero-padded
  const float* weight = nullptr;
  const __nv_bfloat16* weight_bf16 = nullptr;  // BF16 mode only
  const float* bias = nullptr;                 // (out_pad)
  int in = 0, in_pad = 0, out = 0;
  // input rows: the raw MLP input (layer 0) or the previous layer's pre-LayerNorm output
  const float* x = nullptr;
  int ldx = 0;
  const float* ln_gamma = nullptr;  // previous layer's LayerNorm, nullptr for layer 0
  const float* ln_beta = nullptr;
  const float2* in_stats = nullptr;  // previous layer's (mean, M2) per (column tile, row)
  int in_tiles = 0;
  int activation = 0;
  float ln_eps = 1e-5f;
  // hidden layer output
  float* y = nullptr;
  int ldy = 0;
  float2* out_stats = nullptr;  // (out_pad / BN, m_pad)
  // last layer: residual, latents and cost
  bool last = false;
  int t = 0, horizon = 0, latent_dim = 0, history = 0, action_dim = 0;
  const float* x_cur = nullptr;  // the step-t MLP input (ld ldx0), holds z_t at (history-1)*D
  float* x_next = nullptr;       // the step-(t+1) MLP input
  int ldx0 = 0;
  float* latents = nullptr;        // (m_pad, H, D)
  const float* actions = nullptr;  // (n, H, A)
  const float* goal = nullptr;     // (D)
  const float* latent_low = nullptr;   // (D) or nullptr
  const float* latent_high = nullptr;  // (D) or nullptr
  float2* cost_part = nullptr;     // (H, out_pad / BN, m_pad): (squared goal distance, bound violation)
  int n_rows = 0;
  int m_pad = 0;
};

struct CostArgs {
  const float2* cost_part = nullptr;
  int tiles = 0, m_pad = 0, horizon = 0, action_dim = 0;
  const float* prev_action = nullptr;
  const int* has_prev = nullptr;
  float goal_weight = 0, goal_running_weight = 0, action_weight = 0, smoothness_weight = 0, latent_bound_weight = 0;
  const float* critic_steps = nullptr;  // (H, m_pad): C(z_t, g) where computed, or nullptr without the critic
  float critic_weight = 0, critic_running_weight = 0;
};

// The cost's critic (ami::CriticModel) on the device, FP32 in every precision mode: weights
// transposed to (in, out) so that a block's threads read one input's weights together.
constexpr int kCriticThreads = 128;
constexpr int kMaxCriticLayers = 8;
struct CriticArgs {
  int layers = 0;
  int in[kMaxCriticLayers] = {};
  int out[kMaxCriticLayers] = {};
  const float* weight_t[kMaxCriticLayers] = {};  // (in, out)
  const float* bias[kMaxCriticLayers] = {};      // (out)
  const float* ln_gamma[kMaxCriticLayers] = {};  // (out), nullptr: no LayerNorm (always for the last layer)
  const float* ln_beta[kMaxCriticLayers] = {};
  int activation = 0;
  float ln_eps = 1e-5f;
  float symmetric_eps = 1e-6f;
  int asymmetric_dim = 0;
  int width = 0;  // the widest of latent_dim and every layer's out: dynamic shared memory is 2 * width floats
};

// Runtime inputs of one plan, written by one copy before the graph runs.
struct PlanScalars {
  unsigned long long plan_index;
  int has_prev;
  int injected_noise;
};

struct SamplerArgs {
  int samples = 0, horizon = 0, action_dim = 0, history = 0, latent_dim = 0, elites = 0, keep = 0;
  int method = 0;  // ami::Method: 0 CEM, 1 MPPI
  float momentum = 0, min_std = 0, temperature = 1, control_cost_weight = 0, std_decay = 1;
  unsigned long long seed = 0;
  const PlanScalars* scalars = nullptr;
  const float* z0 = nullptr;
  const float* prev_action = nullptr;
  const float* init_mean = nullptr;
  const float* init_std = nullptr;
  const float* noise = nullptr;  // injected noise buffer
  const float* low = nullptr;
  const float* high = nullptr;
  const float* max_rate = nullptr;  // nullptr = no rate limit
  float* mean = nullptr;            // state (H, A)
  float* std = nullptr;
  float* samples_buf = nullptr;  // (N, H, A)
  float* kept = nullptr;         // (keep, H, A)
  float* costs = nullptr;        // (N)
  float* x0 = nullptr;           // step-0 MLP input (m_pad, ldx0)
  int ldx0 = 0;
  float* out = nullptr;  // mean | std | best | cost | best_cost | std_history (iterations, H, A)
  int sort_size = 0;     // power of two >= N
};

// std::min / std::max semantics (they differ from fminf/fmaxf for NaN).
__device__ __forceinline__ float std_max(float a, float b) { return a < b ? b : a; }
__device__ __forceinline__ float std_min(float a, float b) { return b < a ? b : a; }

__device__ __forceinline__ float activate(float x, int act) {
  switch (act) {
    case 0: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case 1: return x / (1.0f + expf(-x));
    case 2: return x > 0.0f ? x : 0.0f;
    default: return tanhf(x);
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Projection of one action dimension j of one sequence, in place, as ami::project_sequence.
__device__ __forceinline__ float project_one(float x, int j, const SamplerArgs& s, bool have_prev, float prev) {
  float lo = s.low[j], hi = s.high[j];
  if (s.max_rate != nullptr && have_prev) {
    const float p = std_min(std_max(prev, lo), hi);
    lo = std_max(lo, p - s.max_rate[j]);
    hi = std_min(hi, p + s.max_rate[j]);
  }
  return std_min(std_max(x, lo), hi);
}

// Shared-memory plan of layer_kernel<M> (bytes from a 128-aligned base): kStages stages of
// [A tile (BM x BK float32, raw input) | B tile (BN x BK weights, float32 or bfloat16)], then for
// BF16 the converted A tile (BM x BK bfloat16), then row_mean[BM] and row_rstd[BM]. The output
// tile (BM x BN float32) reuses stage 0 after the main loop.
constexpr int kStageABytes = kBM * kLdsA * 4;
template <Mode M>
__host__ __device__ constexpr int stage_bytes() {
  return kStageABytes + (M == Mode::BF16 ? kBN * kLdsBf * 2 : kBN * kLdsB * 4);
}
template <Mode M>
__host__ __device__ constexpr int layer_smem_bytes() {
  return 128 + kStages * stage_bytes<M>() + (M == Mode::BF16 ? kBM * kLdsBf * 2 : 0) + 2 * kBM * 4;
}
static_assert(kBM * kLdc * 4 <= stage_bytes<Mode::BF16>(), "the output tile must fit in stage 0");
static_assert(kStageABytes % 128 == 0 && stage_bytes<Mode::BF16>() % 128 == 0 && stage_bytes<Mode::FP32>() % 128 == 0,
              "stages must keep 128-byte alignment");

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
#if defined(AMI_CUDA_EMULATION)
  std::memcpy(smem, gmem, 16);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem) : "memory");
#else
  __trap();  // the host refuses devices below compute capability 8.0
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

// ---------------------------------------------------------------------------------------------
// One Linear layer for rows [blockIdx.y * BM, +BM) and output features [blockIdx.x * BN, +BN).
// K is streamed through a kStages-deep cp.async pipeline; the previous layer's LayerNorm and
// activation are applied to each A tile in shared memory once it has landed.

template <Mode M>
__global__ void __launch_bounds__(kLayerThreads) layer_kernel(const LayerArgs a) {
  AMI_DYNAMIC_SHARED(unsigned char, layer_smem_raw);
  // Align the base to 128 bytes in the shared window (the launch adds 128 bytes of slack).
  const unsigned raw_addr = static_cast<unsigned>(__cvta_generic_to_shared(layer_smem_raw));
  unsigned char* smem = layer_smem_raw + ((128u - (raw_addr & 127u)) & 127u);
  constexpr int kStageBytes = stage_bytes<M>();
  __nv_bfloat16* a_conv = reinterpret_cast<__nv_bfloat16*>(smem + kStages * kStageBytes);  // BF16 only
  float* row_mean = reinterpret_cast<float*>(smem + kStages * kStageBytes + (M == Mode::BF16 ? kBM * kLdsBf * 2 : 0));
  float* row_rstd = row_mean + kBM;
  float* c_tile = reinterpret_cast<float*>(smem);
  auto stage_a = [&](int s) { return reinterpret_cast<float*>(smem + s * kStageBytes); };
  auto stage_b = [&](int s) { return smem + s * kStageBytes + kStageABytes; };

  const int tid = threadIdx.x;
  const int row0 = blockIdx.y * kBM;
  const int col0 = blockIdx.x * kBN;
  const bool normalize = a.ln_gamma != nullptr;
  const int k_tiles = a.in_pad / kBK;

  // Stage s <- K tile kt (A: BM x BK floats of the input rows; B: BN x BK weights). Always commits
  // a group (empty past the end) so that group i is K tile i.
  auto issue = [&](int kt) {
    if (kt < k_tiles) {
      const int s = kt % kStages, k0 = kt * kBK;
      float* sa = stage_a(s);
      constexpr int kChunksA = kBM * kBK / 4;
#pragma unroll
      for (int f = tid; f < kChunksA; f += kLayerThreads) {
        const int r = f / (kBK / 4), k = (f % (kBK / 4)) * 4;
        cp_async16(sa + r * kLdsA + k, a.x + static_cast<size_t>(row0 + r) * a.ldx + k0 + k);
      }
      if constexpr (M == Mode::BF16) {
        __nv_bfloat16* sb = reinterpret_cast<__nv_bfloat16*>(stage_b(s));
        constexpr int kChunksB = kBN * kBK / 8;
#pragma unroll
        for (int f = tid; f < kChunksB; f += kLayerThreads) {
          const int n = f / (kBK / 8), k = (f % (kBK / 8)) * 8;
          cp_async16(sb + n * kLdsBf + k, a.weight_bf16 + static_cast<size_t>(col0 + n) * a.in_pad + k0 + k);
        }
      } else {
        float* sb = reinterpret_cast<float*>(stage_b(s));
        constexpr int kChunksB = kBN * kBK / 4;
#pragma unroll
        for (int f = tid; f < kChunksB; f += kLayerThreads) {
          const int n = f / (kBK / 4), k = (f % (kBK / 4)) * 4;
          cp_async16(sb + n * kLdsB + k, a.weight + static_cast<size_t>(col0 + n) * a.in_pad + k0 + k);
        }
      }
    }
    cp_async_commit();
  };

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);

  if (normalize && tid < kBM) {  // merge the previous layer's per-tile (mean, M2) in tile order (Chan et al.)
    const int row = row0 + tid;
    float n = 0.0f, mean = 0.0f, m2 = 0.0f;
    for (int j = 0; j < a.in_tiles; ++j) {
      const float nj = static_cast<float>(min(kBN, a.in - j * kBN));
      const float2 p = a.in_stats[static_cast<size_t>(j) * a.m_pad + row];
      const float total = n + nj;
      const float delta = p.x - mean;
      mean += delta * (nj / total);
      m2 += p.y + delta * delta * (n * nj / total);
      n = total;
    }
    row_mean[tid] = mean;
    row_rstd[tid] = 1.0f / sqrtf(m2 / n + a.ln_eps);
  }
  // (row_mean / row_rstd are first read after the __syncthreads at the top of the main loop.)

  // FP32: thread (ty, tx) owns rows ty*4 + i and columns tx + 16 j.
  const int ty = tid / 16, tx = tid % 16;
  float acc[4][4];
  if constexpr (M == Mode::FP32) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = a.bias[col0 + tx + 16 * j];
  }
  // Tensor cores: warp (wm, wn) owns rows wm*16 .. +16 and columns wn*32 .. +32 (two 16x16 tiles).
  const int warp = tid / 32, wm = warp / 2, wn = warp % 2;
  using namespace nvcuda;
  constexpr int kFragK = M == Mode::BF16 ? 16 : 8;
  using InputType = typename std::conditional<M == Mode::BF16, __nv_bfloat16, wmma::precision::tf32>::type;
  wmma::fragment<wmma::accumulator, 16, 16, kFragK, float> c_frag[2];
  if constexpr (M != Mode::FP32) {
    wmma::fill_fragment(c_frag[0], 0.0f);
    wmma::fill_fragment(c_frag[1], 0.0f);
  }

  for (int kt = 0; kt < k_tiles; ++kt) {
    cp_async_wait<kStages - 2>();  // this thread's copies of K tile kt have landed ...
    __syncthreads();               // ... and everyone's; stage (kt - 1) % kStages is free again
    issue(kt + kStages - 1);
    const int s = kt % kStages;
    float* a_tile = stage_a(s);
    const int k0 = kt * kBK;
    if (normalize || M == Mode::BF16) {  // LayerNorm + activation (and / or the BF16 conversion) in place
      for (int q = tid; q < kBM * kBK; q += kLayerThreads) {
        const int r = q / kBK, k = q % kBK, col = k0 + k;
        float v = a_tile[r * kLdsA + k];
        if (normalize)
          v = col < a.in ? activate((v - row_mean[r]) * row_rstd[r] * a.ln_gamma[col] + a.ln_beta[col], a.activation)
                         : 0.0f;
        if constexpr (M == Mode::BF16) {
          a_conv[r * kLdsBf + k] = __float2bfloat16_rn(v);
        } else {
          a_tile[r * kLdsA + k] = v;
        }
      }
      __syncthreads();
    }

    if constexpr (M == Mode::FP32) {
      const float* b_tile = reinterpret_cast<const float*>(stage_b(s));
#pragma unroll 8
      for (int kk = 0; kk < kBK; ++kk) {
        float av[4], bv[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) av[i] = a_tile[(ty * 4 + i) * kLdsA + kk];
#pragma unroll
        for (int j = 0; j < 4; ++j) bv[j] = b_tile[(tx + 16 * j) * kLdsB + kk];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
    } else {
#if defined(AMI_CUDA_EMULATION) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800)
#pragma unroll
      for (int kk = 0; kk < kBK; kk += kFragK) {
        wmma::fragment<wmma::matrix_a, 16, 16, kFragK, InputType, wmma::row_major> a_frag;
        if constexpr (M == Mode::BF16) {
          wmma::load_matrix_sync(a_frag, a_conv + wm * 16 * kLdsBf + kk, kLdsBf);
        } else {
          wmma::load_matrix_sync(a_frag, a_tile + wm * 16 * kLdsA + kk, kLdsA);
#pragma unroll
          for (int e = 0; e < a_frag.num_elements; ++e) a_frag.x[e] = wmma::__float_to_tf32(a_frag.x[e]);
        }
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, kFragK, InputType, wmma::col_major> b_frag;
          if constexpr (M == Mode::BF16) {
            const __nv_bfloat16* b_tile = reinterpret_cast<const __nv_bfloat16*>(stage_b(s));
            wmma::load_matrix_sync(b_frag, b_tile + (wn * 32 + j * 16) * kLdsBf + kk, kLdsBf);
          } else {
            const float* b_tile = reinterpret_cast<const float*>(stage_b(s));
            wmma::load_matrix_sync(b_frag, b_tile + (wn * 32 + j * 16) * kLdsB + kk, kLdsB);
#pragma unroll
            for (int e = 0; e < b_frag.num_elements; ++e) b_frag.x[e] = wmma::__float_to_tf32(b_frag.x[e]);
          }
          wmma::mma_sync(c_frag[j], a_frag, b_frag, c_frag[j]);
        }
      }
#else
      __trap();  // tensor-core modes need sm_80+; the host refuses older devices
#endif
    }
  }
  cp_async_wait<0>();  // (only empty groups can be pending here)
  __syncthreads();     // every warp is done with the stages: stage 0 becomes the output tile

  // Output tile to shared memory, bias included.
  if constexpr (M == Mode::FP32) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) c_tile[(ty * 4 + i) * kLdc + tx + 16 * j] = acc[i][j];
  } else {
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(c_tile + wm * 16 * kLdc + wn * 32 + j * 16, c_frag[j], kLdc, wmma::mem_row_major);
  }
  __syncthreads();

  // Epilogue: warp w handles rows w*8 .. w*8+7, lane handles columns lane and lane + 32.
  const int lane = tid % 32;
  const int valid = min(kBN, a.out - col0);
  for (int rr = 0; rr < kBM / 4; ++rr) {
    const int r = warp * (kBM / 4) + rr;
    const int row = row0 + r;
    float y[2];
    bool ok[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c = lane + 32 * h;
      ok[h] = c < valid;
      y[h] = c_tile[r * kLdc + c];
      if constexpr (M != Mode::FP32) y[h] += a.bias[col0 + c];
    }
    if (!a.last) {
      const float mean = warp_sum((ok[0] ? y[0] : 0.0f) + (ok[1] ? y[1] : 0.0f)) / static_cast<float>(valid);
      const float d0 = ok[0] ? y[0] - mean : 0.0f, d1 = ok[1] ? y[1] - mean : 0.0f;
      const float m2 = warp_sum(d0 * d0 + d1 * d1);
      if (lane == 0) a.out_stats[static_cast<size_t>(blockIdx.x) * a.m_pad + row] = make_float2(mean, m2);
#pragma unroll
      for (int h = 0; h < 2; ++h)
        if (ok[h]) a.y[static_cast<size_t>(row) * a.ldy + col0 + lane + 32 * h] = y[h];
    } else {
      const bool live = row < a.n_rows;
      const int D = a.latent_dim;
      float dist = 0.0f, bound = 0.0f;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int col = col0 + lane + 32 * h;
        if (ok[h] && live) {
          const size_t slot = static_cast<size_t>(row) * a.ldx0 + static_cast<size_t>(a.history - 1) * D + col;
          const float z = a.x_cur[slot] + y[h];
          a.latents[(static_cast<size_t>(row) * a.horizon + a.t) * D + col] = z;
          if (a.t + 1 < a.horizon) a.x_next[slot] = z;
          const float g = z - a.goal[col];
          dist += g * g;
          if (a.latent_high != nullptr && z > a.latent_high[col]) {
            const float over = z - a.latent_high[col];
            bound += over * over;
          }
          if (a.latent_low != nullptr && z < a.latent_low[col]) {
            const float under = a.latent_low[col] - z;
            bound += under * under;
          }
        }
      }
      dist = warp_sum(dist);
      bound = warp_sum(bound);
      if (lane == 0 && live)
        a.cost_part[(static_cast<size_t>(a.t) * gridDim.x + blockIdx.x) * a.m_pad + row] = make_float2(dist, bound);
    }
  }

  // Last layer, first column tile: the rest of the step-(t+1) input (older latents, next action).
  if (a.last && blockIdx.x == 0 && a.t + 1 < a.horizon) {
    const int D = a.latent_dim, A = a.action_dim, shift = (a.history - 1) * D;
    const int width = shift + A;
    for (int q = tid; q < kBM * width; q += kLayerThreads) {
      const int r = q / width, c = q % width, row = row0 + r;
      if (row >= a.n_rows) continue;
      float* dst = a.x_next + static_cast<size_t>(row) * a.ldx0;
      if (c < shift) {
        dst[c] = a.x_cur[static_cast<size_t>(row) * a.ldx0 + D + c];
      } else {
        const int j = c - shift;
        dst[a.history * D + j] = a.actions[(static_cast<size_t>(row) * a.horizon + a.t + 1) * A + j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The critic on row blockIdx.x of z (row stride ldz): its embedding e (E) through the layers in
// shared memory, then steps[row] = C(z, g) given the goal's embedding (E), or, with
// goal_embedding == nullptr, e itself into embedding[row * E ..]. Fixed-order sums throughout.

__global__ void __launch_bounds__(kCriticThreads)
    critic_kernel(const CriticArgs c, const float* z, size_t ldz, const float* goal_embedding, float* steps,
                  float* embedding) {
  AMI_DYNAMIC_SHARED(float, critic_smem);
  __shared__ float row_stats[2];  // LayerNorm mean and 1 / std
  float* buffers[2] = {critic_smem, critic_smem + c.width};
  const int tid = threadIdx.x, row = blockIdx.x;
  for (int i = tid; i < c.in[0]; i += kCriticThreads) buffers[0][i] = z[row * ldz + i];
  __syncthreads();
  for (int l = 0; l < c.layers; ++l) {
    const float* x = buffers[l % 2];
    float* y = buffers[(l + 1) % 2];
    const int in = c.in[l], out = c.out[l];
    for (int o = tid; o < out; o += kCriticThreads) {
      float acc = c.bias[l][o];
      for (int i = 0; i < in; ++i) acc += c.weight_t[l][static_cast<size_t>(i) * out + o] * x[i];
      y[o] = acc;
    }
    __syncthreads();
    if (l + 1 == c.layers) break;
    const float* gamma = c.ln_gamma[l];
    if (gamma != nullptr) {
      if (tid < 32) {
        float sum = 0.0f;
        for (int o = tid; o < out; o += 32) sum += y[o];
        const float mean = warp_sum(sum) / static_cast<float>(out);
        float squares = 0.0f;
        for (int o = tid; o < out; o += 32) squares += (y[o] - mean) * (y[o] - mean);
        const float var = warp_sum(squares) / static_cast<float>(out);
        if (tid == 0) {
          row_stats[0] = mean;
          row_stats[1] = 1.0f / sqrtf(var + c.ln_eps);
        }
      }
      __syncthreads();
    }
    for (int o = tid; o < out; o += kCriticThreads) {
      float v = y[o];
      if (gamma != nullptr) v = (v - row_stats[0]) * row_stats[1] * gamma[o] + c.ln_beta[l][o];
      y[o] = activate(v, c.activation);
    }
    __syncthreads();
  }
  const float* e = buffers[c.layers % 2];
  const int E = c.out[c.layers - 1];
  if (goal_embedding == nullptr) {
    for (int k = tid; k < E; k += kCriticThreads) embedding[static_cast<size_t>(row) * E + k] = e[k];
    return;
  }
  if (tid == 0) {
    float asymmetric = 0.0f, squared = 0.0f;
    for (int k = 0; k < E; ++k) {
      const float d = e[k] - goal_embedding[k];
      if (k < c.asymmetric_dim) {
        asymmetric = std_max(asymmetric, d);
      } else {
        squared += d * d;
      }
    }
    steps[row] = asymmetric + (sqrtf(squared + c.symmetric_eps) - sqrtf(c.symmetric_eps));
  }
}

// ---------------------------------------------------------------------------------------------
// Cost of sequence i from the per-tile latent terms and its actions (as the reference's sums).

__device__ __forceinline__ float sequence_cost(int i, const float* actions, const CostArgs& c) {
  float terminal = 0.0f, running = 0.0f, bound = 0.0f;
  for (int t = 0; t < c.horizon; ++t) {
    float dist = 0.0f;
    for (int j = 0; j < c.tiles; ++j) {
      const float2 p = c.cost_part[(static_cast<size_t>(t) * c.tiles + j) * c.m_pad + i];
      dist += p.x;
      bound += p.y;
    }
    running += dist;
    if (t == c.horizon - 1) terminal = dist;
  }
  const int A = c.action_dim;
  const float* a = actions + static_cast<size_t>(i) * c.horizon * A;
  const bool has_prev = *c.has_prev != 0;
  float magnitude = 0.0f, smooth = 0.0f;
  for (int t = 0; t < c.horizon; ++t) {
    for (int j = 0; j < A; ++j) {
      const float v = a[t * A + j];
      magnitude += v * v;
      if (t > 0 || has_prev) {
        const float d = v - (t > 0 ? a[(t - 1) * A + j] : c.prev_action[j]);
        smooth += d * d;
      }
    }
  }
  float critic_terminal = 0.0f, critic_running = 0.0f;
  if (c.critic_steps != nullptr) {
    for (int t = 0; t < c.horizon; ++t) {
      if (c.critic_running_weight > 0.0f || (c.critic_weight > 0.0f && t == c.horizon - 1)) {
        const float steps = c.critic_steps[static_cast<size_t>(t) * c.m_pad + i];
        critic_running += steps;
        if (t == c.horizon - 1) critic_terminal = steps;
      }
    }
  }
  const float latent = c.goal_weight * terminal + c.goal_running_weight * running + c.latent_bound_weight * bound +
                       c.critic_weight * critic_terminal + c.critic_running_weight * critic_running;
  return latent + (c.action_weight * magnitude + c.smoothness_weight * smooth);
}

// ---------------------------------------------------------------------------------------------
// Iteration `it`: samples = project(mean + std * eps) (kept elites in the last rows from it 1 on),
// and the step-0 MLP input [z0, a_0]. One thread per (sample, action dimension).

__global__ void sample_kernel(const SamplerArgs s, int it) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  const int N = s.samples, H = s.horizon, A = s.action_dim;
  if (idx >= N * A) return;
  const int i = idx / A, j = idx % A;
  const size_t HA = static_cast<size_t>(H) * A;
  const bool has_prev = s.scalars->has_prev != 0;
  const bool injected = s.scalars->injected_noise != 0;
  const unsigned long long plan_index = s.scalars->plan_index;
  const float* mean = it == 0 ? s.init_mean : s.mean;
  const float* std = it == 0 ? s.init_std : s.std;
  float* x = s.samples_buf + i * HA;
  const int first_kept = N - s.keep;
  if (it > 0 && s.keep > 0 && i >= first_kept) {
    for (int t = 0; t < H; ++t) x[t * A + j] = s.kept[(i - first_kept) * HA + t * A + j];
  } else {
    bool have_prev = has_prev;
    float prev = has_prev ? s.prev_action[j] : 0.0f;
    for (int t = 0; t < H; ++t) {
      const unsigned long long e = (static_cast<unsigned long long>(it) * N + i) * HA + t * A + j;
      const float eps = injected ? s.noise[e] : philox_normal_at(s.seed, plan_index, e);
      // __fmul_rn / __fadd_rn: no FMA contraction, the host's rounding exactly.
      const float v = project_one(__fadd_rn(mean[t * A + j], __fmul_rn(std[t * A + j], eps)), j, s, have_prev, prev);
      x[t * A + j] = v;
      prev = v;
      have_prev = true;
    }
  }
  const int kD = s.history * s.latent_dim;
  float* x0 = s.x0 + static_cast<size_t>(i) * s.ldx0;
  x0[kD + j] = x[j];
  for (int c = j; c < kD; c += A) x0[c] = s.z0[c];
}

// ---------------------------------------------------------------------------------------------
// Iteration `it`: costs, elite order, kept elites, best sample, weights and the update of mean/std.
// One block of kSelectThreads threads; dynamic shared memory: double[threads] | float[P] | int[P] |
// float[weights] (K elites, or N samples for MPPI).

__device__ __forceinline__ bool sorts_after(float ka, int ia, float kb, int ib) {
  return ka > kb || (ka == kb && ia > ib);
}

// Sum of every thread's v over the block (fixed tree order); red holds one double per thread.
__device__ double block_sum(double v, double* red) {
  const int tid = threadIdx.x;
  red[tid] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half >>= 1) {
    if (tid < half) red[tid] += red[tid + half];
    __syncthreads();
  }
  const double total = red[0];
  __syncthreads();  // red is reused by the next reduction
  return total;
}

// Minimum of every thread's v over the block.
__device__ float block_min(float v, double* red) {
  const int tid = threadIdx.x;
  red[tid] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half >>= 1) {
    if (tid < half && red[tid + half] < red[tid]) red[tid] = red[tid + half];
    __syncthreads();
  }
  const float lowest = static_cast<float>(red[0]);
  __syncthreads();
  return lowest;
}

// ami::inverse_cost_scale over costs[0..N): 1 / (temperature * std of the finite costs), or 0 (block-wide).
__device__ float block_inverse_cost_scale(const SamplerArgs& s, double* red) {
  double sum = 0.0, count = 0.0;
  for (int i = threadIdx.x; i < s.samples; i += blockDim.x) {
    const float c = s.costs[i];
    if (isfinite(c)) {
      sum += c;
      count += 1.0;
    }
  }
  sum = block_sum(sum, red);
  count = block_sum(count, red);
  if (count == 0.0) return 0.0f;
  const double mean = sum / count;
  double squares = 0.0;
  for (int i = threadIdx.x; i < s.samples; i += blockDim.x) {
    const float c = s.costs[i];
    if (isfinite(c)) {
      const double d = c - mean;
      squares += d * d;
    }
  }
  const double spread = sqrt(block_sum(squares, red) / count);
  if (!(spread > 0.0)) return 0.0f;
  const double scale = 1.0 / (static_cast<double>(s.temperature) * spread);
  return static_cast<float>(scale < 3.4028234663852886e38 ? scale : 3.4028234663852886e38);
}

__global__ void __launch_bounds__(kSelectThreads) select_refit_kernel(const SamplerArgs s, const CostArgs c, int it) {
  AMI_DYNAMIC_SHARED(double, select_smem);
  const int tid = threadIdx.x, nthreads = blockDim.x;
  const int N = s.samples, K = s.elites, P = s.sort_size;
  const int HA = s.horizon * s.action_dim;
  double* red = select_smem;
  float* keys = reinterpret_cast<float*>(red + nthreads);
  int* order = reinterpret_cast<int*>(keys + P);
  float* weights = reinterpret_cast<float*>(order + P);
  __shared__ int update_best;

  for (int i = tid; i < P; i += nthreads) {
    float key = CUDART_INF_F;
    if (i < N) {
      const float cost = sequence_cost(i, s.samples_buf, c);
      s.costs[i] = cost;
      key = isnan(cost) ? CUDART_INF_F : cost;  // NaN sorts last, ties by index: the host's order
    }
    keys[i] = key;
    order[i] = i;
  }
  __syncthreads();
  for (int size = 2; size <= P; size <<= 1) {  // bitonic sort of (key, index), ascending
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = tid; i < P; i += nthreads) {
        const int partner = i ^ stride;
        if (partner > i) {
          const bool ascending = (i & size) == 0;
          const bool swap = ascending ? sorts_after(keys[i], order[i], keys[partner], order[partner])
                                      : sorts_after(keys[partner], order[partner], keys[i], order[i]);
          if (swap) {
            const float tk = keys[i];
            keys[i] = keys[partner];
            keys[partner] = tk;
            const int ti = order[i];
            order[i] = order[partner];
            order[partner] = ti;
          }
        }
      }
      __syncthreads();
    }
  }

  float* out_best = s.out + 2 * HA;
  float* out_best_cost = s.out + 3 * HA + 1;
  const float* cur_mean = it == 0 ? s.init_mean : s.mean;
  const float* cur_std = it == 0 ? s.init_std : s.std;
  float* history = s.out + 3 * HA + 2 + static_cast<size_t>(it) * HA;
  for (int q = tid; q < HA; q += nthreads) history[q] = cur_std[q];
  for (int q = tid; q < s.keep * HA; q += nthreads) s.kept[q] = s.samples_buf[order[q / HA] * HA + q % HA];
  if (tid == 0) {
    const float best = s.costs[order[0]];
    const float previous = it == 0 ? CUDART_INF_F : *out_best_cost;
    update_best = best < previous;
    *out_best_cost = best < previous ? best : previous;
  }
  __syncthreads();
  if (update_best)
    for (int q = tid; q < HA; q += nthreads) out_best[q] = s.samples_buf[order[0] * HA + q];

  const float c_min = keys[0];
  if (!isfinite(c_min)) {  // every sample diverged: keep the distribution
    for (int q = tid; q < HA; q += nthreads) {
      const float m = cur_mean[q], d = cur_std[q];
      s.mean[q] = m;
      s.std[q] = d;
    }
    return;
  }
  const float keep_old = s.momentum, take_new = 1.0f - s.momentum;
  const int warp = tid / 32, lane = tid % 32, warps = nthreads / 32;

  if (s.method == 1) {
    // MPPI, as SamplingPlanner::mppi_update: weights[n] of sample n (index order) over all samples.
    const float inv_scale = block_inverse_cost_scale(s, red);
    float lowest = CUDART_INF_F;
    for (int n = tid; n < N; n += nthreads) {
      const float cn = s.costs[n];
      float score = CUDART_INF_F;
      if (isfinite(cn)) {
        const float* x = s.samples_buf + static_cast<size_t>(n) * HA;
        float control = 0.0f;
        for (int q = 0; q < HA; ++q) {
          const float sd = cur_std[q];
          const float inv_var = sd > 0.0f ? __fdiv_rn(1.0f, __fmul_rn(sd, sd)) : 0.0f;
          control = __fadd_rn(control, __fmul_rn(__fmul_rn(cur_mean[q], __fsub_rn(x[q], cur_mean[q])), inv_var));
        }
        score = __fadd_rn(__fmul_rn(__fsub_rn(cn, c_min), inv_scale), __fmul_rn(s.control_cost_weight, control));
        lowest = lowest < score ? lowest : score;
      }
      weights[n] = score;
    }
    const float score_min = block_min(lowest, red);
    double partial = 0.0;
    for (int n = tid; n < N; n += nthreads) {
      const float w = isfinite(weights[n]) ? expf(-(weights[n] - score_min)) : 0.0f;
      weights[n] = w;
      partial += static_cast<double>(w);
    }
    const double total = block_sum(partial, red);
    for (int n = tid; n < N; n += nthreads) weights[n] = static_cast<float>(weights[n] / total);
    __syncthreads();
    for (int q = warp; q < HA; q += warps) {  // one warp per (t, a) entry, samples strided over lanes
      float m = 0.0f;
      for (int n = lane; n < N; n += 32) m += weights[n] * s.samples_buf[static_cast<size_t>(n) * HA + q];
      m = warp_sum(m);
      if (lane == 0) {
        s.mean[q] = __fadd_rn(__fmul_rn(keep_old, cur_mean[q]), __fmul_rn(take_new, m));
        const float decayed = __fmul_rn(cur_std[q], s.std_decay);
        s.std[q] = decayed < s.min_std ? s.min_std : decayed;
      }
    }
    return;
  }

  // CEM: equal elite weights, float(1 / K) as on the host.
  const float equal = static_cast<float>(1.0 / K);
  for (int e = tid; e < K; e += nthreads) weights[e] = equal;
  __syncthreads();

  // Refit: one warp per (t, a) entry, elites strided over lanes, fixed shuffle tree.
  for (int q = warp; q < HA; q += warps) {
    const float old_mean = cur_mean[q], old_std = cur_std[q];
    float m = 0.0f;
    for (int e = lane; e < K; e += 32) m += weights[e] * s.samples_buf[order[e] * HA + q];
    m = warp_sum(m);
    float v = 0.0f;
    for (int e = lane; e < K; e += 32) {
      const float d = s.samples_buf[order[e] * HA + q] - m;
      v += weights[e] * d * d;
    }
    v = warp_sum(v);
    const float new_mean = __fadd_rn(__fmul_rn(keep_old, old_mean), __fmul_rn(take_new, m));
    const float new_std = __fadd_rn(__fmul_rn(keep_old, old_std), __fmul_rn(take_new, sqrtf(v)));
    if (lane == 0) {
      s.mean[q] = new_mean;
      s.std[q] = new_std < s.min_std ? s.min_std : new_std;
    }
  }
}

// After the last iteration: out.mean = project(mean), out.std = std, and the MLP input of the
// final rollout (row 0 = the projected mean). One block.
__global__ void finalize_kernel(const SamplerArgs s) {
  const int H = s.horizon, A = s.action_dim, HA = H * A;
  const bool has_prev = s.scalars->has_prev != 0;
  for (int j = threadIdx.x; j < A; j += blockDim.x) {
    bool have_prev = has_prev;
    float prev = has_prev ? s.prev_action[j] : 0.0f;
    for (int t = 0; t < H; ++t) {
      const float v = project_one(s.mean[t * A + j], j, s, have_prev, prev);
      s.out[t * A + j] = v;
      prev = v;
      have_prev = true;
    }
  }
  for (int q = threadIdx.x; q < HA; q += blockDim.x) s.out[HA + q] = s.std[q];
  __syncthreads();
  const int kD = s.history * s.latent_dim;
  for (int c = threadIdx.x; c < kD + A; c += blockDim.x) s.x0[c] = c < kD ? s.z0[c] : s.out[c - kD];
}

__global__ void final_cost_kernel(const SamplerArgs s, const CostArgs c) {
  if (threadIdx.x == 0 && blockIdx.x == 0) s.out[3 * s.horizon * s.action_dim] = sequence_cost(0, s.out, c);
}

// Rollout of given sequences (RolloutCost::evaluate / predict): the step-0 input of rows < n.
__global__ void begin_rollout_kernel(const float* actions, const float* z0, float* x0, int ldx0, int n, int kD,
                                     int A, int H) {
  const int width = kD + A;
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= n * width) return;
  const int i = idx / width, c = idx % width;
  x0[static_cast<size_t>(i) * ldx0 + c] = c < kD ? z0[c] : actions[static_cast<size_t>(i) * H * A + (c - kD)];
}

__global__ void rollout_cost_kernel(const float* actions, const CostArgs c, float* costs, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) costs[i] = sequence_cost(i, actions, c);
}

__global__ void philox_fill_kernel(unsigned long long seed, unsigned long long plan_index, unsigned long long start,
                                   unsigned long long count, float* out) {
  const unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) out[i] = philox_normal_at(seed, plan_index, start + i);
}

}  // namespace ami::cuda
