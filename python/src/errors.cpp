// python/src/errors.cpp — see errors.h.
#include "errors.h"

#include "core/error.h"

namespace py = pybind11;

namespace unetcore_py {
namespace {

// Set once at import; the classes live as long as the module.
PyObject* base_error = nullptr;
PyObject* shape_error = nullptr;
PyObject* dtype_error = nullptr;
PyObject* argument_error = nullptr;
PyObject* device_error = nullptr;
PyObject* file_error = nullptr;
PyObject* numeric_error = nullptr;
PyObject* cuda_error = nullptr;
PyObject* memory_error = nullptr;
PyObject* kernel_error = nullptr;
PyObject* cancelled_error = nullptr;

PyObject* make_class(py::module_& m, const char* name, std::initializer_list<PyObject*> bases, const char* doc) {
  py::tuple base_tuple(bases.size());
  size_t i = 0;
  for (PyObject* b : bases) base_tuple[i++] = py::reinterpret_borrow<py::object>(b);
  const std::string qualified = std::string("unetcore.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base_tuple.ptr(), nullptr);
  if (!cls) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(cls));
  return cls;  // the module holds a reference; so do we, for the translator
}

}  // namespace

void register_errors(py::module_& m) {
  base_error = make_class(m, "Error", {PyExc_RuntimeError}, "Base of every error the unetcore library raises.");
  shape_error = make_class(m, "ShapeError", {base_error, PyExc_ValueError},
                           "An array or image of the wrong shape or size (the message says what is allowed).");
  dtype_error = make_class(m, "DTypeError", {base_error, PyExc_TypeError}, "An array of a dtype the call does not take.");
  argument_error = make_class(m, "ArgumentError", {base_error, PyExc_ValueError},
                              "An argument outside its allowed range (the library's ValueError).");
  device_error = make_class(m, "DeviceError", {base_error}, "A device that does not exist or cannot be used.");
  file_error = make_class(m, "FileError", {base_error, PyExc_OSError},
                          "A file that is missing, unreadable, corrupt or unsupported (the message names it).");
  numeric_error = make_class(m, "NumericError", {base_error, PyExc_ArithmeticError}, "NaN or infinity where a finite value is needed.");
  cuda_error = make_class(m, "CudaError", {base_error}, "A CUDA runtime, cuBLAS or cuDNN call failed.");
  memory_error = make_class(m, "OutOfMemoryError", {base_error, PyExc_MemoryError},
                            "An allocation failed (the message says how much was asked and is free).");
  kernel_error = make_class(m, "KernelError", {base_error}, "The CUDA simulator caught a kernel bug.");
  cancelled_error = make_class(m, "CancelledError", {base_error},
                               "A long call stopped because its progress callback returned False.");

  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const unet::ShapeError& e) {
      PyErr_SetString(shape_error, e.what());
    } catch (const unet::DTypeError& e) {
      PyErr_SetString(dtype_error, e.what());
    } catch (const unet::ValueError& e) {
      PyErr_SetString(argument_error, e.what());
    } catch (const unet::DeviceError& e) {
      PyErr_SetString(device_error, e.what());
    } catch (const unet::IOError& e) {
      PyErr_SetString(file_error, e.what());
    } catch (const unet::NumericError& e) {
      PyErr_SetString(numeric_error, e.what());
    } catch (const unet::OutOfMemoryError& e) {
      PyErr_SetString(memory_error, e.what());
    } catch (const unet::CudaError& e) {
      PyErr_SetString(cuda_error, e.what());
    } catch (const unet::KernelError& e) {
      PyErr_SetString(kernel_error, e.what());
    } catch (const unet::CancelledError& e) {
      PyErr_SetString(cancelled_error, e.what());
    } catch (const unet::Error& e) {
      PyErr_SetString(base_error, e.what());
    }
  });
}

}  // namespace unetcore_py
