// Device twin of ami/philox.h: the same Philox4x32-10 counter layout and the same double-precision
// Box-Muller formula, so element `index` of the stream (seed, plan_index) equals the host's.
// (CUDA's double log/sin/cos are within 1-2 double ulp of glibc's; after rounding to float the
// two streams agree except, rarely, by one float ulp.)
#pragma once

#include <cstdint>

namespace ami::cuda {

constexpr uint32_t kDeviceNoiseStreamTag = 0x414D4952u;  // "AMIR", as kNoiseStreamTag

__device__ __forceinline__ uint4 philox4x32_10_device(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                                     uint32_t k0, uint32_t k1) {
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return make_uint4(c0, c1, c2, c3);
}

// Element `index` of the standard-normal stream (seed, plan_index).
__device__ __forceinline__ float philox_normal_at(uint64_t seed, uint64_t plan_index, uint64_t index) {
  const uint64_t block = index >> 2;
  const uint4 r = philox4x32_10_device(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                       static_cast<uint32_t>(plan_index), kDeviceNoiseStreamTag,
                                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const int lane = static_cast<int>(index & 3u);
  const uint32_t first = lane < 2 ? r.x : r.z;
  const uint32_t second = lane < 2 ? r.y : r.w;
  constexpr double kInv32 = 1.0 / 4294967296.0;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double u = (static_cast<double>(first) + 0.5) * kInv32;
  const double w = (static_cast<double>(second) + 0.5) * kInv32;
  const double radius = sqrt(-2.0 * log(u));
  return static_cast<float>((lane & 1) ? radius * sin(kTwoPi * w) : radius * cos(kTwoPi * w));
}

}  // namespace ami::cuda
