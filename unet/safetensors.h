// unet/safetensors.h — reading and writing the safetensors format (the Hugging Face format that
// PyTorch, JAX and others read): an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the raw little-endian data. String metadata
// (model configuration, training state) goes into the header's "__metadata__" object.
//
// Writes are atomic: the file is written under a temporary name in the same folder and renamed
// into place, so a crash never leaves a half-written checkpoint. Reads validate everything
// (sizes, offsets, dtypes, JSON) and throw IOError naming the file and the problem.
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
