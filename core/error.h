// core/error.h — the library's exception types and the check macros that throw them.
//
// Every public entry point validates its input and throws one of these; library code never
// prints and never exits. Messages say what was wrong and what is allowed. Errors raised by a
// check carry the failing expression and file:line so a user can find the spot.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace unet {

// Base of every exception the library throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

class ShapeError : public Error { using Error::Error; };   // incompatible or invalid shapes
class DeviceError : public Error { using Error::Error; };  // wrong device, no GPU, device mismatch
class DTypeError : public Error { using Error::Error; };   // integer tensor where float is needed...
class ValueError : public Error { using Error::Error; };   // an argument outside its allowed range
class IOError : public Error { using Error::Error; };      // unreadable, corrupt or unwritable file
class NumericError : public Error { using Error::Error; }; // NaN / Inf where a finite value is needed
class CudaError : public Error { using Error::Error; };    // a CUDA runtime / cuBLAS / cuDNN call failed
class OutOfMemoryError : public Error { using Error::Error; }; // allocation failed (says asked / free)
class KernelError : public Error { using Error::Error; };  // the CUDA simulator caught a kernel bug
class CancelledError : public Error { using Error::Error; }; // the caller asked a long call to stop (core/progress.h)

namespace detail {
inline std::string where(const char* file, int line) {
  std::ostringstream s;
  s << file << ":" << line;
  return s.str();
}

// Builds a message from any streamable pieces: message("got ", n, " want ", m).
template <typename... Parts>
std::string message(Parts&&... parts) {
  std::ostringstream s;
  (s << ... << std::forward<Parts>(parts));
  return s.str();
}
}  // namespace detail

}  // namespace unet

// UNET_CHECK(cond, ExceptionType, streamable message parts...)
// Throws ExceptionType("<message> [check `cond` failed at file:line]") when cond is false.
#define UNET_CHECK(cond, ExceptionType, ...)                                               \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      throw ExceptionType(::unet::detail::message(__VA_ARGS__, " [check `", #cond,        \
                                                  "` failed at ",                         \
                                                  ::unet::detail::where(__FILE__, __LINE__), \
                                                  "]"));                                  \
    }                                                                                     \
  } while (0)

// UNET_THROW(ExceptionType, message parts...) — unconditional, with file:line.
#define UNET_THROW(ExceptionType, ...)                                                   \
  throw ExceptionType(::unet::detail::message(__VA_ARGS__, " [at ",                      \
                                              ::unet::detail::where(__FILE__, __LINE__), "]"))
