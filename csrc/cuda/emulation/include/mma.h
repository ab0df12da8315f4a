// Emulation of nvcuda::wmma with the documented semantics: each thread of a warp holds the whole
// logical tile (row-major in x[]), so the warp-collective calls are computed redundantly per lane.
// load/store check the documented requirements (256-bit aligned pointer, ldm a multiple of 16 bytes).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "cuda_bf16.h"

namespace nvcuda::wmma {
struct row_major;
struct col_major;
struct matrix_a;
struct matrix_b;
struct accumulator;
namespace precision {
struct tf32;
}
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K>
struct shape;
template <int M, int N, int K>
struct shape<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct shape<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct shape<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  using Shape = shape<Use, M, N, K>;
  static constexpr int rows = Shape::rows, cols = Shape::cols, num_elements = rows * cols;
  static constexpr bool col_major_layout = std::is_same<Layout, col_major>::value;
  float x[num_elements];
};

inline void check_access(const void* p, unsigned ldm, size_t element_bytes, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || (ldm * element_bytes) % 16 != 0) {
    std::fprintf(stderr, "wmma %s: pointer %p not 256-bit aligned or ldm %u not a multiple of 16 bytes\n", what, p,
                 ldm);
    std::abort();
  }
}
inline float to_float(float v) { return v; }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class F>
void fill_fragment(F& f, float v) {
  for (float& e : f.x) e = v;
}
template <class Use, int M, int N, int K, class T, class Layout, class P>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const P* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, Layout>;
  check_access(p, ldm, sizeof(P), "load_matrix_sync");
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] = to_float(F::col_major_layout ? p[static_cast<size_t>(c) * ldm + r]
                                                          : p[static_cast<size_t>(r) * ldm + c]);
}
template <class F>
void store_matrix_sync(float* p, const F& f, unsigned ldm, layout_t layout) {
  check_access(p, ldm, sizeof(float), "store_matrix_sync");
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      (layout == mem_row_major ? p[static_cast<size_t>(r) * ldm + c] : p[static_cast<size_t>(c) * ldm + r]) =
          f.x[r * F::cols + c];
}
template <class C, class A, class B>
void mma_sync(C& d, const A& a, const B& b, const C& c) {
  C out;
  for (int i = 0; i < C::rows; ++i)
    for (int j = 0; j < C::cols; ++j) {
      float acc = c.x[i * C::cols + j];
      for (int k = 0; k < A::cols; ++k) acc += a.x[i * A::cols + k] * b.x[k * B::cols + j];
      out.x[i * C::cols + j] = acc;
    }
  d = out;
}
inline float __float_to_tf32(float v) {  // keep 10 mantissa bits, round to nearest
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u = (u + 0x1000u) & ~0x1FFFu;
  std::memcpy(&v, &u, 4);
  return v;
}
}  // namespace nvcuda::wmma
