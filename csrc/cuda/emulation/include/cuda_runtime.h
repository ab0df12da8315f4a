// CPU emulation of the parts of the CUDA runtime and device language that csrc/cuda uses, so the
// planner's kernels and host code can run (FP32 path only) on a machine without a GPU. Each CUDA
// thread is a fiber on one OS thread: ucontext starts it, the compiler's setjmp builtins switch it
// (no system call per switch, unlike swapcontext, which sets the signal mask each time); blocks run
// one after another; __syncthreads and warp shuffles are barriers that yield until the group has
// arrived. Not a timing or race model: it checks indexing, synchronisation structure and numerics.
// Test-only: see emulate_planner.cpp.
#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#define AMI_CUDA_EMULATION 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // blocks run one at a time, so one static instance per kernel is per block

using std::isfinite;
using std::isnan;
using std::max;
using std::min;

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 { unsigned x, y, z; };
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct uint2 { unsigned x, y; };
struct uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

inline uint3 threadIdx{0, 0, 0};  // of the fiber running now (set by the scheduler)
inline uint3 blockIdx{0, 0, 0};
inline dim3 blockDim;
inline dim3 gridDim;

inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32);
}
inline size_t __cvta_generic_to_shared(const void* p) { return reinterpret_cast<size_t>(p); }
[[noreturn]] inline void __trap() { std::abort(); }

namespace ami_emu {

// CUDA threads are fibers run round-robin on the calling OS thread: a barrier yields
// until every live thread of its group has arrived (threads that returned drop out).
struct Barrier {
  unsigned expected = 0, arrived = 0, generation = 0;
};
struct BlockContext {
  Barrier block;
  std::vector<Barrier> warps;
  std::vector<float> shuffle;  // one slot per thread
  unsigned char* dynamic_smem = nullptr;
};
struct Fiber {
  ucontext_t context;  // its first entry
  void* resume[5];     // where it yielded (__builtin_setjmp buffer)
  unsigned tid = 0;
  bool started = false, done = false;
};
inline BlockContext* context = nullptr;
inline void* scheduler_resume[5];
inline std::vector<Fiber>* fibers = nullptr;
inline unsigned current = 0;
inline const std::function<void()>* fiber_kernel = nullptr;
// Between barriers, threads run in index order, or in reverse with AMI_EMU_REVERSE set: running
// both catches a thread reading shared data that a later (or earlier) thread writes unsynchronised.
inline const bool reverse_schedule = std::getenv("AMI_EMU_REVERSE") != nullptr;

inline unsigned linear_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
[[gnu::noinline]] inline void to_scheduler() { __builtin_longjmp(scheduler_resume, 1); }
[[gnu::noinline]] inline void yield() {
  if (__builtin_setjmp((*fibers)[current].resume) == 0) to_scheduler();
}
inline void arrive_and_wait(Barrier& b) {
  if (++b.arrived == b.expected) {
    b.arrived = 0;
    ++b.generation;
    return;
  }
  const unsigned generation = b.generation;
  while (generation == b.generation) yield();
}
inline void drop(Barrier& b) {
  --b.expected;
  if (b.arrived > 0 && b.arrived == b.expected) {
    b.arrived = 0;
    ++b.generation;
  }
}

}  // namespace ami_emu

inline void __syncthreads() { ami_emu::arrive_and_wait(ami_emu::context->block); }
inline float __shfl_xor_sync(unsigned, float v, int offset) {
  const unsigned tid = ami_emu::linear_tid(), warp = tid / 32, lane = tid % 32;
  auto& barrier = ami_emu::context->warps[warp];
  ami_emu::context->shuffle[tid] = v;
  ami_emu::arrive_and_wait(barrier);
  const float r = ami_emu::context->shuffle[warp * 32 + (lane ^ static_cast<unsigned>(offset))];
  ami_emu::arrive_and_wait(barrier);
  return r;
}

#define AMI_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(ami_emu::context->dynamic_smem)

// ---- runtime API ----
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorNoDevice = 100 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaMemoryType { cudaMemoryTypeUnregistered = 0, cudaMemoryTypeHost = 1, cudaMemoryTypeDevice = 2,
                      cudaMemoryTypeManaged = 3 };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDisableTiming = 2;

struct cudaDeviceProp {
  int major = 9, minor = 0;
  size_t sharedMemPerBlockOptin = 232448;
};
struct cudaPointerAttributes {
  cudaMemoryType type = cudaMemoryTypeUnregistered;
  int device = 0;
};

namespace ami_emu {
struct Stream {
  bool capturing = false;
  std::vector<std::function<void()>> captured;
};
struct Graph {
  std::vector<std::function<void()>> nodes;
};
inline std::mutex alloc_mutex;
inline std::map<uintptr_t, size_t>& allocations() {
  static std::map<uintptr_t, size_t> a;
  return a;
}
inline Stream& default_stream() {
  static Stream s;
  return s;
}

// Runs `kernel` for every thread of every block, block after block.
inline void set_thread(unsigned t, dim3 block) {
  threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
}
inline void fiber_main() {
  (*fiber_kernel)();
  Fiber& self = (*fibers)[current];
  drop(context->block);
  drop(context->warps[self.tid / 32]);
  self.done = true;
  to_scheduler();
}
[[gnu::noinline]] inline void to_fiber(Fiber& fiber) {
  if (fiber.started) __builtin_longjmp(fiber.resume, 1);
  fiber.started = true;
  setcontext(&fiber.context);
}
// Runs `fiber` until it yields or returns.
[[gnu::noinline]] inline void run_fiber(Fiber& fiber) {
  if (__builtin_setjmp(scheduler_resume) == 0) to_fiber(fiber);
}
inline void run_grid(dim3 grid, dim3 block, size_t smem, const std::function<void()>& kernel) {
  constexpr size_t kStack = 64 * 1024;
  static std::vector<std::vector<char>> stacks;
  const unsigned threads = block.x * block.y * block.z;
  while (stacks.size() < threads) stacks.emplace_back(kStack);
  std::vector<unsigned char> storage(smem + 256);
  std::vector<Fiber> pool(threads);
  blockDim = block;
  gridDim = grid;
  fiber_kernel = &kernel;
  fibers = &pool;
  for (unsigned b = 0; b < grid.x * grid.y * grid.z; ++b) {
    BlockContext ctx;
    ctx.block.expected = threads;
    for (unsigned w = 0; w < (threads + 31) / 32; ++w) ctx.warps.push_back(Barrier{std::min(32u, threads - 32 * w)});
    ctx.shuffle.assign(threads, 0.0f);
    std::fill(storage.begin(), storage.end(), 0xCD);  // poisoned: reads before writes show up as garbage
    ctx.dynamic_smem = storage.data() + (128 - reinterpret_cast<uintptr_t>(storage.data()) % 128) % 128;
    context = &ctx;
    blockIdx = {b % grid.x, (b / grid.x) % grid.y, b / (grid.x * grid.y)};
    for (unsigned t = 0; t < threads; ++t) {
      Fiber& f = pool[t];
      f.tid = t;
      f.started = f.done = false;
      getcontext(&f.context);
      f.context.uc_stack.ss_sp = stacks[t].data();
      f.context.uc_stack.ss_size = kStack;
      f.context.uc_link = nullptr;
      makecontext(&f.context, fiber_main, 0);
    }
    for (unsigned live = threads; live > 0;) {
      live = 0;
      for (unsigned i = 0; i < threads; ++i) {
        const unsigned t = reverse_schedule ? threads - 1 - i : i;
        if (pool[t].done) continue;
        current = t;
        set_thread(t, block);
        run_fiber(pool[t]);
        live += pool[t].done ? 0 : 1;
      }
    }
  }
}
}  // namespace ami_emu

using cudaStream_t = ami_emu::Stream*;
using cudaEvent_t = int*;
using cudaGraph_t = ami_emu::Graph*;
using cudaGraphExec_t = ami_emu::Graph*;

inline thread_local cudaError_t ami_emu_last_error = cudaSuccess;

inline void ami_emu_launch(cudaStream_t stream, dim3 grid, dim3 block, size_t smem, std::function<void()> body) {
  ami_emu::Stream& s = stream != nullptr ? *stream : ami_emu::default_stream();
  auto node = [grid, block, smem, body] { ami_emu::run_grid(grid, block, smem, body); };
  if (s.capturing) {
    s.captured.push_back(node);
  } else {
    node();
  }
}
#define AMI_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ami_emu_launch(stream, dim3(grid), dim3(block), static_cast<size_t>(smem), std::bind(kernel, __VA_ARGS__))

inline const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
inline const char* cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
inline cudaError_t cudaGetLastError() { return std::exchange(ami_emu_last_error, cudaSuccess); }
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  *p = cudaDeviceProp{};
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
template <typename F>
cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) {
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  const size_t rounded = (bytes + 255) / 256 * 256;
  *p = std::aligned_alloc(256, rounded);
  std::memset(*p, 0xCD, rounded);  // like fresh device memory: garbage until written
  std::lock_guard<std::mutex> lock(ami_emu::alloc_mutex);
  ami_emu::allocations()[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  std::lock_guard<std::mutex> lock(ami_emu::alloc_mutex);
  ami_emu::allocations().erase(reinterpret_cast<uintptr_t>(p));
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  return cudaSuccess;
}
inline cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int v, size_t n) {
  std::memset(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t stream) {
  if (stream != nullptr && stream->capturing) return cudaErrorInvalidValue;  // the planner never captures copies
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* p) {
  std::lock_guard<std::mutex> lock(ami_emu::alloc_mutex);
  const auto addr = reinterpret_cast<uintptr_t>(p);
  auto& allocs = ami_emu::allocations();
  auto it = allocs.upper_bound(addr);
  a->type = cudaMemoryTypeUnregistered;
  if (it != allocs.begin()) {
    --it;
    if (addr < it->first + it->second) a->type = cudaMemoryTypeDevice;
  }
  a->device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new ami_emu::Stream();
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new int(0);
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  s->capturing = true;
  s->captured.clear();
  return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  s->capturing = false;
  *g = new ami_emu::Graph{std::move(s->captured)};
  s->captured.clear();
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) {
  *e = new ami_emu::Graph{g->nodes};
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
  for (auto& node : e->nodes) node();
  return cudaSuccess;
}
