// The fast CPU rollout + cost: samples split into row chunks across threads (OpenMP), each chunk
// rolled through all H steps and layers with packed-weight SIMD GEMMs and fused LayerNorm + activation,
// and the critic cost term evaluated on each step's latent tile while it is in cache.
#pragma once

#include <memory>
#include <string>

#include "ami_robot/planner.h"

namespace ami {

// threads <= 0: the fastest of 1, 2, 4, ... up to all cores, timed at construction. isa: "auto", "avx512", "avx2" or "generic".
std::unique_ptr<RolloutCost> make_cpu_rollout(const Problem& problem, int threads, const std::string& isa);

int cpu_default_threads();

}  // namespace ami
