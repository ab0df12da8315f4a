// The readable single-threaded reference of the rollout + cost kernel: one sample at a time,
// plain loops, libm activations. The oracle the fast backends are tested against.
#pragma once

#include <memory>

#include "ami_robot/planner.h"

namespace ami {

std::unique_ptr<RolloutCost> make_reference_rollout(const Problem& problem);

// Shared by every host backend: the action terms of the cost for one (H, A) sequence.
float action_cost(const float* actions, int horizon, int action_dim, const CostParams& cost,
                  const float* prev_action);

}  // namespace ami
