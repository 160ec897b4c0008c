// unet/image_io_detail.h — internals shared by image_io.cpp (stb side) and image_io_tiff.cpp
// (libtiff side). Not part of the public API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unet/image.h"

namespace unet::io_detail {

enum class FileKind { PNG, TIFF, JPEG, BMP, Unknown };

std::string lower_extension(const std::string& path);
// The whole file, or its first `limit` bytes; IOError when it is missing, not a regular file,
// unreadable or empty.
std::vector<unsigned char> read_bytes(const std::string& path, size_t limit = SIZE_MAX);
// Recognises the file type by its first bytes.
FileKind sniff(const std::vector<unsigned char>& bytes);
// "<path>.tmp-<random>-<n>": where a writer writes before commit_temp renames it into place.
std::string temp_path_for(const std::string& path);
void commit_temp(const std::string& tmp, const std::string& path);
// Every page of a TIFF file (thumbnails and masks are not pages). With `single`, a file of more
// than one page throws IOError instead (read_image's contract: nothing is silently dropped).
std::vector<Image> read_tiff(const std::string& path, bool single);

}  // namespace unet::io_detail
