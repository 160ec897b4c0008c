// kernels/cpu_scratch.h — per-thread, grow-only, 64-byte aligned scratch buffers for the CPU
// kernels. Each op is called once per layer per step with the same sizes, so reusing a buffer
// avoids an allocation (and, for megabyte buffers, a page fault per 4 KB page) on every call.
// A buffer is identified by its element type and tag: buffers alive at the same time on one
// thread (an up-convolution's unshuffled output while the patch GEMM packs its weights) need
// different tags, which is why they are named here in one list.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace unet::cpu {

enum class ScratchTag {
  kIm2col,          // conv2d_cpu.cpp: column / gathered-gradient bands
  kConcatInput,     // conv2d_concat_cpu.cpp: the decoder convolution's concatenated input
  kConcatGradient,  // conv2d_concat_cpu.cpp: the data gradient of that input, before the split
  kFlippedWeights,  // conv2d_cpu.cpp: the data gradient's flipped, transposed 3×3 weights
  kDirectPadded,    // conv3x3_direct_cpu.cpp: a task's zero-padded input rows
  kUpconvUnshuffled,// upconv2d_cpu.cpp: U[Cout·4, H·W]
  kPatchA,          // patch_gemm_cpu.cpp: packed A of a call
  kPatchPadded,     // patch_gemm_cpu.cpp: zero-bordered source of a call
  kPatchPanel,      // patch_gemm_cpu.cpp: a task's gathered B panel
  kPatchGradA,      // patch_gemm_cpu.cpp: a weight-gradient task's packed output-gradient rows
  kPatchGradB,      // patch_gemm_cpu.cpp: a weight-gradient task's transposed tap panel
  kPatchPartials,   // patch_gemm_cpu.cpp: the weight gradient's slot partials
  kWinogradA,       // winograd3x3_cpu.cpp: transformed weights of a call
  kWinogradPadded,  // winograd3x3_cpu.cpp: zero-bordered input of a call (weight gradient: a unit's channels-last rows)
  kWinogradV,       // winograd3x3_cpu.cpp: a task's transformed input windows
  kWinogradM,       // winograd3x3_cpu.cpp: a task's 16 GEMM products
  kWinogradGradA,   // winograd3x3_cpu.cpp: a weight-gradient task's packed output-gradient tiles
  kWinogradGradB,   // winograd3x3_cpu.cpp: a weight-gradient task's packed input tiles
  kWinogradPartials,// winograd3x3_cpu.cpp: the weight gradient's slot partials of dU
  kWinogradGradY,   // winograd3x3_cpu.cpp: the weight gradient's channels-last output-gradient rows of a unit
};

template <typename T, ScratchTag Tag> T* thread_scratch(size_t n) {
  thread_local std::vector<T> buffer;
  const size_t slack = 64 / sizeof(T) + 1;  // 64 bytes: one AVX-512 vector, one cache line
  if (buffer.size() < n + slack) buffer.resize(n + slack);
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) & ~uintptr_t{63});
}

}  // namespace unet::cpu
