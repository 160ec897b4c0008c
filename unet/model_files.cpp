// unet/model_files.cpp — named models: search folders, lookup, loading with metadata, export.
#include "unet/model_files.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "unet/safetensors.h"
#include "unet/trainer.h"

namespace unet {
namespace {

namespace fs = std::filesystem;

constexpr const char* kExtension = ".safetensors";

// Folders compiled in by CMake: the installed share/unetcore/models and the source tree's
// models/ (so programs run from a build tree find the shipped models).
#ifndef UNET_INSTALLED_MODEL_DIR
#define UNET_INSTALLED_MODEL_DIR ""
#endif
#ifndef UNET_SOURCE_MODEL_DIR
#define UNET_SOURCE_MODEL_DIR ""
#endif

bool is_plain_name(const std::string& s) {
  return !s.empty() && s.front() != '.' && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

}  // namespace

std::vector<std::string> model_search_dirs(const std::vector<std::string>& extra_dirs) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("UNETCORE_MODEL_PATH")) {
    const std::string text(env);
    size_t start = 0;
    while (start <= text.size()) {
      const size_t end = std::min(text.find(':', start), text.size());
      if (end > start) candidates.push_back(text.substr(start, end - start));
      start = end + 1;
    }
  }
  candidates.insert(candidates.end(), extra_dirs.begin(), extra_dirs.end());
  candidates.push_back(UNET_INSTALLED_MODEL_DIR);
  candidates.push_back(UNET_SOURCE_MODEL_DIR);
  std::vector<std::string> dirs;
  for (const auto& d : candidates) {
    std::error_code ec;
    if (!d.empty() && fs::is_directory(d, ec) && std::find(dirs.begin(), dirs.end(), d) == dirs.end())
      dirs.push_back(d);
  }
  return dirs;
}

std::vector<std::string> available_models(const std::vector<std::string>& extra_dirs) {
  std::set<std::string> names;
  for (const auto& dir : model_search_dirs(extra_dirs))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file() && entry.path().extension() == kExtension)
        names.insert(entry.path().stem().string());
  return {names.begin(), names.end()};
}

std::string find_model(const std::string& name_or_path, const std::vector<std::string>& extra_dirs) {
  std::error_code ec;
  if (fs::is_regular_file(name_or_path, ec)) return name_or_path;
  UNET_CHECK(is_plain_name(name_or_path), IOError, name_or_path,
             ": no such model file (a model is a file path or the name of a shipped model: ",
             joined(available_models(extra_dirs)), ")");
  const std::vector<std::string> dirs = model_search_dirs(extra_dirs);
  for (const auto& dir : dirs) {
    const fs::path candidate = fs::path(dir) / (name_or_path + kExtension);
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
  }
  UNET_THROW(IOError, "no model named '", name_or_path, "' (looked for ", name_or_path, kExtension, " in: ",
             joined(dirs), "; models there: ", joined(available_models(extra_dirs)),
             "; $UNETCORE_MODEL_PATH adds folders)");
}

ModelFile open_model(const std::string& name_or_path, Device device, const std::vector<std::string>& extra_dirs) {
  ModelFile file;
  file.path = find_model(name_or_path, extra_dirs);
  file.metadata = read_safetensors_metadata(file.path);
  file.model = load_model(file.path, device);
  return file;
}

void export_model(const std::string& checkpoint, const std::string& out,
                  const std::map<std::string, std::string>& metadata) {
  std::map<std::string, std::string> kept = read_safetensors_metadata(checkpoint);
  auto model = load_model(checkpoint, Device::cpu());
  for (const auto& [key, value] : metadata) kept[key] = value;
  save_model(*model, out, kept);
}

}  // namespace unet
