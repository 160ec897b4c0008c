// unet/dataset.cpp — loading the folder, stack and Cell Tracking Challenge layouts.
#include "unet/dataset.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>

#include "core/error.h"
#include "unet/connected_components.h"
#include "unet/image_io.h"

namespace unet {
namespace {

namespace fs = std::filesystem;

void check_same_size(const Image& image, const LabelImage& labels, const std::string& image_path,
                     const std::string& label_path) {
  UNET_CHECK(image.width == labels.width && image.height == labels.height, ShapeError,
             "image and label sizes differ: ", image_path, " is ", image.width, "x", image.height,
             ", ", label_path, " is ", labels.width, "x", labels.height,
             "; every label image must have its image's size");
}

void check_dir(const std::string& dir, const char* role) {
  std::error_code ec;
  UNET_CHECK(fs::is_directory(dir, ec), IOError, dir, ": ", role,
             " folder does not exist or is not a folder");
}

// Every page of an image file, as samples without labels: one sample named after the file's stem,
// or for a stack of N pages, N samples "<stem>_p<i>" (page_name).
std::vector<Sample> read_pages(const std::string& path) {
  std::vector<Image> pages = read_image_stack(path);
  const std::string stem = fs::path(path).stem().string();
  std::vector<Sample> samples(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    samples[i].name = pages.size() == 1 ? stem : page_name(stem, static_cast<int>(i), static_cast<int>(pages.size()));
    samples[i].image_path = pages.size() == 1 ? path : path + " page " + std::to_string(i);
    samples[i].image = std::move(pages[i]);
  }
  return samples;
}

}  // namespace

std::string page_name(const std::string& stem, int page, int pages) {
  const int digits = static_cast<int>(std::to_string(std::max(pages - 1, 0)).size());
  std::string number = std::to_string(page);
  number.insert(0, static_cast<size_t>(std::max(0, digits - static_cast<int>(number.size()))), '0');
  return stem + "_p" + number;
}

LabelImage labels_from_image(const Image& label_image, LabelKind kind, const std::string& what) {
  validate(label_image, what.c_str());
  UNET_CHECK(label_image.channels == 1, IOError, what, ": label images must be grey (1 channel), got ",
             label_image.channels, " channels");
  UNET_CHECK(label_image.format != SampleFormat::F32 || kind == LabelKind::BinaryMask, IOError,
             what, ": float label images are only accepted as binary masks (LabelKind::BinaryMask)");
  if (kind == LabelKind::Auto) {
    float first = 0.0f;
    bool binary = true;
    for (float v : label_image.pixels) {
      if (v == 0.0f) continue;
      if (first == 0.0f) first = v;
      else if (v != first) { binary = false; break; }
    }
    kind = binary ? LabelKind::BinaryMask : LabelKind::Instances;
  }
  if (kind == LabelKind::BinaryMask) {
    std::vector<uint8_t> mask(label_image.pixels.size());
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = label_image.pixels[i] > 0.0f ? 1 : 0;
    return connected_components(mask, label_image.width, label_image.height, Connectivity::Four);
  }
  try {
    return labels_from_values(label_image);
  } catch (const ValueError& e) {
    UNET_THROW(IOError, what, ": not a valid instance label image: ", e.what());
  }
}

std::vector<std::string> list_image_files(const std::string& dir) {
  check_dir(dir, "image");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && is_image_file(entry.path().string()))
      files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  UNET_CHECK(!files.empty(), IOError, dir,
             ": folder holds no image files (.png .tif .tiff .jpg .jpeg .bmp)");
  return files;
}

std::vector<Sample> load_folder_dataset(const std::string& images_dir,
                                        const std::string& labels_dir, LabelKind kind) {
  const auto image_files = list_image_files(images_dir);
  check_dir(labels_dir, "label");
  std::map<std::string, std::string> label_by_stem;
  for (const auto& entry : fs::directory_iterator(labels_dir)) {
    const std::string p = entry.path().string();
    if (!entry.is_regular_file() || !is_image_file(p)) continue;
    const std::string stem = entry.path().stem().string();
    UNET_CHECK(!label_by_stem.count(stem), IOError, labels_dir, ": two label files share the name ",
               stem, " (", label_by_stem[stem], ", ", p, ")");
    label_by_stem[stem] = p;
  }
  std::vector<Sample> samples;
  for (const auto& image_path : image_files) {
    const std::string stem = fs::path(image_path).stem().string();
    auto it = label_by_stem.find(stem);
    UNET_CHECK(it != label_by_stem.end(), IOError, image_path, ": no label file named ", stem,
               ".* in ", labels_dir);
    std::vector<Sample> pages = read_pages(image_path);
    std::vector<Image> labels = read_image_stack(it->second);
    UNET_CHECK(labels.size() == pages.size(), ShapeError, "page counts differ: ", image_path, " has ",
               pages.size(), " page(s), its labels ", it->second, " have ", labels.size());
    for (size_t i = 0; i < pages.size(); ++i) {
      Sample& s = pages[i];
      s.label_path = labels.size() == 1 ? it->second : it->second + " page " + std::to_string(i);
      s.labels = labels_from_image(labels[i], kind, s.label_path);
      check_same_size(s.image, s.labels, s.image_path, s.label_path);
      samples.push_back(std::move(s));
    }
  }
  return samples;
}

std::vector<Sample> load_stack_dataset(const std::string& image_stack,
                                       const std::string& label_stack, LabelKind kind) {
  auto images = read_image_stack(image_stack);
  auto labels = read_image_stack(label_stack);
  UNET_CHECK(images.size() == labels.size(), ShapeError, "page counts differ: ", image_stack,
             " has ", images.size(), " pages, ", label_stack, " has ", labels.size());
  std::vector<Sample> samples;
  for (size_t i = 0; i < images.size(); ++i) {
    Sample s;
    s.name = "slice " + std::to_string(i);
    s.image_path = image_stack + " page " + std::to_string(i);
    s.label_path = label_stack + " page " + std::to_string(i);
    s.image = std::move(images[i]);
    s.labels = labels_from_image(labels[i], kind, s.label_path);
    check_same_size(s.image, s.labels, s.image_path, s.label_path);
    samples.push_back(std::move(s));
  }
  return samples;
}

std::vector<Sample> load_ctc_dataset(const std::string& dataset_dir, const std::string& sequence) {
  const fs::path root(dataset_dir);
  const fs::path raw_dir = root / sequence;
  const fs::path seg_dir = root / (sequence + "_GT") / "SEG";
  check_dir(raw_dir.string(), "CTC raw frame");
  check_dir(seg_dir.string(), "CTC segmentation ground-truth");
  // man_segTTT.tif (2-D); 3-D sets' man_segTTT_ZZZ.tif slices are not this layout.
  const std::regex seg_name(R"(man_seg(\d+)\.tiff?)");
  std::map<long, std::pair<std::string, std::string>> frames;  // frame -> (digits, path)
  for (const auto& entry : fs::directory_iterator(seg_dir)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(name, m, seg_name))
      frames[std::stol(m[1].str())] = {m[1].str(), entry.path().string()};
  }
  UNET_CHECK(!frames.empty(), IOError, seg_dir.string(),
             ": no man_segTTT.tif files (CTC layout: <set>/", sequence, "_GT/SEG/man_segTTT.tif)");
  std::vector<Sample> samples;
  for (const auto& [frame, entry] : frames) {
    const auto& [digits, label_path] = entry;
    fs::path image_path = raw_dir / ("t" + digits + ".tif");
    if (!fs::exists(image_path)) image_path = raw_dir / ("t" + digits + ".tiff");
    UNET_CHECK(fs::exists(image_path), IOError, label_path, ": its raw frame ",
               (raw_dir / ("t" + digits + ".tif")).string(), " does not exist");
    Sample s;
    s.name = digits;
    s.image_path = image_path.string();
    s.label_path = label_path;
    s.image = read_image(s.image_path);
    s.labels = labels_from_image(read_image(label_path), LabelKind::Instances, label_path);
    check_same_size(s.image, s.labels, s.image_path, s.label_path);
    samples.push_back(std::move(s));
  }
  return samples;
}

std::vector<Sample> load_image_folder(const std::string& images_dir) {
  std::vector<Sample> samples;
  for (const auto& p : list_image_files(images_dir))
    for (Sample& s : read_pages(p)) samples.push_back(std::move(s));
  return samples;
}

}  // namespace unet
