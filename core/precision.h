// core/precision.h — the arithmetic the convolutions run in, the user's choice (per call through
// Conv2dOptions / upconv2d's argument, per model through UNet::set_precision):
//
//   fp32  FP32 operands and FP32 fused multiply-adds: the SIMT kernel on a GPU, every CPU path.
//         The exact path, and the only one the CPU backend has.
//   tf32  operands rounded to TF32 (FP32's 8-bit exponent, 10 stored mantissa bits; round to
//         nearest, ties away from zero: PTX cvt.rna.tf32.f32), products on the tensor cores
//         (mma.sync m16n8k8), sums in FP32. What PyTorch uses for convolutions by default.
//   bf16  operands rounded to BF16 (8-bit exponent, 7 mantissa bits; round to nearest even:
//         cvt.rn.bf16.f32), tensor-core products (m16n8k16), sums in FP32. BF16 keeps FP32's
//         exponent range, so gradients do not underflow where FP32 ones would not: no loss
//         scaling is needed (FP16 needs it; it is not offered).
// In every precision activations, weights and gradients are stored in FP32 and the loss,
// softmax and SGD run in FP32: only the operands of the convolutions' products are rounded,
// when the kernel stages them (docs/kernels-conv.md).
//
// Also here: the host twins of the two roundings, bit for bit what the GPU's conversion
// instructions return (the CUDA simulator runs them; tests compare them with the GPU).
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/device.h"

namespace unet {

enum class Precision : uint8_t { FP32, TF32, BF16 };

// "fp32", "tf32", "bf16".
const char* precision_name(Precision p);
// Parses "fp32", "tf32" or "bf16"; throws ValueError naming the allowed spellings.
Precision parse_precision(std::string_view text);

// Unit round-off of the operands (half an ulp at 1): 2^-24, 2^-11, 2^-8. A product of two
// rounded operands is within (1 + u)² of the exact one.
constexpr double unit_roundoff(Precision p) {
  return p == Precision::FP32 ? 0x1p-24 : p == Precision::TF32 ? 0x1p-11 : 0x1p-8;
}

// The precision a program runs in when the user does not choose: tf32 on a CUDA device
// (PyTorch's default for convolutions), fp32 on the CPU.
Precision default_precision(Device device);

// The precision a program's --precision option names: "auto" is default_precision(device),
// otherwise parse_precision(text), checked against the device (ValueError: unknown name, or
// tf32/bf16 for the CPU).
Precision choose_precision(std::string_view text, Device device);

// Throws ValueError unless `p` can run on `device`: the CPU backend computes in FP32 only, so
// tf32 and bf16 are refused there with a message that says so. `who` names the caller.
void check_precision(Precision p, Device device, const char* who);

// ---- the roundings, bit-exact host twins of the GPU's conversions -----------------------------

// cvt.rna.tf32.f32: the FP32 bit pattern of x rounded to TF32 (low 13 bits zero), to nearest
// with ties away from zero. Subnormals are rounded like normal numbers (no flush); a value that
// rounds past the largest finite TF32 becomes infinity; NaN stays NaN (returned as 0x7FFFFFFF,
// the canonical NaN); infinities stay.
constexpr uint32_t tf32_round_bits(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7F800000u) == 0x7F800000u) return (u & 0x007FFFFFu) ? 0x7FFFFFFFu : u;
  // Adding half a TF32 ulp (bit 12) to the magnitude bits and truncating rounds the magnitude
  // to nearest with ties up, i.e. away from zero; a carry moves into the exponent as it should.
  return (u + 0x1000u) & 0xFFFFE000u;
}
constexpr float tf32_round(float x) { return std::bit_cast<float>(tf32_round_bits(x)); }

// cvt.rn.bf16.f32: the BF16 bit pattern of x, to nearest with ties to even. Subnormals are
// rounded, not flushed; overflow gives infinity; NaN gives 0x7FFF (the canonical NaN).
constexpr uint16_t bf16_round_bits(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFFu;
  const uint32_t lsb = (u >> 16) & 1u;  // ties go to the even neighbour
  return static_cast<uint16_t>((u + 0x7FFFu + lsb) >> 16);
}
constexpr float bf16_to_float(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }
constexpr float bf16_round(float x) { return bf16_to_float(bf16_round_bits(x)); }

// x as the tensor cores see it in precision p (fp32: unchanged).
constexpr float round_operand(float x, Precision p) {
  return p == Precision::TF32 ? tf32_round(x) : p == Precision::BF16 ? bf16_round(x) : x;
}

}  // namespace unet
