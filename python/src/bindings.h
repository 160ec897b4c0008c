// python/src/bindings.h — the parts of the extension module unetcore._core, one function each.
#pragma once

#include <pybind11/pybind11.h>

namespace unetcore_py {

void bind_model(pybind11::module_& m);     // Model: load, save, segment (bind_model.cpp)
void bind_measures(pybind11::module_& m);  // evaluate (bind_measures.cpp)
void bind_io(pybind11::module_& m);        // read_image, read_stack, write_tiff (bind_io.cpp)
void bind_devices(pybind11::module_& m);   // devices, threads, build information (bind_devices.cpp)

}  // namespace unetcore_py
