// core/philox.h — Philox 4x32-10, the counter-based RNG (Salmon et al., SC'11; same algorithm as
// cuRAND's and PyTorch's philox). Random numbers are a pure function of (seed, counter), so the
// CPU backend, CUDA kernels and the simulator produce bit-identical integers for the same seed
// and offset, with no generator state to carry between threads.
//
// Conventions: a "stream position" `index` selects the 32-bit word index % 4 of the 128-bit block
// at counter = (index / 4, subsequence). uniform01() maps 24 random bits exactly onto a float in
// [0, 1) — identical on every backend. normal() uses Box–Muller (logf/cosf): CPU and GPU results
// may differ in the last ulps because the math libraries round differently; tests compare them
// with a tolerance of a few ulps, never exactly.
#pragma once

#include <cstdint>
#include <cmath>

#include "core/host_device.h"

namespace unet {

struct Philox4 {
  uint32_t v[4];
};

UNET_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// One 128-bit block: 10 rounds over counter (c0..c3) with key (k0, k1).
UNET_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                              uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, c0, hi0, lo0);
    philox_mulhilo(kM1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The 128-bit block number `block` of sub-stream `subsequence` for a 64-bit seed.
UNET_HD Philox4 philox_block(uint64_t seed, uint64_t block, uint64_t subsequence = 0) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                       static_cast<uint32_t>(subsequence), static_cast<uint32_t>(subsequence >> 32),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// The 32-bit word at stream position `index`.
UNET_HD uint32_t philox_uint32(uint64_t seed, uint64_t index, uint64_t subsequence = 0) {
  const Philox4 r = philox_block(seed, index >> 2, subsequence);
  return r.v[index & 3u];
}

// Exact map of the top 24 bits onto [0, 1): identical on every backend.
UNET_HD float philox_to_uniform01(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

UNET_HD float philox_uniform01(uint64_t seed, uint64_t index, uint64_t subsequence = 0) {
  return philox_to_uniform01(philox_uint32(seed, index, subsequence));
}

// Standard normal at position `index` (Box–Muller on words 0,1 of block `index`; uses the
// cosine branch only, so each index is independent of its neighbours).
UNET_HD float philox_normal(uint64_t seed, uint64_t index, uint64_t subsequence = 0) {
  const Philox4 r = philox_block(seed, index, subsequence);
  // u1 in (0, 1]: avoid log(0).
  const float u1 = (static_cast<float>(r.v[0] >> 8) + 1.0f) * (1.0f / 16777216.0f);
  const float u2 = philox_to_uniform01(r.v[1]);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

}  // namespace unet
