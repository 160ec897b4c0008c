// core/host_device.h — UNET_HD marks small functions usable on the host, in CUDA kernels and in
// the simulator build (where the CUDA qualifiers mean nothing).
#pragma once
#if defined(__CUDACC__)
#define UNET_HD __host__ __device__ __forceinline__
#else
#define UNET_HD inline
#endif
