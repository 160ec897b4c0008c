// kernels/cuda_compat.h — the first include of every kernels/<op>.cu. Maps CUDA's language
// (qualifiers, built-ins, intrinsics, vector types) onto the right implementation:
//   nvcc (__CUDACC__)        the real thing: <cuda_runtime.h>
//   g++ with UNET_CUDA_SIM   the CUDA simulator (kernels/sim/sim.h): kernels run on CPU fibers
//   g++ with UNET_CUDA_GPU   host C++ of the GPU build: the runtime API and types, no kernels
//
// The one construct spelled differently from plain CUDA is dynamic shared memory:
//   UNET_DYNAMIC_SHARED(float, tile);   // then use tile[i]
// because `extern __shared__` arrays cannot be simulated, and because nvcc rejects two kernels in
// one file declaring `extern __shared__` arrays of different types (the macro declares bytes).
#pragma once

#if defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define UNET_DYNAMIC_SHARED(type, name)                                   \
  extern __shared__ __align__(16) unsigned char unet_dynamic_shared_[];   \
  type* const name = reinterpret_cast<type*>(unet_dynamic_shared_)

#elif defined(UNET_CUDA_SIM)

#include "kernels/sim/sim.h"

#elif defined(UNET_CUDA_GPU)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#else
#error "kernels/cuda_compat.h: compile with nvcc, or define UNET_CUDA_SIM or UNET_CUDA_GPU (CMake does)"
#endif
