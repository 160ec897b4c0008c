// kernels/tensor_core.cuh — the thin device-function layer over the warp-level matrix
// instructions, one source for the GPU and the simulator: under nvcc each function is one PTX
// instruction (inline asm), under the simulator a call into kernels/sim/tensor_core.h, which
// implements the instruction from the PTX ISA (fragment layouts per lane, cp.async that lands
// only when waited for). Kernels use nothing else to reach the tensor cores.
//
//   tf32_bits(x)                 cvt.rna.tf32.f32: x rounded to TF32, as the .b32 an mma takes
//   bf16x2_bits(lo, hi)          cvt.rn.bf16x2.f32: two values rounded to BF16, lo in bits 0-15
//   mma_tf32(d, a, b, c)         mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
//   mma_bf16(d, a, b, c)         mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
//   ldmatrix<N, Trans>(r, row)   ldmatrix.sync.aligned.m8n8.xN{.trans}.shared.b16 (N = 1, 2, 4)
//   cp_async<Bytes>(dst, src, valid)   cp.async.{ca,cg}.shared.global, 4/8/16 bytes; zero-filled
//                                       (src not read) when !valid
//   cp_async_commit()            cp.async.commit_group
//   cp_async_wait<N>()           cp.async.wait_group N: all but the newest N groups have landed
//   cp_async_wait_all()          cp.async.wait_all
// Fragment layouts: kernels/sim/tensor_core.cpp (from the PTX ISA). The matrix instructions are
// warp-wide (.sync.aligned): every lane of the warp must execute the same call.
#pragma once

#include <cstdint>

#include "core/precision.h"
#include "kernels/cuda_compat.h"

#if defined(UNET_CUDA_SIM) && !defined(__CUDACC__)
#include "core/source_location.h"
// The simulator names the call site in its reports (and matches warp collectives by it).
#define UNET_TC_WHERE , const ::unet::SourceLocation& where = ::unet::SourceLocation::current()
#define UNET_TC_WHERE_ONLY const ::unet::SourceLocation& where = ::unet::SourceLocation::current()
#define UNET_TC_SITE where.file_name(), static_cast<int>(where.line())
#define UNET_TC_SIM 1
#else
#define UNET_TC_WHERE
#define UNET_TC_WHERE_ONLY
#endif

namespace unet::cuda::tc {

__device__ __forceinline__ uint32_t tf32_bits(float x) {
#if defined(UNET_TC_SIM)
  return tf32_round_bits(x);
#else
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#endif
}

__device__ __forceinline__ uint32_t bf16x2_bits(float lo, float hi) {
#if defined(UNET_TC_SIM)
  return static_cast<uint32_t>(bf16_round_bits(lo)) | static_cast<uint32_t>(bf16_round_bits(hi)) << 16;
#else
  uint32_t r;  // PTX puts its first source in the upper half
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
#endif
}

__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                         const float (&c)[4] UNET_TC_WHERE) {
#if defined(UNET_TC_SIM)
  sim::detail::mma_m16n8k8_tf32(d, a, b, c, UNET_TC_SITE);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#endif
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                         const float (&c)[4] UNET_TC_WHERE) {
#if defined(UNET_TC_SIM)
  sim::detail::mma_m16n8k16_bf16(d, a, b, c, UNET_TC_SITE);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#endif
}

#if !defined(UNET_TC_SIM)
__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif

// Lane l gives the address of row l % 8 of matrix l / 8 (lanes beyond 8·N: ignored).
template <int N, bool Trans = false>
__device__ __forceinline__ void ldmatrix(uint32_t (&r)[N], const void* row UNET_TC_WHERE) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if defined(UNET_TC_SIM)
  sim::detail::ldmatrix(r, N, Trans, row, UNET_TC_SITE);
#else
  const uint32_t a = shared_address(row);
  if constexpr (N == 1 && !Trans) asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(a));
  if constexpr (N == 1 && Trans) asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(a));
  if constexpr (N == 2 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
  if constexpr (N == 2 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
  if constexpr (N == 4 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  if constexpr (N == 4 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
#endif
}

// Copies Bytes from global src to shared dst, both aligned to Bytes; when !valid, dst gets
// zeros and src is not read (it must still be a pointer the kernel may form).
template <int Bytes>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool valid UNET_TC_WHERE) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(UNET_TC_SIM)
  sim::detail::cp_async(dst, src, Bytes, valid ? Bytes : 0, UNET_TC_SITE);
#else
  const uint32_t d = shared_address(dst);
  const int src_bytes = valid ? Bytes : 0;
  // .cg (L2 only) exists for 16 bytes alone; the smaller copies go through L1 (.ca).
  if constexpr (Bytes == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(Bytes), "r"(src_bytes)
                 : "memory");
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(UNET_TC_SIM)
  sim::detail::cp_async_commit_group();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait(UNET_TC_WHERE_ONLY) {
  static_assert(N >= 0, "cp.async.wait_group N needs N >= 0");
#if defined(UNET_TC_SIM)
  sim::detail::cp_async_wait_group(N, UNET_TC_SITE);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ void cp_async_wait_all(UNET_TC_WHERE_ONLY) {
#if defined(UNET_TC_SIM)
  sim::detail::cp_async_commit_group();
  sim::detail::cp_async_wait_group(0, UNET_TC_SITE);
#else
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

}  // namespace unet::cuda::tc
