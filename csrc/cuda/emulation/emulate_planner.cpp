// Runs the CUDA planner (FP32 path, the real kernels and host code) on the CPU through
// include/cuda_runtime.h's emulation, and compares it with the reference planner on the same
// problems (some with the critic cost term): rollout costs and latents, then whole plans on
// injected and on Philox noise.
// Build and run (tests/test_cuda_emulation.py does this):
//   g++ -std=c++20 -O1 -pthread -DAMI_CUDA_EMULATION -Icsrc/cuda/emulation/include -Icsrc -Icsrc/include
//       -x c++ csrc/cuda/cuda_planner.cu -x none csrc/cuda/emulation/emulate_planner.cpp csrc/planner.cpp
//       csrc/reference/reference.cpp -o emulate_planner && ./emulate_planner
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "ami_robot/philox.h"
#include "ami_robot/planner.h"
#include "cuda/cuda_planner.h"
#include "reference/reference.h"

namespace {

int failures = 0;

void check(const std::string& what, const float* actual, const float* expected, size_t n, double rtol = 1e-4) {
  double scale = 1e-6, err = 0.0;
  for (size_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(static_cast<double>(expected[i])));
  for (size_t i = 0; i < n; ++i) err = std::max(err, std::abs(static_cast<double>(actual[i]) - expected[i]));
  const bool ok = err <= rtol * scale && std::all_of(actual, actual + n, [](float v) { return std::isfinite(v); });
  std::printf("%-58s max|err| %.3g (scale %.3g) %s\n", what.c_str(), err, scale, ok ? "ok" : "FAIL");
  if (!ok) ++failures;
}

ami::Problem make_problem(int D, int A, int width, int depth, int history, ami::Activation act, ami::Method method,
                          int N, int H, int iterations, int elites, int keep, float momentum, bool rate,
                          uint64_t seed, float temperature = 0.5f, float control_cost_weight = 0.0f,
                          float std_decay = 1.0f) {
  std::mt19937 gen(static_cast<unsigned>(seed + 17));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.5f, 1.5f);
  ami::Problem p;
  p.model.latent_dim = D;
  p.model.action_dim = A;
  p.model.history = history;
  p.model.activation = act;
  int in = history * D + A;
  for (int l = 0; l <= depth; ++l) {
    ami::LinearLayer layer;
    layer.in = in;
    layer.out = l == depth ? D : width;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in));
    layer.weight.resize(static_cast<size_t>(layer.out) * in);
    for (float& w : layer.weight) w = scale * normal(gen);
    layer.bias.resize(layer.out);
    for (float& b : layer.bias) b = 0.1f * normal(gen);
    if (l < depth) {
      layer.ln_gamma.resize(layer.out);
      layer.ln_beta.resize(layer.out);
      for (float& g : layer.ln_gamma) g = uniform(gen);
      for (float& b : layer.ln_beta) b = 0.2f * normal(gen);
    }
    p.model.layers.push_back(layer);
    in = layer.out;
  }
  p.cost.goal_weight = 1.0f;
  p.cost.goal_running_weight = 0.1f;
  p.cost.action_weight = 0.05f;
  p.cost.smoothness_weight = 0.2f;
  p.cost.latent_bound_weight = 0.5f;
  p.cost.latent_low.assign(D, -0.8f);
  p.cost.latent_high.assign(D, 0.8f);
  p.bounds.low.assign(A, -1.0f);
  p.bounds.high.assign(A, 1.0f);
  p.bounds.low[0] = -0.5f;
  p.bounds.high[A - 1] = 0.8f;
  if (rate) p.bounds.max_rate.assign(A, 0.4f);
  p.sampler.method = method;
  p.sampler.horizon = H;
  p.sampler.samples = N;
  p.sampler.iterations = iterations;
  p.sampler.elites = elites;
  p.sampler.keep_elites = keep;
  p.sampler.momentum = momentum;
  p.sampler.min_std = 0.05f;
  p.sampler.temperature = temperature;
  p.sampler.control_cost_weight = control_cost_weight;
  p.sampler.std_decay = std_decay;
  p.sampler.seed = seed;
  p.validate();
  return p;
}

// p with a random critic (hidden width x 2, embedding 10 = 4 asymmetric + 6 symmetric) weighted in its
// cost in place of the goal distance, so that the critic dominates the comparison.
ami::Problem with_critic(ami::Problem p, int width, bool layer_norm, float critic_weight, float critic_running_weight,
                         uint64_t seed) {
  std::mt19937 gen(static_cast<unsigned>(seed + 31));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.5f, 1.5f);
  ami::CriticModel& c = p.cost.critic;
  c.latent_dim = p.model.latent_dim;
  c.asymmetric_dim = 4;
  c.activation = p.model.activation;
  int in = c.latent_dim;
  for (int l = 0; l < 3; ++l) {
    ami::LinearLayer layer;
    layer.in = in;
    layer.out = l == 2 ? 10 : width;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in));
    layer.weight.resize(static_cast<size_t>(layer.out) * in);
    for (float& w : layer.weight) w = scale * normal(gen);
    layer.bias.resize(layer.out);
    for (float& b : layer.bias) b = 0.1f * normal(gen);
    if (l < 2 && layer_norm) {
      layer.ln_gamma.resize(layer.out);
      layer.ln_beta.resize(layer.out);
      for (float& g : layer.ln_gamma) g = uniform(gen);
      for (float& b : layer.ln_beta) b = 0.2f * normal(gen);
    }
    c.layers.push_back(layer);
    in = layer.out;
  }
  p.cost.goal_weight = 0.0f;
  p.cost.goal_running_weight = 0.0f;
  p.cost.critic_weight = critic_weight;
  p.cost.critic_running_weight = critic_running_weight;
  p.validate();
  return p;
}

void compare(const std::string& name, const ami::Problem& p,
             ami::cuda::Precision precision = ami::cuda::Precision::FP32) {
  const double tol = precision == ami::cuda::Precision::FP32 ? 1e-4
                     : precision == ami::cuda::Precision::TF32 ? 5e-3 : 2e-2;  // as tests/test_cuda_planner.py
  const int D = p.model.latent_dim, A = p.model.action_dim, k = p.model.history, H = p.sampler.horizon;
  const int N = p.sampler.samples, HA = H * A;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> z0(static_cast<size_t>(k) * D), goal(D), prev(A), actions(static_cast<size_t>(N) * HA);
  for (float& v : z0) v = normal(gen);
  for (float& v : goal) v = normal(gen);
  for (float& v : prev) v = uniform(gen);
  for (float& v : actions) v = uniform(gen);

  ami::SamplingPlanner reference(p, ami::make_reference_rollout(p));
  auto cuda = ami::cuda::make_device_planner(p, 0, precision);

  // rollout + cost of given sequences, with and without a previous action, all rows and a few
  for (const float* pa : {static_cast<const float*>(prev.data()), static_cast<const float*>(nullptr)}) {
    for (int n : {N, std::min(N, 5)}) {
      std::vector<float> expected(n), actual(n);
      reference.rollout().set_start(z0.data(), goal.data(), pa);
      reference.rollout().evaluate(actions.data(), n, expected.data());
      cuda->rollout().set_start(z0.data(), goal.data(), pa);
      cuda->rollout().evaluate(actions.data(), n, actual.data());
      check(name + (pa ? " rollout_cost prev n=" : " rollout_cost n=") + std::to_string(n), actual.data(),
            expected.data(), n, tol);
    }
  }
  std::vector<float> z_ref(static_cast<size_t>(N) * H * D), z_cuda(z_ref.size());
  reference.rollout().predict(actions.data(), N, z_ref.data());
  cuda->rollout().predict(actions.data(), N, z_cuda.data());
  check(name + " predict", z_cuda.data(), z_ref.data(), z_ref.size(), tol);
  if (precision != ami::cuda::Precision::FP32) return;  // plans: elite choices may differ at this precision

  // whole plans: injected noise (with / without prev, warm start chain) and the internal Philox stream
  std::vector<float> mean(HA, 0.0f), stdv(HA, 0.7f), noise(static_cast<size_t>(p.sampler.iterations) * N * HA);
  for (float& v : noise) v = normal(gen);
  for (int call = 0; call < 3; ++call) {
    ami::PlanRequest req;
    req.z0 = z0.data();
    req.goal = goal.data();
    req.prev_action = call == 1 ? nullptr : prev.data();
    req.init_mean = mean.data();
    req.init_std = stdv.data();
    req.noise = call == 2 ? nullptr : noise.data();
    req.plan_index = static_cast<uint64_t>(call);
    ami::PlanOutput expected, actual;
    reference.plan(req, expected);
    cuda->plan(req, actual);
    const std::string tag = name + " plan " + std::to_string(call) + (call == 2 ? " (philox)" : " (noise)");
    check(tag + " mean", actual.mean.data(), expected.mean.data(), HA);
    check(tag + " std", actual.std.data(), expected.std.data(), HA);
    check(tag + " std_history", actual.std_history.data(), expected.std_history.data(), expected.std_history.size());
    check(tag + " best", actual.best_actions.data(), expected.best_actions.data(), HA);
    check(tag + " cost", &actual.cost, &expected.cost, 1);
    check(tag + " best_cost", &actual.best_cost, &expected.best_cost, 1);
    for (int t = 0; t + 1 < H; ++t)  // warm start as the Python API does
      std::copy_n(expected.mean.begin() + (t + 1) * A, A, mean.begin() + t * A);
  }

  // plan_device on (emulated) device memory equals plan on host memory
  {
    float *d_in = nullptr, *d_out = nullptr;
    const size_t in_floats = z0.size() + goal.size() + A + 2 * HA;
    cudaMalloc(&d_in, in_floats * sizeof(float));
    cudaMalloc(&d_out, ((3 + p.sampler.iterations) * HA + 2) * sizeof(float));
    float* dz0 = d_in;
    float* dgoal = dz0 + z0.size();
    float* dprev = dgoal + D;
    float* dmean = dprev + A;
    float* dstd = dmean + HA;
    std::copy(z0.begin(), z0.end(), dz0);
    std::copy(goal.begin(), goal.end(), dgoal);
    std::copy(prev.begin(), prev.end(), dprev);
    std::copy(mean.begin(), mean.end(), dmean);
    std::copy(stdv.begin(), stdv.end(), dstd);
    ami::cuda::DevicePlanRequest dreq;
    dreq.z0 = dz0;
    dreq.goal = dgoal;
    dreq.prev_action = dprev;
    dreq.init_mean = dmean;
    dreq.init_std = dstd;
    dreq.plan_index = 9;
    dreq.out = d_out;
    cuda->plan_device(dreq);
    ami::PlanRequest req;
    req.z0 = z0.data();
    req.goal = goal.data();
    req.prev_action = prev.data();
    req.init_mean = mean.data();
    req.init_std = stdv.data();
    req.plan_index = 9;
    ami::PlanOutput host;
    cuda->plan(req, host);
    check(name + " plan_device == plan (mean)", d_out, host.mean.data(), HA, 0.0);
    check(name + " plan_device == plan (cost)", d_out + 3 * HA, &host.cost, 1, 0.0);
    bool rejected = false;
    try {
      dreq.z0 = z0.data();  // host memory
      cuda->plan_device(dreq);
    } catch (const std::invalid_argument&) {
      rejected = true;
    }
    std::printf("%-58s %s\n", (name + " plan_device rejects host memory").c_str(), rejected ? "ok" : "FAIL");
    failures += rejected ? 0 : 1;
    cudaFree(d_in);
    cudaFree(d_out);
  }
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  using ami::Activation;
  using ami::Method;
  // device Philox == host Philox
  {
    const auto device = ami::cuda::philox_normal_device(1234, 7, 3, 999, 0);
    std::vector<float> host(999);
    ami::philox_normal_fill(1234, 7, 3, 999, host.data());
    check("philox device == host", device.data(), host.data(), host.size(), 1e-6);
  }
  compare("cem h2 gelu", make_problem(10, 2, 48, 3, 2, Activation::GELU, Method::CEM, 64, 5, 4, 8, 0, 0.0f, false, 3));
  compare("mppi h2 keep rate momentum control decay",
          make_problem(10, 2, 48, 3, 2, Activation::GELU, Method::MPPI, 64, 5, 4, 8, 4, 0.3f, true, 4, 0.5f, 0.3f,
                       0.8f));
  compare("cem h3 silu odd",
          make_problem(12, 3, 40, 2, 3, Activation::SiLU, Method::CEM, 37, 4, 3, 5, 2, 0.1f, true, 5));
  compare("mppi h1 tanh wide", make_problem(70, 5, 130, 2, 1, Activation::Tanh, Method::MPPI, 45, 3, 2, 45, 0, 0.0f,
                                            false, 6, 1.0f, 1.0f));
  compare("cem h1 relu", make_problem(8, 3, 32, 1, 1, Activation::ReLU, Method::CEM, 33, 2, 2, 3, 1, 0.0f, true, 7));
  // the critic cost term: final and running, with and without LayerNorm
  compare("cem h2 gelu critic final+running",
          with_critic(make_problem(10, 2, 48, 3, 2, Activation::GELU, Method::CEM, 64, 5, 4, 8, 0, 0.0f, false, 3), 24,
                      true, 0.7f, 0.2f, 10));
  compare("mppi h3 silu critic running, no LayerNorm",
          with_critic(make_problem(12, 3, 40, 2, 3, Activation::SiLU, Method::MPPI, 37, 4, 3, 5, 2, 0.1f, true, 5),
                      150, false, 0.0f, 0.5f, 11));
  compare("cem h1 tanh critic final",
          with_critic(make_problem(70, 5, 130, 2, 1, Activation::Tanh, Method::CEM, 45, 3, 2, 5, 0, 0.0f, false, 6),
                      33, true, 1.0f, 0.0f, 12));
  // tensor-core paths (emulated wmma with the documented fragment semantics): rollouts within tolerance
  compare("tf32 h2 gelu", make_problem(10, 2, 48, 3, 2, Activation::GELU, Method::CEM, 64, 5, 1, 8, 0, 0.0f, false, 8),
          ami::cuda::Precision::TF32);
  compare("bf16 h3 silu", make_problem(12, 3, 40, 2, 3, Activation::SiLU, Method::CEM, 37, 4, 1, 5, 0, 0.0f, true, 9),
          ami::cuda::Precision::BF16);
  compare("tf32 h2 gelu critic",
          with_critic(make_problem(10, 2, 48, 3, 2, Activation::GELU, Method::CEM, 64, 5, 1, 8, 0, 0.0f, false, 8), 24,
                      true, 0.7f, 0.2f, 13),
          ami::cuda::Precision::TF32);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
