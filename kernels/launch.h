// kernels/launch.h — how every host launcher in kernels/<op>.cu starts a kernel.
//
//   unet::kern::launch(kernel, grid, block, dynamic_smem_bytes, args...);
//   UNET_LAUNCH(kernel, grid, block, dynamic_smem_bytes, args...);   // same, names the kernel
//
// Under nvcc this is kernel<<<grid, block, smem, cudaStreamPerThread>>>(args...) — the one stream
// of the library's device work (core/cuda_runtime.h) — followed by a cudaGetLastError() check that
// throws unet::CudaError; dynamic shared memory above 48 KiB is opted into first. Under the
// simulator it runs the whole grid on the CPU before returning and throws unet::KernelError on a
// kernel bug. While a capture is in progress (cuda_rt::begin_capture) the launch is recorded, not
// run: the GPU's stream capture does that itself; the simulator records the call with a copy of
// its arguments. Both return at once on an empty grid, which CUDA itself would reject. Error
// messages name the launch site (file:line of the call, captured by LaunchGrid's default
// argument) and, through UNET_LAUNCH, the kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/source_location.h"
#include "kernels/cuda_compat.h"

#if defined(UNET_CUDA_SIM) && !defined(__CUDACC__)
#include "kernels/sim/runtime.h"
#endif

namespace unet::kern {

using ::unet::SourceLocation;  // core/source_location.h

// Number of blocks of size b that cover a items; 0 when a <= 0. Host only.
constexpr unsigned ceil_div(int64_t a, int64_t b) {
  if (b <= 0) throw ValueError(detail::message("ceil_div(", a, ", ", b, "): the divisor must be > 0"));
  if (a <= 0) return 0;
  const int64_t blocks = a / b + (a % b != 0 ? 1 : 0);
  if (blocks > int64_t{0xFFFFFFFF}) {
    throw ValueError(detail::message("ceil_div(", a, ", ", b, ") = ", blocks,
                                     " does not fit a grid dimension (at most 2^32-1)"));
  }
  return static_cast<unsigned>(blocks);
}

// The grid argument of launch(): a dim3 (or uint3, or up to three unsigned) plus the source
// location of the launch call, which the default argument captures at the caller.
struct LaunchGrid {
  dim3 dims;
  SourceLocation where;

  LaunchGrid(dim3 d, SourceLocation w = SourceLocation::current()) : dims(d), where(w) {}
  LaunchGrid(uint3 d, SourceLocation w = SourceLocation::current()) : dims(d), where(w) {}
  LaunchGrid(unsigned x, unsigned y = 1, unsigned z = 1, SourceLocation w = SourceLocation::current())
      : dims(x, y, z), where(w) {}
};

namespace detail {

template <typename... KernelParams, typename... Args>
void launch_named(const char* kernel_name, void (*kernel)(KernelParams...), const LaunchGrid& grid,
                  dim3 block, size_t dynamic_smem_bytes, Args&&... args) {
  static_assert(sizeof...(KernelParams) == sizeof...(Args),
                "launch(): the number of arguments does not match the kernel's parameters");
  if (grid.dims.x == 0 || grid.dims.y == 0 || grid.dims.z == 0) return;
#if defined(__CUDACC__)
  const auto fail = [&](cudaError_t err, const char* what) {
    throw CudaError(unet::detail::message(
        "CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") ", what,
        " kernel `", kernel_name ? kernel_name : "?", "` with grid (", grid.dims.x, ",",
        grid.dims.y, ",", grid.dims.z, ") block (", block.x, ",", block.y, ",", block.z,
        ") dynamic shared memory ", dynamic_smem_bytes, " bytes [launched at ",
        grid.where.file_name(), ":", grid.where.line(), "]"));
  };
  if (dynamic_smem_bytes > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_smem_bytes));
    if (err != cudaSuccess) fail(err, "opting into the dynamic shared memory of");
  }
  kernel<<<grid.dims, block, dynamic_smem_bytes, cudaStreamPerThread>>>(std::forward<Args>(args)...);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) fail(err, "launching");
#elif defined(UNET_CUDA_SIM)
  // Arguments are converted to the kernel's parameter types once, like a real launch does;
  // every simulated thread then gets its own copy of the parameters.
  struct Bound {
    void (*kernel)(KernelParams...);
    std::tuple<std::decay_t<KernelParams>...> params;
  };
  const auto call_of = [](const Bound* bound) {
    return sim::detail::KernelCall{[](const void* p) {
                                     const Bound& b = *static_cast<const Bound*>(p);
                                     std::apply(b.kernel, b.params);
                                   },
                                   bound};
  };
  const sim::detail::LaunchSite site{kernel_name, grid.where.file_name(), grid.where.line()};
  if (cuda_rt::capturing()) {  // recorded with its own copy of the arguments, run at each replay
    auto bound = std::make_shared<const Bound>(
        Bound{kernel, std::tuple<std::decay_t<KernelParams>...>(std::forward<Args>(args)...)});
    cuda_rt::record([bound, call_of, dims = grid.dims, block, dynamic_smem_bytes, site] {
      sim::detail::launch_grid(call_of(bound.get()), dims, block, dynamic_smem_bytes, site);
    });
    return;
  }
  const Bound bound{kernel, std::tuple<std::decay_t<KernelParams>...>(std::forward<Args>(args)...)};
  sim::detail::launch_grid(call_of(&bound), grid.dims, block, dynamic_smem_bytes, site);
#else
  static_assert(sizeof(kernel) == 0, "kernels are launched from .cu files (nvcc or the simulator)");
#endif
}

}  // namespace detail

template <typename... KernelParams, typename... Args>
void launch(void (*kernel)(KernelParams...), const LaunchGrid& grid, dim3 block,
            size_t dynamic_smem_bytes, Args&&... args) {
  detail::launch_named(nullptr, kernel, grid, block, dynamic_smem_bytes, std::forward<Args>(args)...);
}

// ---- 32-bit indices ---------------------------------------------------------------------------
// Kernels that index in 32 bits (64-bit division by a runtime divisor is a long software routine
// on the GPU) call this first: ValueError unless every tensor has fewer than 2^31 elements.
inline void check_32bit_indices(const char* op, int64_t input_elems, int64_t output_elems, int64_t weight_elems) {
  constexpr int64_t kMax = INT32_MAX;
  UNET_CHECK(input_elems < kMax && output_elems < kMax && weight_elems < kMax, ValueError, op,
             ": tensors of 2^31 or more elements exceed the CUDA kernels' 32-bit indices (input ", input_elems,
             ", output ", output_elems, ", weights ", weight_elems, " elements); split the batch");
}

// ---- grid-stride loops ------------------------------------------------------------------------
// The 1-D grid for n items at `threads` per block: at least one block and at most max_blocks;
// beyond that each thread loops (for i = global_index(); i < n; i += grid_stride()). A capped,
// shape-determined grid keeps huge launches cheap and reductions over it reproducible.
inline dim3 linear_grid(int64_t n, int threads, int64_t max_blocks = 4096) {
  const int64_t blocks = n > 0 ? static_cast<int64_t>(ceil_div(n, threads)) : 1;
  return dim3(static_cast<unsigned>(blocks < max_blocks ? blocks : max_blocks));
}

#if defined(__CUDACC__) || defined(UNET_CUDA_SIM)
__device__ __forceinline__ int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }
#endif

}  // namespace unet::kern

// Like unet::kern::launch, and error messages also name the kernel. A template kernel goes in
// parentheses: UNET_LAUNCH((tile_kernel<float, 16>), grid, block, 0, args...).
#define UNET_LAUNCH(kernel, grid, block, dynamic_smem_bytes, ...)                         \
  ::unet::kern::detail::launch_named(#kernel, kernel, grid, block, dynamic_smem_bytes     \
                                     __VA_OPT__(, ) __VA_ARGS__)
