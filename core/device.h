// core/device.h — where a tensor lives: the CPU or a CUDA device. In the simulator build
// (UNET_CUDA_SIM) "CUDA" is the CUDA simulator: kernels compiled from the same .cu sources run on
// CPU fibers and device memory is host memory; in the GPU build it is the real GPU.
#pragma once

#include <cstdint>
#include <string>

namespace unet {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return Device{DeviceType::CPU, 0}; }
  // Checks that a CUDA device exists and throws DeviceError (saying the CPU backend is
  // available) if not.
  static Device cuda(int index = 0);

  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const;  // "cpu", "cuda:0"
  friend bool operator==(const Device&, const Device&) = default;
};

// True when Device::cuda() would succeed (always in the simulator build, unless a test switched
// the simulated GPU off).
bool cuda_available();
// One line for people: "CUDA simulator (kernels run as CPU fibers)" or the GPU's name and memory.
std::string cuda_description();
// Parses "cpu", "cuda", "cuda:N"; throws ValueError naming the allowed spellings.
Device parse_device(const std::string& text);
// parse_device, plus "auto": the first GPU when there is a real one, else the CPU (the CUDA
// simulator is a test tool, never chosen by "auto").
Device resolve_device(const std::string& text);

}  // namespace unet
