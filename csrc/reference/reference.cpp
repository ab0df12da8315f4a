#include "reference/reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ami {

float action_cost(const float* actions, int horizon, int action_dim, const CostParams& cost,
                  const float* prev_action) {
  float magnitude = 0.0f, smooth = 0.0f;
  for (int t = 0; t < horizon; ++t) {
    const float* a = actions + t * action_dim;
    const float* prev = t > 0 ? a - action_dim : prev_action;
    for (int j = 0; j < action_dim; ++j) {
      magnitude += a[j] * a[j];
      if (prev != nullptr) smooth += (a[j] - prev[j]) * (a[j] - prev[j]);
    }
  }
  return cost.action_weight * magnitude + cost.smoothness_weight * smooth;
}

namespace {

float activate(float x, Activation act) {
  switch (act) {
    case Activation::GELU: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Activation::SiLU: return x / (1.0f + std::exp(-x));
    case Activation::ReLU: return x > 0.0f ? x : 0.0f;
    case Activation::Tanh: return std::tanh(x);
  }
  return x;
}

// y = x W^T + b; a hidden layer then applies LayerNorm (when it has one) and the activation.
std::vector<float> linear_layer(const LinearLayer& l, const std::vector<float>& x, bool hidden, Activation act,
                                float ln_eps) {
  std::vector<float> y(l.out);
  for (int o = 0; o < l.out; ++o) {
    float acc = l.bias[o];
    for (int i = 0; i < l.in; ++i) acc += l.weight[static_cast<size_t>(o) * l.in + i] * x[i];
    y[o] = acc;
  }
  if (!hidden) return y;
  if (!l.ln_gamma.empty()) {
    float mean = 0.0f;
    for (float v : y) mean += v;
    mean /= l.out;
    float var = 0.0f;
    for (float v : y) var += (v - mean) * (v - mean);
    var /= l.out;
    const float inv = 1.0f / std::sqrt(var + ln_eps);
    for (int o = 0; o < l.out; ++o) y[o] = (y[o] - mean) * inv * l.ln_gamma[o] + l.ln_beta[o];
  }
  for (float& v : y) v = activate(v, act);
  return y;
}

}  // namespace

std::vector<float> critic_embed(const CriticModel& critic, const float* z) {
  std::vector<float> h(z, z + critic.latent_dim);
  for (size_t l = 0; l < critic.layers.size(); ++l) {
    h = linear_layer(critic.layers[l], h, l + 1 < critic.layers.size(), critic.activation, critic.ln_eps);
  }
  return h;
}

float disagreement(const float* latents, int members, int horizon, int latent_dim, const CostParams& cost) {
  const size_t HD = static_cast<size_t>(horizon) * latent_dim;
  float final_step = 0.0f, running = 0.0f;
  for (int t = 0; t < horizon; ++t) {
    if (cost.disagreement_running_weight <= 0.0f && t < horizon - 1) continue;
    float spread = 0.0f;
    for (int d = 0; d < latent_dim; ++d) {
      const size_t at = static_cast<size_t>(t) * latent_dim + d;
      float mean = 0.0f;
      for (int m = 0; m < members; ++m) mean += latents[m * HD + at];
      mean /= static_cast<float>(members);
      float var = 0.0f;
      for (int m = 0; m < members; ++m) var += (latents[m * HD + at] - mean) * (latents[m * HD + at] - mean);
      spread += var / static_cast<float>(members);
    }
    running += spread;
    if (t == horizon - 1) final_step = spread;
  }
  return cost.disagreement_weight * final_step + cost.disagreement_running_weight * running;
}

float critic_distance(const CriticModel& critic, const float* embedded, const float* embedded_goal) {
  float asymmetric = 0.0f, squared = 0.0f;
  for (int k = 0; k < critic.embed_dim(); ++k) {
    const float d = embedded[k] - embedded_goal[k];
    if (k < critic.asymmetric_dim) {
      asymmetric = std::max(asymmetric, d);
    } else {
      squared += d * d;
    }
  }
  return asymmetric + (std::sqrt(squared + critic.symmetric_eps) - std::sqrt(critic.symmetric_eps));
}

namespace {

class ReferenceRollout final : public RolloutCost {
 public:
  explicit ReferenceRollout(const Problem& p) : p_(p), predictors_(p_.predictors()) {
    const int D = p.model.latent_dim, k = p.model.history;
    z0_.resize(static_cast<size_t>(k) * D);
    goal_.resize(D);
    prev_.resize(p.model.action_dim);
  }

  void set_start(const float* z0, const float* goal, const float* prev_action) override {
    std::copy(z0, z0 + z0_.size(), z0_.begin());
    std::copy(goal, goal + goal_.size(), goal_.begin());
    if (p_.cost.uses_critic()) goal_embedding_ = critic_embed(p_.cost.critic, goal);
    has_prev_ = prev_action != nullptr;
    if (has_prev_) std::copy(prev_action, prev_action + prev_.size(), prev_.begin());
  }

  // An ensemble's members: the mean of their latent terms, the action terms once, their disagreement.
  void evaluate(const float* actions, int n, float* cost) override {
    const int H = p_.sampler.horizon, A = p_.model.action_dim, D = p_.model.latent_dim;
    const int M = static_cast<int>(predictors_.size());
    const size_t HD = static_cast<size_t>(H) * D;
    std::vector<float> z(M * HD);
    for (int i = 0; i < n; ++i) {
      const float* a = actions + static_cast<size_t>(i) * H * A;
      float latent = 0.0f;
      for (int m = 0; m < M; ++m) {
        rollout(*predictors_[m], a, z.data() + m * HD);
        latent += latent_cost(z.data() + m * HD);
      }
      cost[i] = latent / static_cast<float>(M) + action_cost(a, H, A, p_.cost, has_prev_ ? prev_.data() : nullptr);
      if (p_.cost.uses_disagreement()) cost[i] += disagreement(z.data(), M, H, D, p_.cost);
    }
  }

  // An ensemble's: the members' mean.
  void predict(const float* actions, int n, float* latents) override {
    const int H = p_.sampler.horizon, A = p_.model.action_dim, D = p_.model.latent_dim;
    const int M = static_cast<int>(predictors_.size());
    const size_t HD = static_cast<size_t>(H) * D;
    std::vector<float> z(HD);
    for (int i = 0; i < n; ++i) {
      float* out = latents + i * HD;
      std::fill_n(out, HD, 0.0f);
      for (int m = 0; m < M; ++m) {
        rollout(*predictors_[m], actions + static_cast<size_t>(i) * H * A, z.data());
        for (size_t j = 0; j < HD; ++j) out[j] += z[j];
      }
      if (M > 1) for (size_t j = 0; j < HD; ++j) out[j] /= static_cast<float>(M);
    }
  }

  const char* name() const override { return "reference"; }

 private:
  // z (H, D): the latents z_1..z_H that predictor m predicts for one action sequence a (H, A).
  void rollout(const MlpModel& m, const float* a, float* z) const {
    const int D = m.latent_dim, A = m.action_dim, k = m.history, H = p_.sampler.horizon;
    std::vector<float> x(m.input_dim());
    std::copy(z0_.begin(), z0_.end(), x.begin());
    for (int t = 0; t < H; ++t) {
      std::copy(a + t * A, a + (t + 1) * A, x.begin() + k * D);
      std::vector<float> h = x;
      for (size_t l = 0; l < m.layers.size(); ++l) {
        h = linear_layer(m.layers[l], h, l + 1 < m.layers.size(), m.activation, m.ln_eps);
      }
      float* z_next = z + t * D;
      for (int d = 0; d < D; ++d) z_next[d] = x[(k - 1) * D + d] + h[d];
      std::copy(x.begin() + D, x.begin() + k * D, x.begin());  // drop the oldest latent
      std::copy(z_next, z_next + D, x.begin() + (k - 1) * D);
    }
  }

  float latent_cost(const float* z) const {
    const auto& c = p_.cost;
    const int D = p_.model.latent_dim, H = p_.sampler.horizon;
    float terminal = 0.0f, running = 0.0f, bound = 0.0f, critic_terminal = 0.0f, critic_running = 0.0f;
    for (int t = 0; t < H; ++t) {
      if (c.critic_running_weight > 0.0f || (c.critic_weight > 0.0f && t == H - 1)) {
        const float steps = critic_distance(c.critic, critic_embed(c.critic, z + t * D).data(), goal_embedding_.data());
        critic_running += steps;
        if (t == H - 1) critic_terminal = steps;
      }
      float dist = 0.0f;
      for (int d = 0; d < D; ++d) {
        const float v = z[t * D + d];
        dist += (v - goal_[d]) * (v - goal_[d]);
        if (!c.latent_high.empty() && v > c.latent_high[d]) bound += (v - c.latent_high[d]) * (v - c.latent_high[d]);
        if (!c.latent_low.empty() && v < c.latent_low[d]) bound += (c.latent_low[d] - v) * (c.latent_low[d] - v);
      }
      running += dist;
      if (t == H - 1) terminal = dist;
    }
    return c.goal_weight * terminal + c.goal_running_weight * running + c.latent_bound_weight * bound +
           c.critic_weight * critic_terminal + c.critic_running_weight * critic_running;
  }

  const Problem p_;
  const std::vector<const MlpModel*> predictors_;  // into p_
  std::vector<float> z0_, goal_, prev_;
  std::vector<float> goal_embedding_;  // (E) when the cost uses the critic
  bool has_prev_ = false;
};

}  // namespace

std::unique_ptr<RolloutCost> make_reference_rollout(const Problem& problem) {
  return std::make_unique<ReferenceRollout>(problem);
}

}  // namespace ami
