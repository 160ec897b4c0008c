// python/src/module.cpp — the extension module unetcore._core: the library's exceptions, then the
// bindings. The public API is the package unetcore (python/unetcore/__init__.py), which wraps
// these with argument handling and documentation; _core.pyi describes this module for editors.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "errors.h"
#include "interrupt.h"

namespace py = pybind11;

namespace unetcore_py {
GilProbe& gil_probe() {
  static GilProbe probe;
  return probe;
}
}  // namespace unetcore_py

PYBIND11_MODULE(_core, m) {
  m.doc() = "unetcore's C++ library (libunetcore) for Python; use the package unetcore, not this module.";
  unetcore_py::register_errors(m);
  unetcore_py::bind_model(m);
  unetcore_py::bind_measures(m);
  unetcore_py::bind_io(m);
  unetcore_py::bind_devices(m);
  m.def("_gil_probe", [](bool reset) {
    auto& p = unetcore_py::gil_probe();
    const py::tuple counts = py::make_tuple(p.checks.load(), p.held.load());
    if (reset) p.checks = p.held = 0;
    return counts;
  }, py::arg("reset") = false,
        "Test hook: (progress checks, checks that found the GIL held) of the last or current interruptible call.");
}
