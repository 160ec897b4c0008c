// tests/fuzz/fuzz.h — what every fuzz target shares (docs/reliability.md).
//
// A target is one LLVMFuzzerTestOneInput that hands the fuzzer's bytes to one reader of outside
// bytes, through the reader's public entry point (a file on disk, as users call it), and holds it
// to the readers' contract: decode, or throw IOError naming the file. Anything else — another
// exception, a crash, a sanitizer report, a hang (libFuzzer's -timeout), an allocation past
// libFuzzer's -malloc_limit_mb — is a finding.
//
// Built with libFuzzer (cmake -DUNET_FUZZ=ON, clang) a target fuzzes; built without it (every
// other build) it is linked with replay_main.cpp and runs the files it is given, so the corpus in
// tests/fuzz/corpus/ is replayed by CTest in every build.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "unet/image_io.h"

namespace unet::fuzz {

// The bytes as a file `name` in a folder of this process (under $TMPDIR); returns its path.
inline std::string input_file(const uint8_t* data, size_t size, const std::string& name) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("unet_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::filesystem::path path = dir / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write the input to %s\n", path.c_str());
    std::abort();
  }
  return path.string();
}

// Runs read(); an IOError that names `path` is a clean refusal. Any other exception escapes
// (libFuzzer reports it as a crash); an IOError that does not name the file aborts.
template <typename Read>
void expect_clean(const std::string& path, Read&& read) {
  try {
    read();
  } catch (const IOError& e) {
    if (std::string(e.what()).find(path) == std::string::npos) {
      std::fprintf(stderr, "fuzz: IOError does not name the file %s: %s\n", path.c_str(), e.what());
      std::abort();
    }
  }
}

// Images of at most 2^22 values (16 MiB as float) while fuzzing: the same checks as the
// defaults, reached by smaller claims, so that every input runs in milliseconds.
inline void use_fuzzing_image_limits() {
  ImageLimits limits;
  limits.max_values = int64_t{1} << 22;
  limits.max_stack_values = int64_t{1} << 24;
  set_image_limits(limits);
}

// Every image entry point on one file: first image, whole stack, page count. A decoded image
// must be well formed (validate() throws ShapeError otherwise, which escapes as a finding).
inline void fuzz_image_readers(const uint8_t* data, size_t size, const std::string& name) {
  const std::string path = input_file(data, size, name);
  expect_clean(path, [&] { validate(read_image(path), "decoded image"); });
  expect_clean(path, [&] {
    for (const Image& page : read_image_stack(path)) validate(page, "decoded page");
  });
  expect_clean(path, [&] {
    if (count_pages(path) < 1) {
      std::fprintf(stderr, "fuzz: count_pages(%s) < 1 without an error\n", path.c_str());
      std::abort();
    }
  });
}

}  // namespace unet::fuzz
