// The CUDA backend of the sampling planner: the whole plan (sampling, projection, MLP rollout,
// cost, elite selection, refit; every iteration) runs on the device as one CUDA graph, with
// weights uploaded once and every buffer allocated at construction. Host-only header: it can be
// included by code compiled without nvcc (the bindings).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ami_robot/planner.h"

namespace ami::cuda {

// Arithmetic of the predictor's matrix products. Everything else (LayerNorm, activations, cost,
// sampling, selection, refit) is float32 in every mode.
//   FP32: SIMT float32 FMAs, the path compared with the reference at 1e-4.
//   TF32: tensor cores (wmma m16n16k8), operands rounded to TF32 (10-bit mantissa), float32 accumulation.
//   BF16: tensor cores (wmma m16n16k16), operands rounded to bfloat16 (7-bit mantissa), float32 accumulation.
enum class Precision : int { FP32 = 0, TF32 = 1, BF16 = 2 };

Precision precision_from_name(const std::string& name);  // "fp32" | "tf32" | "bf16"
const char* precision_name(Precision precision);

// CUDA devices visible to this process; 0 (never an error) without a driver or a GPU.
int device_count();

// One plan on device memory (e.g. torch CUDA tensors); every pointer is a device pointer on the
// planner's device, row-major float32, shapes as in PlanRequest.
struct DevicePlanRequest {
  const float* z0 = nullptr;           // (history, D)
  const float* goal = nullptr;         // (D)
  const float* prev_action = nullptr;  // (A) or nullptr
  const float* init_mean = nullptr;    // (H, A)
  const float* init_std = nullptr;     // (H, A)
  const float* noise = nullptr;        // (iterations, N, H, A) or nullptr = Philox
  uint64_t plan_index = 0;
  // (3 * H * A + 2 + iterations * H * A): mean (H, A), std (H, A), best_actions (H, A), cost, best_cost,
  // std_history (iterations, H, A)
  float* out = nullptr;
  uintptr_t stream = 0;  // cudaStream_t the inputs were produced on (0: the legacy default stream)
};

class DevicePlanner : public PlannerBackend {
 public:
  // Plans from device memory; returns when `out` holds the result (one synchronisation).
  virtual void plan_device(const DevicePlanRequest& request) = 0;
  virtual Precision precision() const = 0;
  virtual int device() const = 0;
};

// Uploads the weights to `device` and allocates every buffer. Throws std::invalid_argument for a
// problem the device cannot run, std::runtime_error (naming the CUDA call) for CUDA errors,
// including "no CUDA GPU" when none is visible.
std::unique_ptr<DevicePlanner> make_device_planner(Problem problem, int device, Precision precision);
std::unique_ptr<PlannerBackend> make_planner(Problem problem, int device);  // FP32

// Elements [start, start + count) of the Philox normal stream (seed, plan_index) computed on the
// device by the sampler's own code (tests compare it with ami::philox_normal_fill).
std::vector<float> philox_normal_device(uint64_t seed, uint64_t plan_index, uint64_t start, uint64_t count,
                                        int device);

}  // namespace ami::cuda
