// unet/safetensors.cpp — safetensors I/O with nlohmann::json for the header.
#include "unet/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "unet/atomic_file.h"

namespace unet {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; this code writes host memory as is");

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the format's own limit is 100 MB

const char* dtype_tag(DType t) { return t == DType::Float32 ? "F32" : "I32"; }

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
  AtomicFile out(path);  // (also removes the temporaries of a run killed while saving)
  const uint64_t n = text.size();
  out.write(&n, sizeof n);
  out.write(text);
  for (const auto& [name, t] : tensors) {
    const Tensor host = t.to_host();
    out.write(host.impl()->storage->data(), host.bytes());
  }
  out.commit();
}

namespace {

// One tensor entry of the header, checked: known dtype, a shape of non-negative integers whose
// byte size fits 64 bits and equals its data range, which lies inside the file.
struct Entry {
  uint64_t begin = 0, end = 0;
  std::string name;
  DType dtype = DType::Float32;
  std::vector<int64_t> dims;
  bool operator<(const Entry& o) const { return begin < o.begin || (begin == o.begin && end < o.end); }
};

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& value,
                  uint64_t data_size) {
  const auto bad = [&](const std::string& what) {
    UNET_THROW(IOError, "'", path, "': tensor '", name, "' ", what);
  };
  if (name.empty()) bad("has an empty name");
  if (!value.is_object()) bad("is described by " + std::string(value.type_name()) + ", not an object");
  Entry e;
  e.name = name;
  const auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) bad("has no dtype");
  const std::string tag = dtype->get<std::string>();
  if (tag != "F32" && tag != "I32") bad("has dtype " + tag + "; unetcore reads F32 and I32");
  e.dtype = tag == "F32" ? DType::Float32 : DType::Int32;
  const auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) bad("has no shape array");
  if (shape->size() > static_cast<size_t>(Shape::kMaxRank))
    bad("has " + std::to_string(shape->size()) + " dimensions; unetcore tensors have at most " +
        std::to_string(Shape::kMaxRank));
  uint64_t bytes = dtype_size(e.dtype);
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned())  // JSON parses every non-negative integer as unsigned
      bad("has a shape entry that is not a non-negative integer: " + d.dump());
    const uint64_t extent = d.get<uint64_t>();
    if (extent > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, extent, &bytes))
      bad("has a shape whose size overflows 64 bits: " + shape->dump());
    e.dims.push_back(static_cast<int64_t>(extent));
  }
  const auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    bad("has no data_offsets [begin, end] of two non-negative integers");
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  if (e.begin > e.end || e.end > data_size)
    bad(detail::message("has data offsets [", e.begin, ", ", e.end, "] outside the file's ", data_size,
                        " data bytes"));
  if (e.end - e.begin != bytes)
    bad(detail::message("of shape ", shape->dump(), " needs ", bytes, " bytes but the file gives it ",
                        e.end - e.begin));
  return e;
}

struct Header {
  nlohmann::json json;
  uint64_t data_start = 0, data_size = 0;
};

// Reads and validates the length and JSON header of an open safetensors file.
Header read_header(std::ifstream& in, const std::string& path) {
  UNET_CHECK(in.good(), IOError, "cannot open checkpoint '", path, "'");
  in.seekg(0, std::ios::end);
  const std::streamoff end_position = in.tellg();
  UNET_CHECK(end_position >= 0, IOError, "cannot read checkpoint '", path, "' (not a regular file?)");
  const uint64_t file_size = static_cast<uint64_t>(end_position);
  in.seekg(0);
  uint64_t header_size = 0;
  UNET_CHECK(file_size >= 8, IOError, "'", path, "' is not a safetensors file: only ", file_size, " bytes");
  in.read(reinterpret_cast<char*>(&header_size), 8);
  UNET_CHECK(header_size <= kMaxHeaderBytes && header_size <= file_size - 8, IOError, "'", path,
             "' is not a valid safetensors file: header length ", header_size, " exceeds the file (",
             file_size, " bytes) or the format's limit of ", kMaxHeaderBytes, " bytes");
  std::string text(header_size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_size));
  UNET_CHECK(in.good(), IOError, "'", path, "': cannot read the safetensors header");
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
  for (const auto& [key, value] : it->items()) {
    UNET_CHECK(value.is_string(), IOError, "'", path, "': metadata entry '", key, "' is not a string");
    metadata[key] = value.get<std::string>();
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
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") continue;
    entries.push_back(parse_entry(path, key, value, data_size));
  }
  // The format's rule: the tensors' byte ranges tile the data without gaps or overlaps.
  std::sort(entries.begin(), entries.end());
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    UNET_CHECK(e.begin == expected, IOError, "'", path, "': tensor '", e.name, "' starts at data byte ", e.begin,
               " but the previous tensor ends at ", expected, " (ranges must follow each other without gaps)");
    expected = e.end;
  }
  UNET_CHECK(expected == data_size, IOError, "'", path, "': the tensors cover ", expected, " of the file's ",
             data_size, " data bytes (truncated or padded file)");
  // Every size is now bounded by the file's: allocating cannot ask for more than it holds.
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(Shape(e.dims), e.dtype);
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    in.read(static_cast<char*>(t.impl()->storage->data()), static_cast<std::streamsize>(t.bytes()));
    UNET_CHECK(in.good(), IOError, "'", path, "': truncated data for tensor '", e.name, "'");
    file.tensors.emplace_back(e.name, t);
  }
  return file;
}

}  // namespace unet
