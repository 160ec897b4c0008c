// python/src/model_handle.h — what a unetcore._core.Model holds: a U-Net, the file it came from
// (if any) and its metadata. Loaded by bind_model.cpp, made by training in bind_training.cpp.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "unet/model.h"

namespace unetcore_py {

struct Model {
  std::string path;  // "" for a model trained without an output folder
  std::map<std::string, std::string> metadata;
  std::unique_ptr<unet::UNet> net;
  std::mutex busy;  // one call at a time per model (the library's forward pass is not re-entrant)
};

}  // namespace unetcore_py
