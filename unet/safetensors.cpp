// unet/safetensors.cpp — safetensors I/O with nlohmann::json for the header.
#include "unet/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace unet {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; this code writes host memory as is");

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the format's own limit is 100 MB

const char* dtype_tag(DType t) { return t == DType::Float32 ? "F32" : "I32"; }

std::string temporary_name(const std::string& path) {
  return path + ".tmp-" + std::to_string(::getpid());
}

}  // namespace

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  if (const Tensor* t = find(name)) return *t;
  std::string names;
  for (const auto& [n, t] : tensors) names += (names.empty() ? "" : ", ") + n;
  UNET_THROW(ValueError, "no tensor named '", name, "' in the checkpoint; it holds: ", names);
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    UNET_CHECK(!name.empty() && name != "__metadata__", ValueError,
               "save_safetensors: bad tensor name '", name, "'");
    UNET_CHECK(seen.insert(name).second, ValueError, "save_safetensors: duplicate tensor name '", name, "'");
    check_defined(t, "save_safetensors", name.c_str());
    header[name] = {{"dtype", dtype_tag(t.dtype())},
                    {"shape", t.shape().dims()},
                    {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the format recommends 8-byte alignment of data
  const std::string tmp = temporary_name(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    UNET_CHECK(out.good(), IOError, "cannot write checkpoint '", tmp, "' (for '", path, "')");
    const uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, t] : tensors) {
      const Tensor host = t.to_host();
      out.write(static_cast<const char*>(host.impl()->storage->data()),
                static_cast<std::streamsize>(host.bytes()));
    }
    out.flush();
    if (!out.good()) {
      std::filesystem::remove(tmp);
      UNET_THROW(IOError, "writing checkpoint '", path, "' failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    UNET_THROW(IOError, "cannot move checkpoint into place at '", path, "': ", ec.message());
  }
}

namespace {

struct Header {
  nlohmann::json json;
  uint64_t data_start = 0, data_size = 0;
};

// Reads and validates the length and JSON header of an open safetensors file.
Header read_header(std::ifstream& in, const std::string& path) {
  UNET_CHECK(in.good(), IOError, "cannot open checkpoint '", path, "'");
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  uint64_t header_size = 0;
  UNET_CHECK(file_size >= 8, IOError, "'", path, "' is not a safetensors file: only ", file_size, " bytes");
  in.read(reinterpret_cast<char*>(&header_size), 8);
  UNET_CHECK(header_size <= kMaxHeaderBytes && header_size <= file_size - 8, IOError, "'", path,
             "' is not a valid safetensors file: header length ", header_size, " exceeds the file (",
             file_size, " bytes)");
  std::string text(header_size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_size));
  Header h;
  try {
    h.json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    UNET_THROW(IOError, "'", path, "': the safetensors header is not valid JSON (", e.what(), ")");
  }
  UNET_CHECK(h.json.is_object(), IOError, "'", path, "': the safetensors header is not a JSON object");
  h.data_start = 8 + header_size;
  h.data_size = file_size - h.data_start;
  return h;
}

std::map<std::string, std::string> metadata_of(const Header& h, const std::string& path) {
  std::map<std::string, std::string> metadata;
  const auto it = h.json.find("__metadata__");
  if (it == h.json.end()) return metadata;
  UNET_CHECK(it->is_object(), IOError, "'", path, "': the safetensors __metadata__ is not a JSON object");
  try {
    for (const auto& [key, value] : it->items()) metadata[key] = value.get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    UNET_THROW(IOError, "'", path, "': malformed safetensors metadata (", e.what(), ")");
  }
  return metadata;
}

}  // namespace

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return metadata_of(read_header(in, path), path);
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const Header h = read_header(in, path);
  const nlohmann::json& header = h.json;
  const uint64_t data_start = h.data_start, data_size = h.data_size;

  SafetensorsFile file;
  file.metadata = metadata_of(h, path);
  // Tensors in data order, like the writer.
  std::vector<std::tuple<uint64_t, uint64_t, std::string, DType, std::vector<int64_t>>> entries;
  try {
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") continue;
      const std::string tag = value.at("dtype").get<std::string>();
      UNET_CHECK(tag == "F32" || tag == "I32", IOError, "'", path, "': tensor '", key, "' has dtype ",
                 tag, "; unetcore reads F32 and I32");
      const auto shape = value.at("shape").get<std::vector<int64_t>>();
      const auto offsets = value.at("data_offsets").get<std::vector<uint64_t>>();
      UNET_CHECK(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_size, IOError,
                 "'", path, "': tensor '", key, "' has data offsets outside the file");
      entries.emplace_back(offsets[0], offsets[1], key, tag == "F32" ? DType::Float32 : DType::Int32, shape);
    }
  } catch (const nlohmann::json::exception& e) {
    UNET_THROW(IOError, "'", path, "': malformed safetensors header (", e.what(), ")");
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& [begin, end, name, dtype, dims] : entries) {
    Shape shape;
    try {
      shape = Shape(dims);
    } catch (const ShapeError& e) {
      UNET_THROW(IOError, "'", path, "': tensor '", name, "' has a bad shape: ", e.what());
    }
    Tensor t = Tensor::empty(shape, dtype);
    UNET_CHECK(end - begin == t.bytes(), IOError, "'", path, "': tensor '", name, "' of shape ",
               shape.str(), " needs ", t.bytes(), " bytes but the file gives it ", end - begin);
    in.seekg(static_cast<std::streamoff>(data_start + begin));
    in.read(static_cast<char*>(t.impl()->storage->data()), static_cast<std::streamsize>(t.bytes()));
    UNET_CHECK(in.good(), IOError, "'", path, "': truncated data for tensor '", name, "'");
    file.tensors.emplace_back(name, t);
  }
  return file;
}

}  // namespace unet
