// core/precision.cpp — names, parsing and device validation of the convolution precisions.
#include "core/precision.h"

#include "core/error.h"

namespace unet {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

Precision parse_precision(std::string_view text) {
  if (text == "fp32") return Precision::FP32;
  if (text == "tf32") return Precision::TF32;
  if (text == "bf16") return Precision::BF16;
  throw ValueError(detail::message("precision '", text, "' is not one of fp32, tf32, bf16"));
}

Precision default_precision(Device device) { return device.is_cuda() ? Precision::TF32 : Precision::FP32; }

Precision choose_precision(std::string_view text, Device device) {
  if (text == "auto") return default_precision(device);
  const Precision p = parse_precision(text);
  check_precision(p, device, "--precision");
  return p;
}

void check_precision(Precision p, Device device, const char* who) {
  UNET_CHECK(p == Precision::FP32 || device.is_cuda(), ValueError, who, ": precision ", precision_name(p),
             " runs on a CUDA device's tensor cores; the CPU backend computes in fp32 only (tensors are on ",
             device.str(), ")");
}

}  // namespace unet
