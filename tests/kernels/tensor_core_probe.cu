// tests/kernels/tensor_core_probe.cu — the probe kernels of tensor_core_probe.h. The fragment
// layouts here are written from the PTX ISA on their own, not taken from the simulator, so the
// layout test compares two independent statements (and, on a GPU, this one with the hardware).
//
// With lane = 4·group + t:
//   m16n8k8 tf32   a_i: (row group + 8·(i % 2), col t + 4·(i / 2));  b_i: (k t + 4·i, n group)
//   m16n8k16 bf16  register r of A holds (row, col) = (group + 8·(r % 2), 2t + 8·(r / 2)) and
//                  the next column in its upper half; register r of B: (k 2t + 8r, n group),
//                  (k 2t + 8r + 1, n group) in its upper half
//   C, D           c_i: (row group + 8·(i / 2), col 2t + i % 2)
#include "tests/kernels/tensor_core_probe.h"

#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/tensor_core.cuh"

#include "core/cuda_runtime.h"

namespace unet::test::probe {
namespace {

__device__ __forceinline__ int lane_group() { return static_cast<int>(threadIdx.x) / 4; }
__device__ __forceinline__ int lane_t() { return static_cast<int>(threadIdx.x) % 4; }

__device__ void load_c(const float* c, float (&frag)[4]) {
  for (int i = 0; i < 4; ++i) frag[i] = c[(lane_group() + 8 * (i / 2)) * 8 + 2 * lane_t() + i % 2];
}
__device__ void store_d(const float (&frag)[4], float* d) {
  for (int i = 0; i < 4; ++i) d[(lane_group() + 8 * (i / 2)) * 8 + 2 * lane_t() + i % 2] = frag[i];
}

__device__ uint32_t as_tf32(float x, bool round) { return round ? cuda::tc::tf32_bits(x) : __float_as_uint(x); }

__global__ void mma_tf32_kernel(const float* a, const float* b, const float* c, float* d, bool round) {
  const int g = lane_group(), t = lane_t();
  uint32_t fa[4], fb[2];
  for (int i = 0; i < 4; ++i) fa[i] = as_tf32(a[(g + 8 * (i % 2)) * 8 + t + 4 * (i / 2)], round);
  for (int i = 0; i < 2; ++i) fb[i] = as_tf32(b[(t + 4 * i) * 8 + g], round);
  float fc[4], fd[4];
  load_c(c, fc);
  cuda::tc::mma_tf32(fd, fa, fb, fc);
  store_d(fd, d);
}

__global__ void mma_bf16_kernel(const float* a, const float* b, const float* c, float* d) {
  const int g = lane_group(), t = lane_t();
  uint32_t fa[4], fb[2];
  for (int r = 0; r < 4; ++r) {
    const float* p = a + (g + 8 * (r % 2)) * 16 + 2 * t + 8 * (r / 2);
    fa[r] = cuda::tc::bf16x2_bits(p[0], p[1]);
  }
  for (int r = 0; r < 2; ++r) fb[r] = cuda::tc::bf16x2_bits(b[(2 * t + 8 * r) * 8 + g], b[(2 * t + 8 * r + 1) * 8 + g]);
  float fc[4], fd[4];
  load_c(c, fc);
  cuda::tc::mma_bf16(fd, fa, fb, fc);
  store_d(fd, d);
}

constexpr int kRowPitchHalves = 24;  // 48 bytes: rows 16-byte aligned, not packed

template <int N, bool Trans>
__global__ void ldmatrix_kernel(const uint16_t* rows, const int* perm, uint32_t* out) {
  __shared__ __align__(16) uint16_t tile[32 * kRowPitchHalves];
  const int lane = static_cast<int>(threadIdx.x);
  for (int e = 0; e < 8; ++e) tile[lane * kRowPitchHalves + e] = rows[lane * 8 + e];
  __syncthreads();
  uint32_t r[N];
  cuda::tc::ldmatrix<N, Trans>(r, &tile[perm[lane] * kRowPitchHalves]);
  for (int m = 0; m < N; ++m) out[lane * N + m] = r[m];
}

template <int Bytes>
__global__ void cp_async_kernel(const uint32_t* src, CopyWait wait, uint32_t* dst) {
  constexpr int kWords = Bytes / 4;
  __shared__ __align__(16) uint32_t chunk[64 * 4];
  const int t = static_cast<int>(threadIdx.x);
  const bool valid = t % 5 != 4;
  cuda::tc::cp_async<Bytes>(&chunk[t * kWords], src + t * kWords, valid);
  cuda::tc::cp_async_commit();
  cuda::tc::cp_async<Bytes>(&chunk[(32 + t) * kWords], src + (32 + t) * kWords, valid);
  cuda::tc::cp_async_commit();
  if (wait == CopyWait::All) cuda::tc::cp_async_wait_all();
  if (wait == CopyWait::AllButNewest) cuda::tc::cp_async_wait<1>();
  __syncthreads();
  for (int w = t; w < 64 * kWords; w += 32) dst[w] = chunk[w];
  // Leave nothing in flight, once every thread has read: a wait lands the thread's copies, and
  // the others read chunks this thread copied.
  __syncthreads();
  cuda::tc::cp_async_wait_all();
}

__global__ void convert_kernel(const float* x, int n, uint32_t* tf32, uint32_t* bf16) {
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) {
    tf32[i] = cuda::tc::tf32_bits(x[i]);
    bf16[i] = cuda::tc::bf16x2_bits(x[i], -x[i]);
  }
}

// Launches are asynchronous on a GPU: wait, so a fault surfaces here and results are readable.
void finish() { cuda_rt::synchronize(); }

}  // namespace

void mma_tf32(const float* a, const float* b, const float* c, float* d, bool round) {
  UNET_LAUNCH(mma_tf32_kernel, 1, 32, 0, a, b, c, d, round);
  finish();
}

void mma_bf16(const float* a, const float* b, const float* c, float* d) {
  UNET_LAUNCH(mma_bf16_kernel, 1, 32, 0, a, b, c, d);
  finish();
}

void ldmatrix(const uint16_t* rows, const int* perm, int n, bool trans, uint32_t* out) {
  if (n == 1) trans ? UNET_LAUNCH((ldmatrix_kernel<1, true>), 1, 32, 0, rows, perm, out)
                    : UNET_LAUNCH((ldmatrix_kernel<1, false>), 1, 32, 0, rows, perm, out);
  else if (n == 2) trans ? UNET_LAUNCH((ldmatrix_kernel<2, true>), 1, 32, 0, rows, perm, out)
                         : UNET_LAUNCH((ldmatrix_kernel<2, false>), 1, 32, 0, rows, perm, out);
  else trans ? UNET_LAUNCH((ldmatrix_kernel<4, true>), 1, 32, 0, rows, perm, out)
             : UNET_LAUNCH((ldmatrix_kernel<4, false>), 1, 32, 0, rows, perm, out);
  finish();
}

void cp_async_copy(const uint32_t* src, int bytes, CopyWait wait, uint32_t* dst) {
  if (bytes == 4) UNET_LAUNCH(cp_async_kernel<4>, 1, 32, 0, src, wait, dst);
  else if (bytes == 8) UNET_LAUNCH(cp_async_kernel<8>, 1, 32, 0, src, wait, dst);
  else UNET_LAUNCH(cp_async_kernel<16>, 1, 32, 0, src, wait, dst);
  finish();
}

void convert(const float* x, int n, uint32_t* tf32, uint32_t* bf16) {
  UNET_LAUNCH(convert_kernel, 1, 256, 0, x, n, tf32, bf16);
  finish();
}

}  // namespace unet::test::probe
