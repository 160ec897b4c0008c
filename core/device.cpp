// core/device.cpp — Device construction, availability and parsing.
#include "core/device.h"

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace unet {

Device Device::cuda(int index) {
  const int count = cuda_rt::device_count();
  UNET_CHECK(count > 0, DeviceError, "CUDA was requested but no GPU is available (",
             cuda_rt::unavailable_reason(),
             "); the CPU backend is available: use Device::cpu() or --device cpu");
  UNET_CHECK(index >= 0 && index < count, DeviceError, "CUDA device ", index,
             " does not exist; this machine has ", count, " (indices 0..", count - 1, ")");
  return Device{DeviceType::CUDA, index};
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

bool cuda_available() { return cuda_rt::device_count() > 0; }

std::string cuda_description() {
  if (!cuda_available()) return "no CUDA device (" + cuda_rt::unavailable_reason() + ")";
  return cuda_rt::device_name(0);
}

namespace {

// "cpu", "cuda", "cuda:N"; the error lists `allowed`.
Device parse(const std::string& text, const char* allowed) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string rest = text.substr(5);
    UNET_CHECK(!rest.empty() && rest.find_first_not_of("0123456789") == std::string::npos,
               ValueError, "bad device '", text, "': expected ", allowed);
    return Device::cuda(std::stoi(rest));
  }
  UNET_THROW(ValueError, "bad device '", text, "': expected ", allowed);
}

}  // namespace

Device parse_device(const std::string& text) { return parse(text, "cpu, cuda or cuda:N"); }

Device resolve_device(const std::string& text) {
  if (text != "auto") return parse(text, "auto, cpu, cuda or cuda:N");
  return cuda_available() && !cuda_rt::is_simulated() ? Device::cuda(0) : Device::cpu();
}

}  // namespace unet
