// python/src/bind_devices.cpp — what this build runs on: the devices, the CPU thread count, the
// build's CUDA backend and version.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "core/cuda_runtime.h"
#include "core/device.h"
#include "core/parallel.h"

namespace py = pybind11;

#ifndef UNETCORE_VERSION
#define UNETCORE_VERSION "unknown"
#endif

namespace unetcore_py {

void bind_devices(py::module_& m) {
  m.def("devices", [] {
    py::list out;
    py::dict cpu;
    cpu["name"] = "cpu";
    cpu["description"] = "CPU backend, " + std::to_string(unet::num_threads()) + " threads";
    cpu["simulated"] = false;
    out.append(cpu);
    for (int i = 0; i < unet::cuda_rt::device_count(); ++i) {
      py::dict d;
      d["name"] = unet::Device{unet::DeviceType::CUDA, i}.str();
      d["description"] = unet::cuda_rt::device_name(i);
      d["simulated"] = unet::cuda_rt::is_simulated();
      out.append(d);
    }
    return out;
  }, "The devices this build can run on: dicts with name ('cpu', 'cuda:0', ...), description and "
     "simulated (True for the CUDA simulator, a test tool that runs GPU kernels on the CPU).");
  m.def("default_device", [] { return unet::resolve_device("auto").str(); },
        "The device device='auto' picks: the first real GPU, else 'cpu'.");
  m.def("num_threads", &unet::num_threads, "CPU threads the library computes with.");
  m.def("set_num_threads", &unet::set_num_threads, py::arg("n"),
        "Sets the CPU thread count (n >= 1; 0 restores the default, one per core).");
  m.def("build_info", [] {
    py::dict d;
    d["version"] = UNETCORE_VERSION;
    d["cuda_backend"] = unet::cuda_rt::is_simulated() ? "sim" : "gpu";
    return d;
  }, "The library's version and CUDA backend ('gpu': kernels run on a real GPU; 'sim': the CUDA "
     "simulator, the default build, which computes on the CPU).");
}

}  // namespace unetcore_py
