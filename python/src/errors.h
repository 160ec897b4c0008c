// python/src/errors.h — the library's typed exceptions as Python exceptions. Each unet::Error
// subclass becomes a unetcore exception class that also derives from the built-in a Python user
// would catch (ShapeError is a ValueError, DTypeError a TypeError, FileError an OSError, ...),
// and carries the library's message unchanged.
#pragma once

#include <pybind11/pybind11.h>

namespace unetcore_py {

// Creates the exception classes in `m` and registers the translator.
void register_errors(pybind11::module_& m);

}  // namespace unetcore_py
