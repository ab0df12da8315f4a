#include "ami_robot/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "ami_robot/philox.h"

namespace ami {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

// NaN costs sort last; ties break by index so every backend picks the same elites.
float sort_key(float c) { return std::isnan(c) ? std::numeric_limits<float>::infinity() : c; }


}  // namespace

Activation activation_from_name(const std::string& name) {
  if (name == "gelu") return Activation::GELU;
  if (name == "silu") return Activation::SiLU;
  if (name == "relu") return Activation::ReLU;
  if (name == "tanh") return Activation::Tanh;
  throw std::invalid_argument("unknown activation '" + name + "' (gelu, silu, relu, tanh)");
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::GELU: return "gelu";
    case Activation::SiLU: return "silu";
    case Activation::ReLU: return "relu";
    case Activation::Tanh: return "tanh";
  }
  return "?";
}

double MlpModel::macs_per_step() const {
  double macs = 0.0;
  for (const auto& l : layers) macs += static_cast<double>(l.in) * l.out;
  return macs;
}

void MlpModel::validate() const {
  require(latent_dim >= 1 && action_dim >= 1 && history >= 1,
          "model: latent_dim, action_dim and history must be >= 1");
  require(layers.size() >= 2, "model: needs at least one hidden layer and an output layer");
  require(ln_eps > 0.0f, "model: ln_eps must be > 0");
  int expected_in = input_dim();
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    const std::string where = "model layer " + std::to_string(i) + ": ";
    require(l.in == expected_in, where + "expected input width " + std::to_string(expected_in) +
                                     ", got " + std::to_string(l.in));
    require(l.weight.size() == static_cast<size_t>(l.in) * l.out, where + "weight size is not out*in");
    require(l.bias.size() == static_cast<size_t>(l.out), where + "bias size is not out");
    const bool last = i + 1 == layers.size();
    if (last) {
      require(l.out == latent_dim, where + "output width must equal latent_dim");
    } else {
      require(l.ln_gamma.size() == static_cast<size_t>(l.out) && l.ln_beta.size() == static_cast<size_t>(l.out),
              where + "LayerNorm weight and bias must have size out");
    }
    require(all_finite(l.weight) && all_finite(l.bias) && all_finite(l.ln_gamma) && all_finite(l.ln_beta),
            where + "weights contain NaN or Inf");
    expected_in = l.out;
  }
}

void CriticModel::validate() const {
  require(latent_dim >= 1, "critic: latent_dim must be >= 1");
  require(layers.size() >= 2, "critic: needs at least one hidden layer and an output layer");
  require(ln_eps > 0.0f && symmetric_eps > 0.0f, "critic: ln_eps and symmetric_eps must be > 0");
  int expected_in = latent_dim;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    const std::string where = "critic layer " + std::to_string(i) + ": ";
    require(l.in == expected_in, where + "expected input width " + std::to_string(expected_in) +
                                     ", got " + std::to_string(l.in));
    require(l.weight.size() == static_cast<size_t>(l.in) * l.out, where + "weight size is not out*in");
    require(l.bias.size() == static_cast<size_t>(l.out), where + "bias size is not out");
    const bool last = i + 1 == layers.size();
    require(last ? l.ln_gamma.empty() : (l.ln_gamma.empty() || l.ln_gamma.size() == static_cast<size_t>(l.out)),
            where + (last ? "the output layer has no LayerNorm" : "LayerNorm weight must be empty or have size out"));
    require(l.ln_beta.size() == l.ln_gamma.size(), where + "LayerNorm weight and bias must have the same size");
    require(all_finite(l.weight) && all_finite(l.bias) && all_finite(l.ln_gamma) && all_finite(l.ln_beta),
            where + "weights contain NaN or Inf");
    expected_in = l.out;
  }
  require(asymmetric_dim >= 1 && asymmetric_dim < embed_dim(),
          "critic: asymmetric_dim must be in [1, embed_dim), got " + std::to_string(asymmetric_dim));
}

void SamplerParams::validate() const {
  require(horizon >= 1, "horizon must be >= 1, got " + std::to_string(horizon));
  require(samples >= 1, "samples must be >= 1, got " + std::to_string(samples));
  require(iterations >= 1, "iterations must be >= 1, got " + std::to_string(iterations));
  require(elites >= 1 && elites <= samples,
          "elites must be in [1, samples], got elites=" + std::to_string(elites) +
              " samples=" + std::to_string(samples));
  require(keep_elites >= 0 && keep_elites <= elites && keep_elites < samples,
          "keep_elites must be in [0, elites] and < samples");
  require(momentum >= 0.0f && momentum < 1.0f, "momentum must be in [0, 1)");
  require(min_std >= 0.0f && std::isfinite(min_std), "min_std must be >= 0");
  require(temperature > 0.0f && std::isfinite(temperature), "temperature must be > 0");
  require(control_cost_weight >= 0.0f && std::isfinite(control_cost_weight), "control_cost_weight must be >= 0");
  require(std_decay > 0.0f && std_decay <= 1.0f, "std_decay must be in (0, 1]");
}

float inverse_cost_scale(const float* costs, int n, float temperature) {
  double sum = 0.0;
  int count = 0;
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(costs[i])) continue;
    sum += costs[i];
    ++count;
  }
  if (count == 0) return 0.0f;
  const double mean = sum / count;
  double squares = 0.0;
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(costs[i])) continue;
    const double d = costs[i] - mean;
    squares += d * d;
  }
  const double spread = std::sqrt(squares / count);
  if (!(spread > 0.0)) return 0.0f;
  return static_cast<float>(std::min(1.0 / (static_cast<double>(temperature) * spread),
                                     static_cast<double>(std::numeric_limits<float>::max())));
}

void Problem::validate() const {
  model.validate();
  sampler.validate();
  const size_t A = model.action_dim, D = model.latent_dim;
  require(bounds.low.size() == A && bounds.high.size() == A, "action bounds must have action_dim entries");
  require(bounds.max_rate.empty() || bounds.max_rate.size() == A, "max_rate must be empty or have action_dim entries");
  for (size_t a = 0; a < A; ++a) {
    require(!std::isnan(bounds.low[a]) && !std::isnan(bounds.high[a]), "action bounds contain NaN");
    require(bounds.low[a] <= bounds.high[a], "action bound low > high at index " + std::to_string(a));
    require(bounds.max_rate.empty() || bounds.max_rate[a] >= 0.0f, "max_rate must be >= 0");
  }
  require(cost.latent_low.empty() || cost.latent_low.size() == D, "latent_low must be empty or have latent_dim entries");
  require(cost.latent_high.empty() || cost.latent_high.size() == D, "latent_high must be empty or have latent_dim entries");
  for (float w : {cost.goal_weight, cost.goal_running_weight, cost.action_weight, cost.smoothness_weight,
                  cost.latent_bound_weight, cost.critic_weight, cost.critic_running_weight, cost.disagreement_weight,
                  cost.disagreement_running_weight}) {
    require(std::isfinite(w) && w >= 0.0f, "cost weights must be finite and >= 0");
  }
  if (cost.uses_critic()) {
    require(!cost.critic.empty(), "critic_weight / critic_running_weight > 0 needs a critic");
    require(cost.critic.latent_dim == model.latent_dim, "critic latent_dim must equal the model's latent_dim");
  }
  if (!cost.critic.empty()) cost.critic.validate();
  require(ensemble.empty() || ensemble.size() >= 2, "an ensemble needs at least 2 predictors");
  require(!cost.uses_disagreement() || !ensemble.empty(),
          "disagreement_weight / disagreement_running_weight > 0 needs a predictor ensemble");
  for (size_t i = 0; i < ensemble.size(); ++i) {
    const MlpModel& member = ensemble[i];
    member.validate();
    bool same = member.latent_dim == model.latent_dim && member.action_dim == model.action_dim &&
                member.history == model.history && member.activation == model.activation &&
                member.ln_eps == model.ln_eps && member.layers.size() == model.layers.size();
    for (size_t l = 0; same && l < model.layers.size(); ++l) {
      same = member.layers[l].in == model.layers[l].in && member.layers[l].out == model.layers[l].out &&
             member.layers[l].ln_gamma.size() == model.layers[l].ln_gamma.size();
    }
    require(same, "ensemble predictor " + std::to_string(i) + " differs from the model's architecture");
  }
}

std::vector<const MlpModel*> Problem::predictors() const {
  if (ensemble.empty()) return {&model};
  std::vector<const MlpModel*> members;
  for (const MlpModel& member : ensemble) members.push_back(&member);
  return members;
}

void project_sequence(float* actions, int horizon, const ActionBounds& bounds, const float* prev_action) {
  const int A = static_cast<int>(bounds.low.size());
  const bool rate = !bounds.max_rate.empty();
  for (int t = 0; t < horizon; ++t) {
    float* a = actions + static_cast<size_t>(t) * A;
    const float* prev = t > 0 ? a - A : prev_action;
    for (int j = 0; j < A; ++j) {
      float lo = bounds.low[j], hi = bounds.high[j];
      if (rate && prev != nullptr) {
        const float p = std::min(std::max(prev[j], lo), hi);
        lo = std::max(lo, p - bounds.max_rate[j]);
        hi = std::min(hi, p + bounds.max_rate[j]);
      }
      a[j] = std::min(std::max(a[j], lo), hi);
    }
  }
}

SamplingPlanner::SamplingPlanner(Problem problem, std::unique_ptr<RolloutCost> rollout)
    : problem_(std::move(problem)), rollout_(std::move(rollout)) {
  problem_.validate();
  const auto& s = problem_.sampler;
  const size_t HA = static_cast<size_t>(s.horizon) * problem_.model.action_dim;
  mean_.resize(HA);
  std_.resize(HA);
  samples_.resize(HA * s.samples);
  noise_.resize(HA * s.samples);
  costs_.resize(s.samples);
  kept_.resize(HA * std::max(1, s.keep_elites));
  weights_.resize(s.samples);
  inv_var_.resize(HA);
  order_.resize(s.samples);
}

void SamplingPlanner::plan(const PlanRequest& req, PlanOutput& out) {
  const auto& s = problem_.sampler;
  const int N = s.samples, K = s.elites, H = s.horizon;
  const size_t HA = static_cast<size_t>(H) * problem_.model.action_dim;
  std::copy(req.init_mean, req.init_mean + HA, mean_.begin());
  std::copy(req.init_std, req.init_std + HA, std_.begin());
  out.mean.resize(HA);
  out.std.resize(HA);
  out.std_history.resize(HA * s.iterations);
  out.best_actions.resize(HA);
  out.best_cost = std::numeric_limits<float>::infinity();
  rollout_->set_start(req.z0, req.goal, req.prev_action);

  for (int it = 0; it < s.iterations; ++it) {
    std::copy(std_.begin(), std_.end(), out.std_history.begin() + it * HA);
    const float* eps = req.noise + static_cast<size_t>(it) * N * HA;
    if (req.noise == nullptr) {
      philox_normal_fill(s.seed, req.plan_index, static_cast<uint64_t>(it) * N * HA, N * HA, noise_.data());
      eps = noise_.data();
    }
    for (int n = 0; n < N; ++n) {
      float* x = samples_.data() + n * HA;
      const float* e = eps + n * HA;
      for (size_t j = 0; j < HA; ++j) x[j] = mean_[j] + std_[j] * e[j];
      project_sequence(x, H, problem_.bounds, req.prev_action);
    }
    if (it > 0 && s.keep_elites > 0) {
      std::copy(kept_.begin(), kept_.begin() + s.keep_elites * HA, samples_.begin() + (N - s.keep_elites) * HA);
    }
    rollout_->evaluate(samples_.data(), N, costs_.data());

    std::iota(order_.begin(), order_.end(), 0);
    std::partial_sort(order_.begin(), order_.begin() + K, order_.end(), [&](int a, int b) {
      const float ca = sort_key(costs_[a]), cb = sort_key(costs_[b]);
      return ca < cb || (ca == cb && a < b);
    });
    for (int e = 0; e < s.keep_elites; ++e) {
      std::copy_n(samples_.begin() + order_[e] * HA, HA, kept_.begin() + e * HA);
    }
    if (costs_[order_[0]] < out.best_cost) {
      out.best_cost = costs_[order_[0]];
      std::copy_n(samples_.begin() + order_[0] * HA, HA, out.best_actions.begin());
    }
    const float c_min = sort_key(costs_[order_[0]]);
    if (!std::isfinite(c_min)) continue;  // every sample diverged: keep the distribution
    if (s.method == Method::MPPI) {
      mppi_update(c_min);
    } else {
      refit_to_elites();
    }
  }
  std::copy(mean_.begin(), mean_.end(), out.mean.begin());
  std::copy(std_.begin(), std_.end(), out.std.begin());
  project_sequence(out.mean.data(), H, problem_.bounds, req.prev_action);
  rollout_->evaluate(out.mean.data(), 1, &out.cost);
}

void SamplingPlanner::refit_to_elites() {
  const auto& s = problem_.sampler;
  const int K = s.elites;
  const size_t HA = mean_.size();
  const float w = static_cast<float>(1.0 / K);  // equal weights, as every backend writes them
  for (size_t j = 0; j < HA; ++j) {
    float m = 0.0f;
    for (int e = 0; e < K; ++e) m += w * samples_[order_[e] * HA + j];
    float v = 0.0f;
    for (int e = 0; e < K; ++e) {
      const float d = samples_[order_[e] * HA + j] - m;
      v += w * d * d;
    }
    mean_[j] = s.momentum * mean_[j] + (1.0f - s.momentum) * m;
    std_[j] = std::max(s.momentum * std_[j] + (1.0f - s.momentum) * std::sqrt(v), s.min_std);
  }
}

void SamplingPlanner::mppi_update(float c_min) {
  const auto& s = problem_.sampler;
  const int N = s.samples;
  const size_t HA = mean_.size();
  const float inv_scale = inverse_cost_scale(costs_.data(), N, s.temperature);
  for (size_t j = 0; j < HA; ++j) inv_var_[j] = std_[j] > 0.0f ? 1.0f / (std_[j] * std_[j]) : 0.0f;
  // score_n = (c_n - c_min) * inv_scale + control_cost_weight * u^T Sigma^-1 eps_n, w_n = exp(-(score_n - min score)).
  float score_min = std::numeric_limits<float>::infinity();
  for (int n = 0; n < N; ++n) {
    const float c = costs_[n];
    if (!std::isfinite(c)) {
      weights_[n] = std::numeric_limits<float>::infinity();
      continue;
    }
    const float* x = samples_.data() + n * HA;
    float control = 0.0f;
    for (size_t j = 0; j < HA; ++j) control += mean_[j] * (x[j] - mean_[j]) * inv_var_[j];
    const float score = (c - c_min) * inv_scale + s.control_cost_weight * control;
    weights_[n] = score;
    score_min = std::min(score_min, score);
  }
  double total = 0.0;
  for (int n = 0; n < N; ++n) {
    const float w = std::isfinite(weights_[n]) ? std::exp(-(weights_[n] - score_min)) : 0.0f;
    weights_[n] = w;
    total += w;
  }
  for (int n = 0; n < N; ++n) weights_[n] = static_cast<float>(weights_[n] / total);
  for (size_t j = 0; j < HA; ++j) {
    float m = 0.0f;
    for (int n = 0; n < N; ++n) m += weights_[n] * samples_[n * HA + j];
    mean_[j] = s.momentum * mean_[j] + (1.0f - s.momentum) * m;
    std_[j] = std::max(std_[j] * s.std_decay, s.min_std);
  }
}

}  // namespace ami
