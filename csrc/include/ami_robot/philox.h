// Philox4x32-10 counter-based RNG (Salmon et al. 2011) and Box-Muller normals. The Python twin
// is ami_robot.planning.rng; both give the same numbers for the same (seed, plan, index).
#pragma once

#include <cmath>
#include <cstdint>

namespace ami {

struct Philox4x32 {
  uint32_t v[4];
};

inline Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return {{c0, c1, c2, c3}};
}

// Counter of element `index` of the standard-normal stream (seed, plan_index): block index/4,
// lane index%4; lanes (0,1) and (2,3) are Box-Muller pairs computed in double.
constexpr uint32_t kNoiseStreamTag = 0x414D4952u;  // "AMIR"

inline void philox_normal4(uint64_t seed, uint64_t plan_index, uint64_t block, float out[4]) {
  const Philox4x32 r = philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                     static_cast<uint32_t>(plan_index), kNoiseStreamTag,
                                     static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  constexpr double kInv32 = 1.0 / 4294967296.0;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (int pair = 0; pair < 2; ++pair) {
    const double u = (static_cast<double>(r.v[2 * pair]) + 0.5) * kInv32;
    const double w = (static_cast<double>(r.v[2 * pair + 1]) + 0.5) * kInv32;
    const double radius = std::sqrt(-2.0 * std::log(u));
    out[2 * pair] = static_cast<float>(radius * std::cos(kTwoPi * w));
    out[2 * pair + 1] = static_cast<float>(radius * std::sin(kTwoPi * w));
  }
}

// Fills out[0..count) with elements [start, start+count) of the stream.
inline void philox_normal_fill(uint64_t seed, uint64_t plan_index, uint64_t start, uint64_t count,
                               float* out) {
  float block_values[4];
  uint64_t cached = ~uint64_t{0};
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t index = start + i;
    if (index / 4 != cached) {
      cached = index / 4;
      philox_normal4(seed, plan_index, cached, block_values);
    }
    out[i] = block_values[index % 4];
  }
}

}  // namespace ami
