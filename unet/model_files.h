// unet/model_files.h — trained models as files: finding one by name ("isbi2012-em"), loading it
// with its description, and exporting the weights of a training checkpoint as a model file.
//
// A model file is a safetensors file with the network's weights under the parameters' names
// and, in its metadata, "unetcore.model" (the configuration, UNetConfig::to_json) and optionally
// "unetcore.card" (a JSON object describing the model: how it was trained, on what, its
// validation scores; see models/README.md). Named models are <name>.safetensors in the model
// folders: the entries of $UNETCORE_MODEL_PATH (':'-separated), the caller's extra folders,
// the installed share/unetcore/models, and the source tree's models/.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "unet/model.h"

namespace unet {

// The folders searched for named models, in order (only those that exist).
std::vector<std::string> model_search_dirs(const std::vector<std::string>& extra_dirs = {});

// The names (file stems) of the models in the search folders, sorted, without duplicates.
std::vector<std::string> available_models(const std::vector<std::string>& extra_dirs = {});

// `name_or_path` as a file path if such a file exists; otherwise, when it is a plain name
// (letters, digits, '.', '_', '-'), the first <name>.safetensors in the search folders.
// Throws IOError naming the folders searched and the models available.
std::string find_model(const std::string& name_or_path, const std::vector<std::string>& extra_dirs = {});

struct ModelFile {
  std::string path;                             // the file it came from
  std::unique_ptr<UNet> model;                  // on the requested device, in training mode
  std::map<std::string, std::string> metadata;  // the file's safetensors metadata
};

// find_model + load_model + the file's metadata.
ModelFile open_model(const std::string& name_or_path, Device device, const std::vector<std::string>& extra_dirs = {});

// Writes the weights of `checkpoint` (a file of Trainer::save_checkpoint or save_model: for a
// checkpoint with weight averaging, the averaged weights) to `out` without the training state
// (momentum, SGD iterate): what inference needs, about a third of a checkpoint's size. The
// checkpoint's metadata is kept ("unetcore.training" says how it was trained) and `metadata`
// is added (replacing keys of the same name).
void export_model(const std::string& checkpoint, const std::string& out,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace unet
