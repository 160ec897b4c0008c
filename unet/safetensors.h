// unet/safetensors.h — reading and writing the safetensors format (the Hugging Face format that
// PyTorch, JAX and others read): an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the raw little-endian data. String metadata
// (model configuration, training state) goes into the header's "__metadata__" object.
//
// Writes are atomic and durable (unet/atomic_file.h): a temporary file in the same folder,
// fsync'ed, renamed into place, the folder fsync'ed; a crash or a kill leaves the previous
// checkpoint or the new one, never a mix, and a failed save (full disk...) leaves the previous one
// untouched. Reads validate everything before allocating — JSON, dtypes, shapes (sizes that
// overflow), byte ranges (inside the file, following each other without gaps or overlaps, as
// the format requires) — and throw IOError naming the file and the problem, so no file can make
// the reader allocate more than the file's own size. Fuzzed: tests/fuzz/, docs/reliability.md.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace unet {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order, on the CPU
  std::map<std::string, std::string> metadata;

  // The tensor called `name`; throws ValueError listing what the file holds if absent.
  const Tensor& at(const std::string& name) const;
  // The tensor called `name`, or null if the file has none (for optional entries).
  const Tensor* find(const std::string& name) const;
};

// Tensors may live on any device (they are copied to the host to be written). Supported dtypes:
// float32 ("F32") and int32 ("I32"). Names must be unique and non-empty.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

SafetensorsFile load_safetensors(const std::string& path);
// Only the "__metadata__" strings, read from the header without the tensors' data.
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path);

}  // namespace unet
