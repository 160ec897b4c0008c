// core/source_location.h — unet::SourceLocation: the file and line of a call, captured by a
// default argument at the caller (kernel launches and the simulator's tensor-core operations name
// their call site in errors). std::source_location where the standard library has it; clang 14
// with libstdc++ 12 (the sanitizer and fuzzing builds, docs/reliability.md) lacks the builtin
// behind it, so there a stand-in captures the same through __builtin_FILE / __builtin_LINE.
#pragma once

#include <version>
#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace unet {

#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
struct SourceLocation {
  static constexpr SourceLocation current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) {
    SourceLocation s;
    s.file_ = file;
    s.line_ = line;
    return s;
  }
  constexpr const char* file_name() const { return file_; }
  constexpr unsigned line() const { return line_; }
  const char* file_ = "";
  unsigned line_ = 0;
};
#endif

}  // namespace unet
