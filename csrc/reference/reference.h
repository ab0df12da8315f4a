// The readable single-threaded reference of the rollout + cost kernel: one sample at a time,
// plain loops, libm activations. The oracle the fast backends are tested against.
#pragma once

#include <memory>
#include <vector>

#include "ami_robot/planner.h"

namespace ami {

std::unique_ptr<RolloutCost> make_reference_rollout(const Problem& problem);

// Shared by every host backend: the action terms of the cost for one (H, A) sequence.
float action_cost(const float* actions, int horizon, int action_dim, const CostParams& cost,
                  const float* prev_action);

// The critic's embedding e (E) of one latent z (D), with libm activations.
std::vector<float> critic_embed(const CriticModel& critic, const float* z);

// C(z, g) (model steps) from the embeddings of z and of the goal, both (E).
float critic_distance(const CriticModel& critic, const float* embedded, const float* embedded_goal);

}  // namespace ami
