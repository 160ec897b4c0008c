// examples/device_info.cpp — prints what this build of libunetcore runs on: the CPU thread count
// and the CUDA device (a real GPU, or the CUDA simulator in the simulator build).
#include <cstdio>

#include "core/cuda_runtime.h"
#include "core/device.h"
#include "core/parallel.h"
#include "program.h"

int main(int argc, char** argv) {
  CLI::App app{"Print the CPU thread count and the CUDA device this build runs on"};
  return unet::examples::run_program("device_info", app, argc, argv, [&] {
    std::printf("[device] CPU backend: %d threads\n", unet::num_threads());
    if (unet::cuda_available()) {
      std::printf("[device] CUDA device: %s%s\n", unet::cuda_description().c_str(),
                  unet::cuda_rt::is_simulated() ? " — CUDA tests run every kernel through the simulator" : "");
    } else {
      std::printf("[device] CUDA device: none (%s)\n", unet::cuda_description().c_str());
    }
    return 0;
  });
}
