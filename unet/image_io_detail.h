// unet/image_io_detail.h — internals shared by image_io.cpp (stb side) and image_io_tiff.cpp
// (libtiff side). Not part of the public API.
#pragma once

#include <string>
#include <vector>

#include "unet/image.h"

namespace unet::io_detail {

enum class FileKind { PNG, TIFF, JPEG, BMP, Unknown };

std::string lower_extension(const std::string& path);
// The whole file; IOError when it is missing, not a regular file, unreadable or empty.
std::vector<unsigned char> read_bytes(const std::string& path);
// Recognises the file type by its first bytes.
FileKind sniff(const std::vector<unsigned char>& bytes);
// "<path>.tmp-<random>-<n>": where a writer writes before commit_temp renames it into place.
std::string temp_path_for(const std::string& path);
void commit_temp(const std::string& tmp, const std::string& path);
// All pages (or only the first) of a TIFF file.
std::vector<Image> read_tiff(const std::string& path, bool first_only);

}  // namespace unet::io_detail
