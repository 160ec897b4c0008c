// core/cuda_check.h — check macros for CUDA runtime, cuBLAS and cuDNN calls (GPU build, bench
// baselines). Each throws unet::CudaError carrying the expression text, the library's own error
// string and file:line. Include the runtime/cuBLAS/cuDNN header before using the matching macro.
#pragma once

#include "core/error.h"

#define UNET_CUDA_CHECK(expr)                                                              \
  do {                                                                                     \
    const cudaError_t unet_status_ = (expr);                                               \
    if (unet_status_ != cudaSuccess)                                                       \
      throw ::unet::CudaError(::unet::detail::message(#expr, " failed: ",                  \
                                                      cudaGetErrorString(unet_status_), " at ", \
                                                      ::unet::detail::where(__FILE__, __LINE__))); \
  } while (0)

#define UNET_CUBLAS_CHECK(expr)                                                            \
  do {                                                                                     \
    const cublasStatus_t unet_status_ = (expr);                                            \
    if (unet_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      throw ::unet::CudaError(::unet::detail::message(#expr, " failed: cuBLAS status ",    \
                                                      static_cast<int>(unet_status_), " at ", \
                                                      ::unet::detail::where(__FILE__, __LINE__))); \
  } while (0)

#define UNET_CUDNN_CHECK(expr)                                                             \
  do {                                                                                     \
    const cudnnStatus_t unet_status_ = (expr);                                             \
    if (unet_status_ != CUDNN_STATUS_SUCCESS)                                              \
      throw ::unet::CudaError(::unet::detail::message(#expr, " failed: ",                  \
                                                      cudnnGetErrorString(unet_status_), " at ", \
                                                      ::unet::detail::where(__FILE__, __LINE__))); \
  } while (0)
