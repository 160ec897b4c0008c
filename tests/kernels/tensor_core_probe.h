// tests/kernels/tensor_core_probe.h — test-only kernels that drive each instruction of
// kernels/tensor_core.cuh once, so tests/test_tensor_core.cpp can check it on the simulator and,
// in the GPU build, on the hardware. Every pointer is a device pointer (Tensor::data of a CUDA
// tensor); each launcher runs one warp (or one block) and synchronises.
#pragma once

#include <cstdint>

namespace unet::test::probe {

// D = A·B + C through one mma.sync, each lane loading its fragments from and storing them to
// row-major matrices by the PTX ISA's layout as this probe states it (independently of the
// simulator's own statement). TF32: A 16×8, B 8×8 (k × n), C and D 16×8; the operands are
// rounded with tf32_bits (with round = false: passed as raw FP32 bits, which the simulator
// refuses). BF16: A 16×16, B 16×8, rounded with bf16x2_bits.
void mma_tf32(const float* a, const float* b, const float* c, float* d, bool round = true);
void mma_bf16(const float* a, const float* b, const float* c, float* d);

// ldmatrix.xN{.trans} over `rows` (32 rows of 8 uint16 values, row r at rows + 8r, copied into
// shared memory with a 48-byte row pitch); lane l gives the address of row perm[l] (perm: 32
// ints). out[lane·N + m] = the lane's word of matrix m. N = 1, 2 or 4.
void ldmatrix(const uint16_t* rows, const int* perm, int n, bool trans, uint32_t* out);

// One block of 32 threads; thread t issues two cp.async copies of `bytes` (4, 8 or 16) each:
// src chunk t into shared chunk t (commit: group 1), then src chunk 32 + t into shared chunk
// 32 + t (commit: group 2); a copy of a thread with t % 5 == 4 is zero-filled (src not read).
// Then it waits as told, __syncthreads(), and the block copies the 64 shared chunks to dst:
//   All           cp.async.wait_all: every copy has landed
//   None          no wait (a bug: the simulator shows the poison; a GPU may show anything)
//   AllButNewest  cp.async.wait_group 1: group 1 has landed, group 2 need not have
enum class CopyWait { All, None, AllButNewest };
void cp_async_copy(const uint32_t* src, int bytes, CopyWait wait, uint32_t* dst);

// tf32[i] = tf32_bits(x[i]); bf16[i] = bf16x2_bits(x[i], -x[i]) (x[i] in the low half).
void convert(const float* x, int n, uint32_t* tf32, uint32_t* bf16);

}  // namespace unet::test::probe
