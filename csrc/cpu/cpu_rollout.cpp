#include "cpu/cpu_rollout.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#ifdef AMI_ROBOT_WITH_OPENMP
#include <omp.h>
#endif

#include "cpu/kernels.h"
#include "reference/reference.h"

namespace ami {

int cpu_default_threads() {
#ifdef AMI_ROBOT_WITH_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

namespace {

int round_up(int x, int m) { return (x + m - 1) / m * m; }

// A 64-byte aligned float buffer, zero-initialised, sized once.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) : n_(n) {
    data_ = static_cast<float*>(::operator new[](std::max<size_t>(n, 1) * sizeof(float), std::align_val_t{64}));
    std::memset(data_, 0, std::max<size_t>(n, 1) * sizeof(float));
  }
  Buffer(Buffer&& o) noexcept : data_(o.data_), n_(o.n_) { o.data_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(n_, o.n_);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  ~Buffer() {
    if (data_) ::operator delete[](data_, std::align_val_t{64});
  }
  float* data() { return data_; }
  const float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  size_t n_ = 0;
};

struct PackedLayer {
  int in = 0, out = 0, out_pad = 0;
  Buffer weight;  // out_pad / nr panels of (in, nr)
  Buffer bias;    // (out_pad)
  const float* gamma = nullptr;
  const float* beta = nullptr;
};

struct Workspace {
  int rows_cap = 0;
  Buffer x;      // (rows_cap, ld_x): [z_{t-k+1} .. z_t, a_t]
  Buffer h0, h1;  // (rows_cap, ld_h) hidden activations
  Buffer out;    // (rows_cap, ld_out) predictor output
  Buffer member_latents;  // (rows_cap, M, H, D) an ensemble's latents, for its disagreement
};

// l's weights packed into nr-wide panels for gemm_bias; gamma/beta point into l (which must outlive it).
PackedLayer pack_layer(const LinearLayer& l, int nr) {
  PackedLayer pl;
  pl.in = l.in;
  pl.out = l.out;
  pl.out_pad = round_up(l.out, nr);
  pl.weight = Buffer(static_cast<size_t>(pl.out_pad) * l.in);
  pl.bias = Buffer(pl.out_pad);
  for (int o = 0; o < l.out; ++o) {
    const int panel = o / nr, col = o % nr;
    float* dst = pl.weight.data() + static_cast<size_t>(panel) * nr * l.in;
    for (int i = 0; i < l.in; ++i) dst[static_cast<size_t>(i) * nr + col] = l.weight[static_cast<size_t>(o) * l.in + i];
    pl.bias.data()[o] = l.bias[o];
  }
  pl.gamma = l.ln_gamma.empty() ? nullptr : l.ln_gamma.data();
  pl.beta = l.ln_beta.empty() ? nullptr : l.ln_beta.data();
  return pl;
}

class CpuRollout final : public RolloutCost {
 public:
  CpuRollout(const Problem& p, int threads, const std::string& isa)
      : p_(p), k_(cpu::select_kernels(isa.c_str())), threads_(threads > 0 ? threads : cpu_default_threads()) {
    const auto& m = p_.model;
    int widest = 0;
    for (const MlpModel* predictor : p_.predictors()) {
      std::vector<PackedLayer>& layers = predictors_.emplace_back();
      for (const auto& l : predictor->layers) {
        layers.push_back(pack_layer(l, k_.nr));
        widest = std::max(widest, layers.back().out_pad);
      }
    }
    if (p_.cost.uses_critic()) {
      for (const auto& l : p_.cost.critic.layers) {
        critic_layers_.push_back(pack_layer(l, k_.nr));
        widest = std::max(widest, critic_layers_.back().out_pad);
      }
    }
    ld_x_ = m.input_dim();
    ld_h_ = widest;
    const int D = m.latent_dim;
    z0_.assign(static_cast<size_t>(m.history) * D, 0.0f);
    goal_.assign(D, 0.0f);
    prev_.assign(m.action_dim, 0.0f);
    const int max_threads = threads_;
    for (int t = 0; t < max_threads; ++t) {
      Workspace w;
      w.rows_cap = kChunkPanels * k_.mr;
      w.x = Buffer(static_cast<size_t>(w.rows_cap) * ld_x_);
      w.h0 = Buffer(static_cast<size_t>(w.rows_cap) * ld_h_);
      w.h1 = Buffer(static_cast<size_t>(w.rows_cap) * ld_h_);
      w.out = Buffer(static_cast<size_t>(w.rows_cap) * ld_h_);
      if (p_.cost.uses_disagreement())
        w.member_latents = Buffer(static_cast<size_t>(w.rows_cap) * predictors_.size() * p_.sampler.horizon * D);
      work_.push_back(std::move(w));
    }
    if (threads <= 0 && max_threads > 1) autotune_threads(max_threads);
  }

  int threads() const override { return threads_; }

  void set_start(const float* z0, const float* goal, const float* prev_action) override {
    std::copy(z0, z0 + z0_.size(), z0_.begin());
    std::copy(goal, goal + goal_.size(), goal_.begin());
    if (p_.cost.uses_critic()) goal_embedding_ = critic_embed(p_.cost.critic, goal);
    has_prev_ = prev_action != nullptr;
    if (has_prev_) std::copy(prev_action, prev_action + prev_.size(), prev_.begin());
  }

  void evaluate(const float* actions, int n, float* cost) override { run(actions, n, cost, nullptr); }
  void predict(const float* actions, int n, float* latents) override { run(actions, n, nullptr, latents); }
  const char* name() const override { return k_.isa; }

 private:
  // Rows go in chunks of whole micro-tiles, at most kChunkPanels each, an equal number per thread
  // and handed out dynamically so that a thread slowed by other load does not hold the rest.
  void run(const float* actions, int n, float* cost, float* latents) {
    const int panels = (n + k_.mr - 1) / k_.mr;
    const int used = std::max(1, std::min(threads_, panels));
    const int per_thread = (panels + used - 1) / used;
    const int chunks = used * ((per_thread + kChunkPanels - 1) / kChunkPanels);
#ifdef AMI_ROBOT_WITH_OPENMP
#pragma omp parallel for num_threads(used) schedule(dynamic, 1) if (used > 1)
#endif
    for (int c = 0; c < chunks; ++c) {
      const int p0 = static_cast<int>(static_cast<int64_t>(panels) * c / chunks);
      const int p1 = static_cast<int>(static_cast<int64_t>(panels) * (c + 1) / chunks);
      const int r0 = p0 * k_.mr, r1 = std::min(n, p1 * k_.mr);
#ifdef AMI_ROBOT_WITH_OPENMP
      Workspace& w = work_[used > 1 ? omp_get_thread_num() : 0];
#else
      Workspace& w = work_[0];
#endif
      if (r1 > r0) run_rows(w, actions, r0, r1, cost, latents);
    }
  }

  // threads = 0: time a full batch with 1, 2, 4, ... threads and keep the fastest. More threads
  // are not always faster: cores shared with other processes stall the others at every barrier.
  void autotune_threads(int max_threads) {
    const int n = p_.sampler.samples;
    const size_t HA = static_cast<size_t>(p_.sampler.horizon) * p_.model.action_dim;
    std::vector<float> actions(HA * n, 0.0f), cost(n);
    std::vector<float> z0(z0_.size(), 0.0f), goal(goal_.size(), 0.0f);
    set_start(z0.data(), goal.data(), nullptr);
    double best_time = 0.0;
    int best = 1;
    for (int t = 1;; t = std::min(2 * t, max_threads)) {
      threads_ = t;
      run(actions.data(), n, cost.data(), nullptr);  // warm-up (starts the thread team)
      double fastest = 1e300;
      for (int rep = 0; rep < 3; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        run(actions.data(), n, cost.data(), nullptr);
        fastest = std::min(fastest, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      if (t == 1 || fastest < best_time) {
        best_time = fastest;
        best = t;
      }
      if (t == max_threads) break;
    }
    threads_ = best;
  }

  // An ensemble's members one after another over the rows' tile: the mean of their latent terms, the
  // action terms once, then their disagreement; latents are the members' mean.
  void run_rows(Workspace& w, const float* actions, int r0, int r1, float* cost, float* latents) {
    const auto& m = p_.model;
    const auto& c = p_.cost;
    const int D = m.latent_dim, A = m.action_dim, k = m.history, H = p_.sampler.horizon;
    const int M = static_cast<int>(predictors_.size());
    const float inv_members = 1.0f / static_cast<float>(M);
    const int rows = r1 - r0, rows_pad = round_up(rows, k_.mr);
    const size_t HA = static_cast<size_t>(H) * A, HD = static_cast<size_t>(H) * D;
    const bool bounded = c.latent_bound_weight > 0.0f && (!c.latent_low.empty() || !c.latent_high.empty());
    const bool spread = cost != nullptr && c.uses_disagreement();
    const float* prev = has_prev_ ? prev_.data() : nullptr;
    if (cost) {
      for (int r = 0; r < rows; ++r) cost[r0 + r] = action_cost(actions + (r0 + r) * HA, H, A, c, prev);
    }
    for (int member = 0; member < M; ++member) {
      for (int r = 0; r < rows; ++r) std::copy(z0_.begin(), z0_.end(), w.x.data() + static_cast<size_t>(r) * ld_x_);
      for (int t = 0; t < H; ++t) {
        for (int r = 0; r < rows; ++r) {
          std::copy_n(actions + (r0 + r) * HA + static_cast<size_t>(t) * A, A,
                      w.x.data() + static_cast<size_t>(r) * ld_x_ + k * D);
        }
        forward(w, predictors_[member], w.x.data(), rows_pad, m.ln_eps, static_cast<int>(m.activation));
        const bool final_step = t == H - 1;
        for (int r = 0; r < rows; ++r) {
          float* x = w.x.data() + static_cast<size_t>(r) * ld_x_;
          const float* f = w.out.data() + static_cast<size_t>(r) * ld_h_;
          if (k > 1) std::memmove(x, x + D, sizeof(float) * (k - 1) * D);
          float* z = x + (k - 1) * D;
          float dist = 0.0f, bound = 0.0f;
          for (int d = 0; d < D; ++d) {
            const float v = z[d] + f[d];
            z[d] = v;
            dist += (v - goal_[d]) * (v - goal_[d]);
          }
          if (bounded) {
            for (int d = 0; d < D; ++d) {
              const float v = z[d];
              if (!c.latent_high.empty() && v > c.latent_high[d]) bound += (v - c.latent_high[d]) * (v - c.latent_high[d]);
              if (!c.latent_low.empty() && v < c.latent_low[d]) bound += (c.latent_low[d] - v) * (c.latent_low[d] - v);
            }
          }
          if (cost) {
            cost[r0 + r] += inv_members * (c.goal_running_weight * dist + c.latent_bound_weight * bound +
                                           (final_step ? c.goal_weight * dist : 0.0f));
          }
          if (spread) std::copy_n(z, D, w.member_latents.data() + (static_cast<size_t>(r) * M + member) * HD + t * D);
          if (latents) {
            float* out = latents + (static_cast<size_t>(r0 + r) * H + t) * D;
            if (member == 0) {
              std::copy_n(z, D, out);
            } else {
              for (int d = 0; d < D; ++d) out[d] += z[d];
            }
          }
        }
        if (cost && (c.critic_running_weight > 0.0f || (final_step && c.critic_weight > 0.0f))) {
          const float* embedded = embed_latents(w, w.x.data() + static_cast<size_t>(k - 1) * D, rows_pad);
          for (int r = 0; r < rows; ++r) {
            const float* e = embedded + static_cast<size_t>(r) * ld_h_;
            const float steps = critic_distance(c.critic, e, goal_embedding_.data());
            cost[r0 + r] += inv_members * (c.critic_running_weight * steps + (final_step ? c.critic_weight * steps : 0.0f));
          }
        }
      }
    }
    if (spread) {
      for (int r = 0; r < rows; ++r)
        cost[r0 + r] += disagreement(w.member_latents.data() + static_cast<size_t>(r) * M * HD, M, H, D, c);
    }
    if (latents && M > 1) {
      for (size_t j = static_cast<size_t>(r0) * HD; j < static_cast<size_t>(r1) * HD; ++j) latents[j] /= static_cast<float>(M);
    }
  }

  // The critic's embeddings (rows_pad, ld_h_) in w.out of the latents z (rows_pad rows of stride
  // ld_x_), while the tile is still in cache; overwrites w.h0, w.h1 and w.out.
  const float* embed_latents(Workspace& w, const float* z, int rows_pad) {
    const CriticModel& critic = p_.cost.critic;
    forward(w, critic_layers_, z, rows_pad, critic.ln_eps, static_cast<int>(critic.activation));
    return w.out.data();
  }

  // One MLP on rows_pad rows of x (stride ld_x_): hidden layers (GEMM + bias, LayerNorm when the
  // layer has one, activation) through w.h0/w.h1, the output layer into w.out (stride ld_h_).
  void forward(Workspace& w, const std::vector<PackedLayer>& layers, const float* x, int rows_pad, float ln_eps,
               int activation) {
    const int last = static_cast<int>(layers.size()) - 1;
    const float* in = x;
    int ld_in = ld_x_;
    float* bufs[2] = {w.h0.data(), w.h1.data()};
    for (int l = 0; l < last; ++l) {
      const PackedLayer& L = layers[l];
      float* o = bufs[l % 2];
      k_.gemm_bias(in, ld_in, rows_pad, L.in, L.weight.data(), L.out_pad, L.bias.data(), o, ld_h_);
      if (L.gamma != nullptr) {
        k_.layer_norm_act(o, ld_h_, rows_pad, L.out, L.gamma, L.beta, ln_eps, activation);
      } else {
        k_.act(o, ld_h_, rows_pad, L.out, activation);
      }
      in = o;
      ld_in = ld_h_;
    }
    const PackedLayer& L = layers[last];
    k_.gemm_bias(in, ld_in, rows_pad, L.in, L.weight.data(), L.out_pad, L.bias.data(), w.out.data(), ld_h_);
  }

  static constexpr int kChunkPanels = 8;
  const Problem p_;
  const cpu::Kernels& k_;
  int threads_;
  int ld_x_ = 0, ld_h_ = 0;
  std::vector<std::vector<PackedLayer>> predictors_;  // the model's layers, or each ensemble member's
  std::vector<PackedLayer> critic_layers_;  // empty unless the cost uses the critic
  std::vector<Workspace> work_;
  std::vector<float> z0_, goal_, prev_;
  std::vector<float> goal_embedding_;  // (E) when the cost uses the critic
  bool has_prev_ = false;
};

}  // namespace

std::unique_ptr<RolloutCost> make_cpu_rollout(const Problem& problem, int threads, const std::string& isa) {
  return std::make_unique<CpuRollout>(problem, threads, isa);
}

}  // namespace ami
