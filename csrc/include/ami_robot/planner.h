// The sampling planner (CEM / iCEM / MPPI) shared by the backends, and the interface a backend
// implements: RolloutCost, the batched "roll the predictor out and score it" kernel.
//
// The bindings hold a PlannerBackend. SamplingPlanner is the host implementation: it samples,
// projects, selects elites and refits, and calls RolloutCost::evaluate once per iteration with all
// N sequences. A backend either supplies a RolloutCost to a SamplingPlanner (reference, cpu), or
// implements PlannerBackend itself (e.g. CUDA with the whole loop on the device), following the
// same order of operations as SamplingPlanner::plan so that results agree on the same noise.
#pragma once

#include <memory>
#include <vector>

#include "ami_robot/problem.h"

namespace ami {

class RolloutCost {
 public:
  virtual ~RolloutCost() = default;
  // Set the start latents (history, D), the goal (D) and the previous action (A) or nullptr.
  virtual void set_start(const float* z0, const float* goal, const float* prev_action) = 0;
  // cost[i] of action sequence i for i < n; actions (n, H, A) are already projected. n <= N.
  virtual void evaluate(const float* actions, int n, float* cost) = 0;
  // Predicted latents (n, H, D) of the sequences (for tests and visualisation).
  virtual void predict(const float* actions, int n, float* latents) = 0;
  virtual const char* name() const = 0;
  virtual int threads() const { return 1; }
};

// Clip a (H, A) sequence to [low, high] and, when max_rate is set, to a_{t-1} +- max_rate,
// starting from prev_action (clipped to the bounds) when given. Identical in every backend.
void project_sequence(float* actions, int horizon, const ActionBounds& bounds, const float* prev_action);

// 1 / (temperature * spread), spread = the standard deviation of the finite costs[0..n) (double
// sums in index order), capped at FLT_MAX; 0 when they do not spread. Multiplies c - c_min in the
// MPPI weights so that temperature is dimensionless.
float inverse_cost_scale(const float* costs, int n, float temperature);

class PlannerBackend {
 public:
  virtual ~PlannerBackend() = default;
  // One planning call: fills out.mean/std/cost/best_*. Called without the GIL.
  virtual void plan(const PlanRequest& request, PlanOutput& out) = 0;
  // The batched rollout + cost of this backend (tests compare it with the reference).
  virtual RolloutCost& rollout() = 0;
  virtual const Problem& problem() const = 0;
};

class SamplingPlanner final : public PlannerBackend {
 public:
  SamplingPlanner(Problem problem, std::unique_ptr<RolloutCost> rollout);
  // Runs iterations of sample -> project -> evaluate -> select elites -> update (CEM: refit to the
  // elites; MPPI: importance-weighted mean of all samples, scheduled std). Allocates nothing
  // after the first call (except the output vectors' first sizing).
  void plan(const PlanRequest& request, PlanOutput& out) override;
  RolloutCost& rollout() override { return *rollout_; }
  const Problem& problem() const override { return problem_; }

 private:
  void refit_to_elites();
  void mppi_update(float c_min);

  Problem problem_;
  std::unique_ptr<RolloutCost> rollout_;
  std::vector<float> mean_, std_, samples_, noise_, costs_, kept_, weights_, inv_var_;
  std::vector<int> order_;
};

}  // namespace ami
