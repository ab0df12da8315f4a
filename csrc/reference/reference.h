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

// An ensemble's disagreement cost for one sequence: the weighted sums over d of the population
// variance over the members of latents (members, horizon, latent_dim), at the final step and at every step.
float disagreement(const float* latents, int members, int horizon, int latent_dim, const CostParams& cost);

// C(z, g) (model steps) from the embeddings of z and of the goal, both (E).
float critic_distance(const CriticModel& critic, const float* embedded, const float* embedded_goal);

}  // namespace ami
