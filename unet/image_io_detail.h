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
// IOError naming `where` unless a width x height x channels image is within image_limits().
void check_claimed_size(const std::string& where, int64_t width, int64_t height, int64_t channels);
// All pages (or only the first) of a TIFF file.
std::vector<Image> read_tiff(const std::string& path, bool first_only);

}  // namespace unet::io_detail
