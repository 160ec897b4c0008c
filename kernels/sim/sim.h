// kernels/sim/sim.h — what CUDA kernel code sees when a .cu file is compiled by g++ as plain C++
// against the simulator (UNET_CUDA_SIM). Included through kernels/cuda_compat.h, never directly.
//
// Owns: the CUDA qualifiers, the index built-ins (threadIdx, blockIdx, blockDim, gridDim,
// warpSize), shared memory, __syncthreads() and its variants. Warp collectives, atomics, device
// math and the warp-level matrix instructions live in warp.h, atomics.h, device_math.h and
// tensor_core.h, included at the end.
//
// Rules the simulator relies on (docs/simulator.md):
//  * One OS thread runs one block at a time, and all fibers of that block run on that OS thread.
//    So a static `__shared__` array is `static thread_local`: one copy per running block. Unlike
//    dynamic shared memory it is not poisoned; it keeps what the previous block left.
//  * Dynamic shared memory only through UNET_DYNAMIC_SHARED(type, name); `extern __shared__`
//    does not compile here.
//  * __CUDA_ARCH__ is not defined: __host__ __device__ functions take their host path.
#pragma once

#if !defined(UNET_CUDA_SIM) || defined(__CUDACC__)
#error "kernels/sim/sim.h is for the simulator build only; include kernels/cuda_compat.h"
#endif

#include <cstddef>
#include <cstdint>

// The toolkit's own types, compiled as host C++. They must come before the qualifier macros
// below: their headers define __shared__ & co. as nothing when __CUDACC__ is absent.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <driver_types.h>  // cudaStream_t, cudaError_t
#include <vector_functions.h>
#include <vector_types.h>

#include "kernels/sim/runtime.h"

// ---- qualifiers --------------------------------------------------------------------------------
// __host__, __device__, __global__, __constant__ and __forceinline__ come from the toolkit's
// host_defines.h (empty / always_inline under g++). __restrict__ is a g++ keyword.
#undef __shared__
#define __shared__ static thread_local
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

namespace unet::sim::detail {

// Per OS thread: the block being run and the simulated thread that is running right now. The
// scheduler rewrites thread_idx before every resume, so reading it is one TLS load.
struct KernelContext {
  uint3 thread_idx{0, 0, 0};
  uint3 block_idx{0, 0, 0};
  dim3 block_dim{};
  dim3 grid_dim{};
  unsigned char* dynamic_smem = nullptr;
};
extern constinit thread_local KernelContext tls_kernel;

// The barrier kinds share one implementation; `predicate` is ignored for a plain barrier.
enum class BarrierKind { Sync, Count, And, Or };
int block_barrier(BarrierKind kind, int predicate, const char* file, int line);

}  // namespace unet::sim::detail

// ---- index built-ins ---------------------------------------------------------------------------
#define threadIdx (::unet::sim::detail::tls_kernel.thread_idx)
#define blockIdx (::unet::sim::detail::tls_kernel.block_idx)
#define blockDim (::unet::sim::detail::tls_kernel.block_dim)
#define gridDim (::unet::sim::detail::tls_kernel.grid_dim)
inline constexpr int warpSize = 32;

// ---- shared memory -----------------------------------------------------------------------------
// The block's dynamic shared memory (16-byte aligned, poisoned with kSharedMemoryPoison).
#define UNET_DYNAMIC_SHARED(type, name) \
  type* const name = reinterpret_cast<type*>(::unet::sim::detail::tls_kernel.dynamic_smem)

// ---- block barriers ----------------------------------------------------------------------------
// Macros so a barrier that not every thread reaches is reported with its file:line.
#define __syncthreads()                                                                      \
  ((void)::unet::sim::detail::block_barrier(::unet::sim::detail::BarrierKind::Sync, 0,      \
                                            __FILE__, __LINE__))
#define __syncthreads_count(predicate)                                                       \
  ::unet::sim::detail::block_barrier(::unet::sim::detail::BarrierKind::Count,                \
                                     (predicate) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_and(predicate)                                                         \
  ::unet::sim::detail::block_barrier(::unet::sim::detail::BarrierKind::And,                  \
                                     (predicate) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_or(predicate)                                                          \
  ::unet::sim::detail::block_barrier(::unet::sim::detail::BarrierKind::Or,                   \
                                     (predicate) ? 1 : 0, __FILE__, __LINE__)

#include "kernels/sim/atomics.h"
#include "kernels/sim/device_math.h"
#include "kernels/sim/warp.h"
#include "kernels/sim/tensor_core.h"
