// Host side of the CUDA planner: uploads the problem once, owns every device buffer, captures the
// whole plan (all iterations and the final rollout) into one CUDA graph on the first call, and then
// runs each plan as: one input copy, one graph launch, one output copy, one synchronisation.
#include "cuda/cuda_planner.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cuda/kernels.cuh"

#define AMI_CUDA_CHECK(call)                                                                                \
  do {                                                                                                      \
    const cudaError_t ami_status_ = (call);                                                                 \
    if (ami_status_ != cudaSuccess)                                                                         \
      throw std::runtime_error(std::string(#call) + " failed at " __FILE__ ":" + std::to_string(__LINE__) + \
                               ": " + cudaGetErrorName(ami_status_) + ": " + cudaGetErrorString(ami_status_)); \
  } while (0)
#define AMI_CUDA_CHECK_LAUNCH() AMI_CUDA_CHECK(cudaGetLastError())
#ifndef AMI_LAUNCH  // csrc/cuda/emulation defines its own
#define AMI_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#endif

namespace ami::cuda {

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::FP32;
  if (name == "tf32") return Precision::TF32;
  if (name == "bf16") return Precision::BF16;
  throw std::invalid_argument("unknown CUDA precision '" + name + "' (fp32, tf32, bf16)");
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error (no driver / no device)
    return 0;
  }
  return count;
}

namespace {

int round_up(int x, int m) { return (x + m - 1) / m * m; }

int next_pow2(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

void require_gpu(int device) {
  const int count = device_count();
  if (count == 0)
    throw std::runtime_error("no CUDA GPU: cudaGetDeviceCount reports no usable device (no driver or no GPU visible)");
  if (device < 0 || device >= count)
    throw std::invalid_argument("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
                                " visible)");
}

// Makes `device` current for the scope and restores the caller's device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    AMI_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) AMI_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { (void)cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

// Owning device allocation, zero-filled.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t count) : count_(count) {
    if (count == 0) return;
    AMI_CUDA_CHECK(cudaMalloc(&data_, count * sizeof(T)));
    AMI_CUDA_CHECK(cudaMemset(data_, 0, count * sizeof(T)));
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : data_(o.data_), count_(o.count_) { o.data_ = nullptr; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
    return *this;
  }
  ~DeviceArray() {
    if (data_ != nullptr) (void)cudaFree(data_);
  }
  T* get() const { return data_; }
  size_t bytes() const { return count_ * sizeof(T); }
  void upload(const T* host, size_t count) {
    AMI_CUDA_CHECK(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

// Owning pinned host allocation.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes) { AMI_CUDA_CHECK(cudaMallocHost(&data_, std::max<size_t>(bytes, 16))); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    return *this;
  }
  ~PinnedBuffer() {
    if (data_ != nullptr) (void)cudaFreeHost(data_);
  }
  unsigned char* get() const { return static_cast<unsigned char*>(data_); }

 private:
  void* data_ = nullptr;
};

// A (rows, cols) row-major matrix copied into a zero-filled (rows_pad, cols_pad) one.
std::vector<float> padded(const std::vector<float>& m, int rows, int cols, int rows_pad, int cols_pad) {
  std::vector<float> out(static_cast<size_t>(rows_pad) * cols_pad, 0.0f);
  for (int r = 0; r < rows; ++r)
    std::copy_n(m.begin() + static_cast<size_t>(r) * cols, cols, out.begin() + static_cast<size_t>(r) * cols_pad);
  return out;
}

class CudaPlanner final : public DevicePlanner, public RolloutCost {
 public:
  CudaPlanner(Problem problem, int device, Precision precision)
      : p_(std::move(problem)), device_(device), precision_(precision) {
    p_.validate();
    if (!p_.ensemble.empty())
      throw std::invalid_argument("the CUDA planner does not run a predictor ensemble yet (the cpu backend does)");
    require_gpu(device_);
    DeviceGuard guard(device_);
    cudaDeviceProp prop{};
    AMI_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    if (prop.major < 8)  // cp.async pipelines everywhere, bf16 / tf32 tensor cores
      throw std::invalid_argument("the CUDA planner needs compute capability 8.0+ (Ampere or newer), device " +
                                  std::to_string(device_) + " has " + std::to_string(prop.major) + "." +
                                  std::to_string(prop.minor));
    const auto& m = p_.model;
    const auto& s = p_.sampler;
    N_ = s.samples;
    H_ = s.horizon;
    A_ = m.action_dim;
    D_ = m.latent_dim;
    k_ = m.history;
    HA_ = H_ * A_;
    L_ = static_cast<int>(m.layers.size());
    m_pad_ = round_up(N_, kBM);
    k0_pad_ = round_up(m.input_dim(), kBK);
    sort_size_ = next_pow2(N_);
    const int weight_count = s.method == Method::MPPI ? N_ : s.elites;  // MPPI weighs every sample
    select_smem_ = static_cast<size_t>(kSelectThreads) * sizeof(double) + static_cast<size_t>(sort_size_) * 8 +
                   static_cast<size_t>(weight_count) * 4;
    if (select_smem_ > static_cast<size_t>(prop.sharedMemPerBlockOptin))
      throw std::invalid_argument("samples=" + std::to_string(N_) + " is too many for the CUDA elite sort (" +
                                  std::to_string(select_smem_) + " bytes of shared memory, device allows " +
                                  std::to_string(prop.sharedMemPerBlockOptin) + ")");
    AMI_CUDA_CHECK(cudaFuncSetAttribute(select_refit_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(std::max<size_t>(select_smem_, 1))));
    switch (precision_) {
      case Precision::FP32: layer_smem_ = allow_layer_smem<Mode::FP32>(prop); break;
      case Precision::TF32: layer_smem_ = allow_layer_smem<Mode::TF32>(prop); break;
      case Precision::BF16: layer_smem_ = allow_layer_smem<Mode::BF16>(prop); break;
    }

    // Weights, zero-padded to whole tiles: W (out_pad, in_pad), bias/LayerNorm (out_pad).
    int max_hidden_pad = kBN, max_hidden_tiles = 1;
    for (int l = 0; l < L_; ++l) {
      const auto& layer = m.layers[l];
      const int in_pad = round_up(layer.in, kBK), out_pad = round_up(layer.out, kBN);
      in_pad_.push_back(in_pad);
      out_pad_.push_back(out_pad);
      const std::vector<float> w = padded(layer.weight, layer.out, layer.in, out_pad, in_pad);
      weight_.emplace_back(w.size());
      weight_.back().upload(w.data(), w.size());
      if (precision_ == Precision::BF16) {
        std::vector<__nv_bfloat16> wb(w.size());
        for (size_t i = 0; i < w.size(); ++i) wb[i] = __float2bfloat16_rn(w[i]);
        weight_bf16_.emplace_back(wb.size());
        weight_bf16_.back().upload(wb.data(), wb.size());
      }
      const std::vector<float> b = padded(layer.bias, 1, layer.out, 1, out_pad);
      bias_.emplace_back(b.size());
      bias_.back().upload(b.data(), b.size());
      if (l + 1 < L_) {
        const std::vector<float> g = padded(layer.ln_gamma, 1, layer.out, 1, out_pad);
        const std::vector<float> be = padded(layer.ln_beta, 1, layer.out, 1, out_pad);
        gamma_.emplace_back(g.size());
        gamma_.back().upload(g.data(), g.size());
        beta_.emplace_back(be.size());
        beta_.back().upload(be.data(), be.size());
        max_hidden_pad = std::max(max_hidden_pad, out_pad);
        max_hidden_tiles = std::max(max_hidden_tiles, out_pad / kBN);
      }
    }
    ld_y_ = max_hidden_pad;
    cost_tiles_ = out_pad_.back() / kBN;

    auto upload = [](DeviceArray<float>& dst, const std::vector<float>& src) {
      dst = DeviceArray<float>(src.size());
      if (!src.empty()) dst.upload(src.data(), src.size());
    };
    upload(low_, p_.bounds.low);
    upload(high_, p_.bounds.high);
    upload(max_rate_, p_.bounds.max_rate);
    upload(latent_low_, p_.cost.latent_low);
    upload(latent_high_, p_.cost.latent_high);
    if (p_.cost.uses_critic()) upload_critic();

    start_floats_ = static_cast<size_t>(k_) * D_ + D_ + A_ + 2 * static_cast<size_t>(HA_);
    start_bytes_ = sizeof(PlanScalars) + start_floats_ * sizeof(float);
    start_ = DeviceArray<unsigned char>(start_bytes_);
    staging_ = PinnedBuffer(start_bytes_);
    out_host_ = PinnedBuffer(out_floats() * sizeof(float));
    noise_ = DeviceArray<float>(static_cast<size_t>(s.iterations) * N_ * HA_);
    mean_ = DeviceArray<float>(HA_);
    std_ = DeviceArray<float>(HA_);
    samples_ = DeviceArray<float>(static_cast<size_t>(N_) * HA_);
    kept_ = DeviceArray<float>(static_cast<size_t>(std::max(1, s.keep_elites)) * HA_);
    costs_ = DeviceArray<float>(N_);
    out_ = DeviceArray<float>(out_floats());
    for (int b = 0; b < 2; ++b) {
      x0_[b] = DeviceArray<float>(static_cast<size_t>(m_pad_) * k0_pad_);
      y_[b] = DeviceArray<float>(static_cast<size_t>(m_pad_) * ld_y_);
      stats_[b] = DeviceArray<float2>(static_cast<size_t>(max_hidden_tiles) * m_pad_);
    }
    cost_part_ = DeviceArray<float2>(static_cast<size_t>(H_) * cost_tiles_ * m_pad_);
    latents_ = DeviceArray<float>(static_cast<size_t>(m_pad_) * H_ * D_);
    eval_actions_ = DeviceArray<float>(static_cast<size_t>(N_) * HA_);
    eval_costs_ = DeviceArray<float>(N_);
    AMI_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    AMI_CUDA_CHECK(cudaEventCreateWithFlags(&inputs_ready_, cudaEventDisableTiming));
    AMI_CUDA_CHECK(cudaDeviceSynchronize());
    name_ = std::string("cuda-") + precision_name(precision_);
  }

  ~CudaPlanner() override {
    if (stream_ != nullptr) (void)cudaStreamSynchronize(stream_);
    if (graph_ != nullptr) (void)cudaGraphExecDestroy(graph_);
    if (inputs_ready_ != nullptr) (void)cudaEventDestroy(inputs_ready_);
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  }

  // PlannerBackend ------------------------------------------------------------------------------
  void plan(const PlanRequest& req, PlanOutput& out) override {
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceGuard guard(device_);
    PlanScalars scalars{req.plan_index, req.prev_action != nullptr, req.noise != nullptr};
    unsigned char* stage = staging_.get();
    std::memcpy(stage, &scalars, sizeof(scalars));
    float* f = reinterpret_cast<float*>(stage + sizeof(PlanScalars));
    const size_t kD = static_cast<size_t>(k_) * D_;
    std::copy_n(req.z0, kD, f);
    std::copy_n(req.goal, D_, f + kD);
    if (req.prev_action != nullptr) std::copy_n(req.prev_action, A_, f + kD + D_);
    std::copy_n(req.init_mean, HA_, f + kD + D_ + A_);
    std::copy_n(req.init_std, HA_, f + kD + D_ + A_ + HA_);
    AMI_CUDA_CHECK(cudaMemcpyAsync(start_.get(), stage, start_bytes_, cudaMemcpyHostToDevice, stream_));
    if (req.noise != nullptr)
      AMI_CUDA_CHECK(cudaMemcpyAsync(noise_.get(), req.noise, noise_.bytes(), cudaMemcpyHostToDevice, stream_));
    launch_plan_graph();
    float* host = reinterpret_cast<float*>(out_host_.get());
    AMI_CUDA_CHECK(cudaMemcpyAsync(host, out_.get(), out_floats() * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    AMI_CUDA_CHECK(cudaStreamSynchronize(stream_));
    out.mean.assign(host, host + HA_);
    out.std.assign(host + HA_, host + 2 * HA_);
    out.best_actions.assign(host + 2 * HA_, host + 3 * HA_);
    out.cost = host[3 * HA_];
    out.best_cost = host[3 * HA_ + 1];
    out.std_history.assign(host + 3 * HA_ + 2, host + out_floats());
  }

  RolloutCost& rollout() override { return *this; }
  const Problem& problem() const override { return p_; }

  // DevicePlanner -------------------------------------------------------------------------------
  void plan_device(const DevicePlanRequest& req) override {
    if (req.z0 == nullptr || req.goal == nullptr || req.init_mean == nullptr || req.init_std == nullptr ||
        req.out == nullptr)
      throw std::invalid_argument("plan_device: z0, goal, init_mean, init_std and out are required");
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceGuard guard(device_);
    check_device_pointer(req.z0, "z0");
    check_device_pointer(req.goal, "goal");
    if (req.prev_action != nullptr) check_device_pointer(req.prev_action, "prev_action");
    check_device_pointer(req.init_mean, "init_mean");
    check_device_pointer(req.init_std, "init_std");
    if (req.noise != nullptr) check_device_pointer(req.noise, "noise");
    check_device_pointer(req.out, "out");
    AMI_CUDA_CHECK(cudaEventRecord(inputs_ready_, reinterpret_cast<cudaStream_t>(req.stream)));
    AMI_CUDA_CHECK(cudaStreamWaitEvent(stream_, inputs_ready_, 0));
    PlanScalars scalars{req.plan_index, req.prev_action != nullptr, req.noise != nullptr};
    std::memcpy(staging_.get(), &scalars, sizeof(scalars));
    AMI_CUDA_CHECK(cudaMemcpyAsync(start_.get(), staging_.get(), sizeof(PlanScalars), cudaMemcpyHostToDevice, stream_));
    const size_t kD = static_cast<size_t>(k_) * D_;
    auto to_start = [&](const float* src, size_t offset, size_t count) {
      AMI_CUDA_CHECK(cudaMemcpyAsync(start_floats() + offset, src, count * sizeof(float), cudaMemcpyDeviceToDevice,
                                     stream_));
    };
    to_start(req.z0, 0, kD);
    to_start(req.goal, kD, D_);
    if (req.prev_action != nullptr) to_start(req.prev_action, kD + D_, A_);
    to_start(req.init_mean, kD + D_ + A_, HA_);
    to_start(req.init_std, kD + D_ + A_ + HA_, HA_);
    if (req.noise != nullptr)
      AMI_CUDA_CHECK(cudaMemcpyAsync(noise_.get(), req.noise, noise_.bytes(), cudaMemcpyDeviceToDevice, stream_));
    launch_plan_graph();
    AMI_CUDA_CHECK(
        cudaMemcpyAsync(req.out, out_.get(), out_floats() * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
    AMI_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  Precision precision() const override { return precision_; }
  int device() const override { return device_; }

  // RolloutCost ---------------------------------------------------------------------------------
  void set_start(const float* z0, const float* goal, const float* prev_action) override {
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceGuard guard(device_);
    PlanScalars scalars{0, prev_action != nullptr, 0};
    unsigned char* stage = staging_.get();
    std::memcpy(stage, &scalars, sizeof(scalars));
    float* f = reinterpret_cast<float*>(stage + sizeof(PlanScalars));
    const size_t kD = static_cast<size_t>(k_) * D_;
    std::copy_n(z0, kD, f);
    std::copy_n(goal, D_, f + kD);
    if (prev_action != nullptr) std::copy_n(prev_action, A_, f + kD + D_);
    AMI_CUDA_CHECK(cudaMemcpyAsync(start_.get(), stage, start_bytes_, cudaMemcpyHostToDevice, stream_));
    AMI_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void evaluate(const float* actions, int n, float* cost) override {
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceGuard guard(device_);
    run_rollout(actions, n);
    AMI_LAUNCH(rollout_cost_kernel, (n + 127) / 128, 128, 0, stream_, eval_actions_.get(), cost_args(),
               eval_costs_.get(), n);
    AMI_CUDA_CHECK_LAUNCH();
    AMI_CUDA_CHECK(cudaMemcpyAsync(cost, eval_costs_.get(), sizeof(float) * n, cudaMemcpyDeviceToHost, stream_));
    AMI_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void predict(const float* actions, int n, float* latents) override {
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceGuard guard(device_);
    run_rollout(actions, n);
    AMI_CUDA_CHECK(cudaMemcpyAsync(latents, latents_.get(), sizeof(float) * n * H_ * D_, cudaMemcpyDeviceToHost,
                                   stream_));
    AMI_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  const char* name() const override { return name_.c_str(); }

 private:
  void check_device_pointer(const void* ptr, const char* what) const {
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
      (void)cudaGetLastError();
      throw std::invalid_argument(std::string("plan_device: ") + what + " is not a CUDA pointer");
    }
    const bool on_device = attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
    if (!on_device || attr.device != device_)
      throw std::invalid_argument(std::string("plan_device: ") + what + " is not device memory on CUDA device " +
                                  std::to_string(device_));
  }

  template <Mode M>
  static size_t allow_layer_smem(const cudaDeviceProp& prop) {
    constexpr int bytes = layer_smem_bytes<M>();
    if (bytes > static_cast<int>(prop.sharedMemPerBlockOptin))
      throw std::invalid_argument("the layer kernel needs " + std::to_string(bytes) +
                                  " bytes of shared memory per block, the device allows " +
                                  std::to_string(prop.sharedMemPerBlockOptin));
    AMI_CUDA_CHECK(cudaFuncSetAttribute(layer_kernel<M>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    return bytes;
  }

  // The critic's weights (transposed), its per-step outputs and the goal's embedding on the device.
  void upload_critic() {
    const CriticModel& critic = p_.cost.critic;
    if (critic.layers.size() > static_cast<size_t>(kMaxCriticLayers))
      throw std::invalid_argument("the CUDA planner runs critics of at most " + std::to_string(kMaxCriticLayers) +
                                  " layers, got " + std::to_string(critic.layers.size()));
    int width = critic.latent_dim;
    for (const auto& layer : critic.layers) width = std::max(width, layer.out);
    critic_smem_ = 2 * static_cast<size_t>(width) * sizeof(float);
    if (critic_smem_ > 48 * 1024)
      throw std::invalid_argument("the CUDA planner's critic kernel needs layers of at most 6144 features, got " +
                                  std::to_string(width));
    auto push = [](std::vector<DeviceArray<float>>& dst, const std::vector<float>& src) {
      dst.emplace_back(src.size());
      if (!src.empty()) dst.back().upload(src.data(), src.size());
    };
    for (const auto& layer : critic.layers) {
      std::vector<float> transposed(layer.weight.size());
      for (int o = 0; o < layer.out; ++o)
        for (int i = 0; i < layer.in; ++i)
          transposed[static_cast<size_t>(i) * layer.out + o] = layer.weight[static_cast<size_t>(o) * layer.in + i];
      push(critic_weight_t_, transposed);
      push(critic_bias_, layer.bias);
      push(critic_gamma_, layer.ln_gamma);
      push(critic_beta_, layer.ln_beta);
    }
    critic_steps_ = DeviceArray<float>(static_cast<size_t>(H_) * m_pad_);
    goal_embedding_ = DeviceArray<float>(critic.embed_dim());
    critic_width_ = width;
  }

  CriticArgs critic_args() const {
    const CriticModel& critic = p_.cost.critic;
    CriticArgs c;
    c.layers = static_cast<int>(critic.layers.size());
    for (int l = 0; l < c.layers; ++l) {
      c.in[l] = critic.layers[l].in;
      c.out[l] = critic.layers[l].out;
      c.weight_t[l] = critic_weight_t_[l].get();
      c.bias[l] = critic_bias_[l].get();
      if (!critic.layers[l].ln_gamma.empty()) {
        c.ln_gamma[l] = critic_gamma_[l].get();
        c.ln_beta[l] = critic_beta_[l].get();
      }
    }
    c.activation = static_cast<int>(critic.activation);
    c.ln_eps = critic.ln_eps;
    c.symmetric_eps = critic.symmetric_eps;
    c.asymmetric_dim = critic.asymmetric_dim;
    c.width = critic_width_;
    return c;
  }

  bool critic_at_step(int t) const {
    const auto& cost = p_.cost;
    return cost.critic_running_weight > 0.0f || (cost.critic_weight > 0.0f && t == H_ - 1);
  }

  // The goal's critic embedding, once per plan (a no-op without the critic).
  void enqueue_goal_embedding() {
    if (!p_.cost.uses_critic()) return;
    const float* no_goal_embedding = nullptr;
    float* no_steps = nullptr;
    AMI_LAUNCH(critic_kernel, 1, kCriticThreads, critic_smem_, stream_, critic_args(), goal(), size_t{0},
               no_goal_embedding, no_steps, goal_embedding_.get());
    AMI_CUDA_CHECK_LAUNCH();
  }

  size_t out_floats() const { return (3 + static_cast<size_t>(p_.sampler.iterations)) * HA_ + 2; }
  PlanScalars* scalars() const { return reinterpret_cast<PlanScalars*>(start_.get()); }
  float* start_floats() const { return reinterpret_cast<float*>(start_.get() + sizeof(PlanScalars)); }
  const float* z0() const { return start_floats(); }
  const float* goal() const { return start_floats() + static_cast<size_t>(k_) * D_; }
  const float* prev_action() const { return goal() + D_; }
  const float* init_mean() const { return prev_action() + A_; }
  const float* init_std() const { return init_mean() + HA_; }

  void run_rollout(const float* actions, int n) {
    if (n < 1 || n > N_) throw std::invalid_argument("rollout: n must be in [1, samples]");
    AMI_CUDA_CHECK(
        cudaMemcpyAsync(eval_actions_.get(), actions, sizeof(float) * n * HA_, cudaMemcpyHostToDevice, stream_));
    const int width = k_ * D_ + A_;
    AMI_LAUNCH(begin_rollout_kernel, (n * width + 255) / 256, 256, 0, stream_, eval_actions_.get(), z0(), x0_[0].get(),
               k0_pad_, n, k_ * D_, A_, H_);
    AMI_CUDA_CHECK_LAUNCH();
    enqueue_goal_embedding();
    enqueue_rollout(n, eval_actions_.get());
  }

  CostArgs cost_args() const {
    CostArgs c;
    c.cost_part = cost_part_.get();
    c.tiles = cost_tiles_;
    c.m_pad = m_pad_;
    c.horizon = H_;
    c.action_dim = A_;
    c.prev_action = prev_action();
    c.has_prev = &scalars()->has_prev;
    c.goal_weight = p_.cost.goal_weight;
    c.goal_running_weight = p_.cost.goal_running_weight;
    c.action_weight = p_.cost.action_weight;
    c.smoothness_weight = p_.cost.smoothness_weight;
    c.latent_bound_weight = p_.cost.latent_bound_weight;
    if (p_.cost.uses_critic()) {
      c.critic_steps = critic_steps_.get();
      c.critic_weight = p_.cost.critic_weight;
      c.critic_running_weight = p_.cost.critic_running_weight;
    }
    return c;
  }

  SamplerArgs sampler_args() const {
    const auto& s = p_.sampler;
    SamplerArgs a;
    a.samples = N_;
    a.horizon = H_;
    a.action_dim = A_;
    a.history = k_;
    a.latent_dim = D_;
    a.elites = s.elites;
    a.keep = s.keep_elites;
    a.method = static_cast<int>(s.method);
    a.momentum = s.momentum;
    a.min_std = s.min_std;
    a.temperature = s.temperature;
    a.control_cost_weight = s.control_cost_weight;
    a.std_decay = s.std_decay;
    a.seed = s.seed;
    a.scalars = scalars();
    a.z0 = z0();
    a.prev_action = prev_action();
    a.init_mean = init_mean();
    a.init_std = init_std();
    a.noise = noise_.get();
    a.low = low_.get();
    a.high = high_.get();
    a.max_rate = p_.bounds.max_rate.empty() ? nullptr : max_rate_.get();
    a.mean = mean_.get();
    a.std = std_.get();
    a.samples_buf = samples_.get();
    a.kept = kept_.get();
    a.costs = costs_.get();
    a.x0 = x0_[0].get();
    a.ldx0 = k0_pad_;
    a.out = out_.get();
    a.sort_size = sort_size_;
    return a;
  }

  LayerArgs layer_args(int l, int t, int n, const float* actions) const {
    const auto& m = p_.model;
    LayerArgs a;
    a.weight = weight_[l].get();
    a.weight_bf16 = precision_ == Precision::BF16 ? weight_bf16_[l].get() : nullptr;
    a.bias = bias_[l].get();
    a.in = m.layers[l].in;
    a.in_pad = in_pad_[l];
    a.out = m.layers[l].out;
    a.activation = static_cast<int>(m.activation);
    a.ln_eps = m.ln_eps;
    if (l == 0) {
      a.x = x0_[t % 2].get();
      a.ldx = k0_pad_;
    } else {
      a.x = y_[(l - 1) % 2].get();
      a.ldx = ld_y_;
      a.ln_gamma = gamma_[l - 1].get();
      a.ln_beta = beta_[l - 1].get();
      a.in_stats = stats_[(l - 1) % 2].get();
      a.in_tiles = out_pad_[l - 1] / kBN;
    }
    a.m_pad = m_pad_;
    a.n_rows = n;
    if (l + 1 < L_) {
      a.y = y_[l % 2].get();
      a.ldy = ld_y_;
      a.out_stats = stats_[l % 2].get();
    } else {
      a.last = true;
      a.t = t;
      a.horizon = H_;
      a.latent_dim = D_;
      a.history = k_;
      a.action_dim = A_;
      a.x_cur = x0_[t % 2].get();
      a.x_next = x0_[(t + 1) % 2].get();
      a.ldx0 = k0_pad_;
      a.latents = latents_.get();
      a.actions = actions;
      a.goal = goal();
      a.latent_low = p_.cost.latent_low.empty() ? nullptr : latent_low_.get();
      a.latent_high = p_.cost.latent_high.empty() ? nullptr : latent_high_.get();
      a.cost_part = cost_part_.get();
    }
    return a;
  }

  // Rollout of rows [0, n) whose step-0 input is in x0_[0]: H steps x L layers.
  void enqueue_rollout(int n, const float* actions) {
    const int row_tiles = (n + kBM - 1) / kBM;
    for (int t = 0; t < H_; ++t) {
      for (int l = 0; l < L_; ++l) {
        const LayerArgs a = layer_args(l, t, n, actions);
        const dim3 grid(out_pad_[l] / kBN, row_tiles);
        const int threads = kLayerThreads;
        switch (precision_) {
          case Precision::FP32: AMI_LAUNCH(layer_kernel<Mode::FP32>, grid, threads, layer_smem_, stream_, a); break;
          case Precision::TF32: AMI_LAUNCH(layer_kernel<Mode::TF32>, grid, threads, layer_smem_, stream_, a); break;
          case Precision::BF16: AMI_LAUNCH(layer_kernel<Mode::BF16>, grid, threads, layer_smem_, stream_, a); break;
        }
        AMI_CUDA_CHECK_LAUNCH();
      }
      if (p_.cost.uses_critic() && critic_at_step(t)) {
        const float* z_t = latents_.get() + static_cast<size_t>(t) * D_;
        const float* goal_embedding = goal_embedding_.get();
        float* steps_t = critic_steps_.get() + static_cast<size_t>(t) * m_pad_;
        float* no_embedding = nullptr;
        AMI_LAUNCH(critic_kernel, n, kCriticThreads, critic_smem_, stream_, critic_args(), z_t,
                   static_cast<size_t>(H_) * D_, goal_embedding, steps_t, no_embedding);
        AMI_CUDA_CHECK_LAUNCH();
      }
    }
  }

  // The whole plan: iterations x (sample, rollout, select + update), then the plan's own cost.
  void enqueue_plan() {
    const SamplerArgs s = sampler_args();
    const CostArgs c = cost_args();
    const int sample_blocks = (N_ * A_ + 255) / 256;
    enqueue_goal_embedding();
    for (int it = 0; it < p_.sampler.iterations; ++it) {
      AMI_LAUNCH(sample_kernel, sample_blocks, 256, 0, stream_, s, it);
      AMI_CUDA_CHECK_LAUNCH();
      enqueue_rollout(N_, samples_.get());
      AMI_LAUNCH(select_refit_kernel, 1, kSelectThreads, select_smem_, stream_, s, c, it);
      AMI_CUDA_CHECK_LAUNCH();
    }
    AMI_LAUNCH(finalize_kernel, 1, 128, 0, stream_, s);
    AMI_CUDA_CHECK_LAUNCH();
    enqueue_rollout(1, out_.get());
    AMI_LAUNCH(final_cost_kernel, 1, 32, 0, stream_, s, c);
    AMI_CUDA_CHECK_LAUNCH();
  }

  // Captures enqueue_plan() once; every later plan replays it.
  void launch_plan_graph() {
    if (graph_ == nullptr) {
      AMI_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      cudaGraph_t graph = nullptr;
      try {
        enqueue_plan();
      } catch (...) {
        (void)cudaStreamEndCapture(stream_, &graph);
        if (graph != nullptr) (void)cudaGraphDestroy(graph);
        (void)cudaGetLastError();
        throw;
      }
      AMI_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
      const cudaError_t status = cudaGraphInstantiate(&graph_, graph, 0);
      (void)cudaGraphDestroy(graph);
      if (status != cudaSuccess) {
        graph_ = nullptr;
        AMI_CUDA_CHECK(status);
      }
    }
    AMI_CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
  }

  Problem p_;
  int device_;
  Precision precision_;
  std::string name_;
  int N_ = 0, H_ = 0, A_ = 0, D_ = 0, k_ = 0, HA_ = 0, L_ = 0;
  int m_pad_ = 0, k0_pad_ = 0, ld_y_ = 0, cost_tiles_ = 0, sort_size_ = 0;
  size_t select_smem_ = 0, layer_smem_ = 0, start_floats_ = 0, start_bytes_ = 0;
  std::vector<int> in_pad_, out_pad_;
  std::vector<DeviceArray<float>> weight_, bias_, gamma_, beta_;
  std::vector<DeviceArray<__nv_bfloat16>> weight_bf16_;
  DeviceArray<float> low_, high_, max_rate_, latent_low_, latent_high_;
  DeviceArray<unsigned char> start_;  // PlanScalars | z0 | goal | prev_action | init_mean | init_std
  PinnedBuffer staging_, out_host_;
  DeviceArray<float> noise_, mean_, std_, samples_, kept_, costs_, out_;
  DeviceArray<float> x0_[2], y_[2];
  DeviceArray<float2> stats_[2];
  DeviceArray<float2> cost_part_;
  DeviceArray<float> latents_, eval_actions_, eval_costs_;
  std::vector<DeviceArray<float>> critic_weight_t_, critic_bias_, critic_gamma_, critic_beta_;
  DeviceArray<float> critic_steps_;    // (H, m_pad): C(z_t, g) of each sample at the steps that weigh it
  DeviceArray<float> goal_embedding_;  // (E)
  int critic_width_ = 0;
  size_t critic_smem_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t inputs_ready_ = nullptr;
  cudaGraphExec_t graph_ = nullptr;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<DevicePlanner> make_device_planner(Problem problem, int device, Precision precision) {
  return std::make_unique<CudaPlanner>(std::move(problem), device, precision);
}

std::unique_ptr<PlannerBackend> make_planner(Problem problem, int device) {
  return make_device_planner(std::move(problem), device, Precision::FP32);
}

std::vector<float> philox_normal_device(uint64_t seed, uint64_t plan_index, uint64_t start, uint64_t count,
                                        int device) {
  require_gpu(device);
  DeviceGuard guard(device);
  std::vector<float> host(count);
  if (count == 0) return host;
  DeviceArray<float> out(count);
  const unsigned blocks = static_cast<unsigned>((count + 255) / 256);
  AMI_LAUNCH(philox_fill_kernel, blocks, 256, 0, nullptr, seed, plan_index, start, count, out.get());
  AMI_CUDA_CHECK_LAUNCH();
  AMI_CUDA_CHECK(cudaMemcpy(host.data(), out.get(), count * sizeof(float), cudaMemcpyDeviceToHost));
  return host;
}

}  // namespace ami::cuda
