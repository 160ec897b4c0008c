// kernels/sim/tensor_core.h — the simulator's warp-level matrix instructions, called by the thin
// device-function layer kernels/tensor_core.cuh (its GPU side is inline PTX; kernels use that
// header, never this one). Implemented in tensor_core.cpp from the PTX ISA's definitions:
//   mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32     fragments per lane as the ISA lays
//   mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32    them out; a warp collective
//   ldmatrix.sync.aligned.m8n8.x{1,2,4}{.trans}.shared.b16 a warp collective
//   cp.async.{ca,cg}.shared.global (4, 8 or 16 bytes, zero-fill), commit_group, wait_group
// cp.async is per thread: the source is read at issue, the destination is poisoned then
// (kSharedMemoryPoison) and receives the data only when a wait lets the copy's group land.
#pragma once

#include <cstdint>

namespace unet::sim::detail {

void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                      const char* file, int line);
void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                       const char* file, int line);
// count = 1, 2 or 4 matrices; out has count words.
void ldmatrix(uint32_t* out, int count, bool trans, const void* row, const char* file, int line);
// cp_size = 4, 8 or 16; the first src_size bytes come from src, the rest are zero (src_size 0:
// src is not read).
void cp_async(void* dst, const void* src, int cp_size, int src_size, const char* file, int line);
void cp_async_commit_group();
// Lets every committed group but the newest `pending` land.
void cp_async_wait_group(int pending, const char* file, int line);

}  // namespace unet::sim::detail
