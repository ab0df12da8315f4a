// Backend-neutral description of a planning problem: the MLP predictor, the cost, the action
// limits and the sampler settings. Every backend (reference, cpu, cuda) consumes these structs.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ami {

enum class Activation : int { GELU = 0, SiLU = 1, ReLU = 2, Tanh = 3 };
// CEM: refit mean and std to the top-`elites` samples, equally weighted (iCEM with keep_elites and
// colored noise). MPPI: mean <- importance-weighted mean of all samples, std fixed at init_std
// (times std_decay per iteration), never refit.
enum class Method : int { CEM = 0, MPPI = 1 };

Activation activation_from_name(const std::string& name);
const char* activation_name(Activation act);

// y = x W^T + b with W row-major (out, in) as in torch.nn.Linear; hidden layers are followed by
// LayerNorm(gamma, beta) and the activation, the last layer by nothing.
struct LinearLayer {
  int in = 0;
  int out = 0;
  std::vector<float> weight;    // (out, in)
  std::vector<float> bias;      // (out)
  std::vector<float> ln_gamma;  // (out) or empty for the output layer
  std::vector<float> ln_beta;   // (out) or empty for the output layer
};

// z_{t+1} = z_t + f([z_{t-k+1}, ..., z_t, a_t]); f = layers[0..n-2] with LayerNorm+act, layers[n-1].
struct MlpModel {
  int latent_dim = 0;
  int action_dim = 0;
  int history = 1;
  Activation activation = Activation::GELU;
  float ln_eps = 1e-5f;
  std::vector<LinearLayer> layers;

  int input_dim() const { return history * latent_dim + action_dim; }
  int depth() const { return static_cast<int>(layers.size()) - 1; }
  // Multiply-adds of one predictor step for one sample (2x this = FLOPs).
  double macs_per_step() const;
  void validate() const;  // throws std::invalid_argument naming the problem
};

// The cost's trained critic (ami_robot/world_model/critic.py): an embedding MLP e(z), (D) -> (E),
// whose hidden layers are Linear -> LayerNorm (when ln_gamma is set) -> activation and whose last
// layer is a Linear alone, and the MRN quasimetric on embeddings (units: model steps)
//   C(z, g) = max_{k < asymmetric_dim} relu(e_z,k - e_g,k)
//           + sqrt(|e_z,s - e_g,s|^2 + symmetric_eps) - sqrt(symmetric_eps)   (s: the other components)
struct CriticModel {
  int latent_dim = 0;
  int asymmetric_dim = 0;
  Activation activation = Activation::GELU;
  float ln_eps = 1e-5f;
  float symmetric_eps = 1e-6f;
  std::vector<LinearLayer> layers;

  bool empty() const { return layers.empty(); }
  int embed_dim() const { return layers.empty() ? 0 : layers.back().out; }
  void validate() const;  // throws std::invalid_argument naming the problem
};

// Cost of one action sequence (units: squared latent distance; weights are dimensionless):
//   goal_weight          * |z_H - g|^2
// + goal_running_weight  * sum_{t=1..H} |z_t - g|^2
// + action_weight        * sum_t |a_t|^2
// + smoothness_weight    * sum_t |a_t - a_{t-1}|^2   (a_{-1} = previous action when given)
// + latent_bound_weight  * sum_{t=1..H} sum_d relu(z_td - high_d)^2 + relu(low_d - z_td)^2
// + critic_weight        * C(z_H, g)                   (needs `critic`; C in model steps)
// + critic_running_weight * sum_{t=1..H} C(z_t, g)
// With a predictor ensemble (Problem::ensemble, M members), the latent terms are the members' mean,
// the action terms count once, and the members' spread adds (population variance over the members)
// + disagreement_weight         * sum_d var_m z_Hd
// + disagreement_running_weight * sum_{t=1..H} sum_d var_m z_td
struct CostParams {
  float goal_weight = 1.0f;
  float goal_running_weight = 0.0f;
  float action_weight = 0.0f;
  float smoothness_weight = 0.0f;
  float latent_bound_weight = 0.0f;
  std::vector<float> latent_low;   // (D) or empty = unbounded
  std::vector<float> latent_high;  // (D) or empty = unbounded
  float critic_weight = 0.0f;
  float critic_running_weight = 0.0f;
  CriticModel critic;  // empty unless a critic weight is > 0
  float disagreement_weight = 0.0f;
  float disagreement_running_weight = 0.0f;

  bool uses_critic() const { return critic_weight > 0.0f || critic_running_weight > 0.0f; }
  bool uses_disagreement() const { return disagreement_weight > 0.0f || disagreement_running_weight > 0.0f; }
};

// Hard action limits, enforced by projecting every sequence (see project_sequence).
struct ActionBounds {
  std::vector<float> low;       // (A)
  std::vector<float> high;      // (A)
  std::vector<float> max_rate;  // (A) or empty = no rate limit; |a_t - a_{t-1}| <= max_rate
};

struct SamplerParams {
  Method method = Method::CEM;
  int horizon = 5;
  int samples = 300;
  int iterations = 30;
  int elites = 30;
  int keep_elites = 0;        // iCEM: elites carried into the next iteration
  float momentum = 0.0f;      // new = momentum * old + (1 - momentum) * refit
  float min_std = 0.05f;
  // MPPI weights: w_n ~ exp(-(c_n - c_min) / (temperature * spread) - control_cost_weight * u^T Sigma^-1 eps_n),
  // spread = std of the iteration's finite costs (temperature is dimensionless), u = mean,
  // eps_n = projected sample n - u, Sigma = diag(std^2).
  float temperature = 0.05f;
  float control_cost_weight = 0.0f;  // MPPI only, dimensionless (1: Williams et al.'s gamma = lambda)
  float std_decay = 1.0f;            // MPPI only: std <- max(std * std_decay, min_std) each iteration
  uint64_t seed = 0;
  void validate() const;
};

struct Problem {
  MlpModel model;
  CostParams cost;
  ActionBounds bounds;
  SamplerParams sampler;
  // A predictor ensemble: M >= 2 predictors of model's architecture, each rolled out on its own
  // predictions in model's place (model then gives only the shapes); or empty.
  std::vector<MlpModel> ensemble;
  // The predictors a rollout runs: the ensemble's members, or model alone.
  std::vector<const MlpModel*> predictors() const;
  void validate() const;
};

// One call of plan(). Pointers are host memory, row-major float32.
struct PlanRequest {
  const float* z0 = nullptr;           // (history, D)
  const float* goal = nullptr;         // (D)
  const float* prev_action = nullptr;  // (A) or nullptr
  const float* init_mean = nullptr;    // (H, A)
  const float* init_std = nullptr;     // (H, A)
  const float* noise = nullptr;        // (iterations, N, H, A) standard normal, or nullptr = Philox
  uint64_t plan_index = 0;             // Philox stream of this call
};

struct PlanOutput {
  std::vector<float> mean;          // (H, A) projected: the plan
  std::vector<float> std;           // (H, A) the std after the last iteration
  std::vector<float> std_history;   // (iterations, H, A) the std each iteration sampled with
  float cost = 0.0f;                // cost of `mean`
  std::vector<float> best_actions;  // (H, A) best sample seen
  float best_cost = 0.0f;
};

}  // namespace ami
