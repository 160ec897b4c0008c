// unet/dataset.h — the three dataset layouts the project reads, all loaded into memory as
// (image, instance labels) samples:
//   (a) a folder of images with a parallel folder of labels, paired by file name stem
//       (the shipped ISBI 2012 layout: train/images/NN.png + train/labels/NN.png);
//   (b) a multi-page TIFF image stack with a label stack of the same page count
//       (how ISBI 2012 is distributed: train-volume.tif + train-labels.tif);
//   (c) the Cell Tracking Challenge layout: <set>/01/tTTT.tif + <set>/01_GT/SEG/man_segTTT.tif,
//       16-bit instance labels, only the annotated frames.
// Binary masks become instances by 4-connected components of their non-zero pixels.
#pragma once

#include <string>
#include <vector>

#include "unet/image.h"

namespace unet {

struct Sample {
  std::string name;        // file stem, "slice NN" or the CTC frame number "TTT"
  Image image;             // as read (not normalised); see normalised()
  LabelImage labels;       // 0 = background / membrane, >0 = instance id
  std::string image_path;  // where it came from (with the page for stacks)
  std::string label_path;
};

enum class LabelKind {
  Auto,        // at most one distinct non-zero value: binary mask; otherwise instance ids
  BinaryMask,  // non-zero = foreground; instances = its 4-connected components
  Instances,   // the values are instance ids, used as they are
};

// Instance labels from a label image read from a file. `what` names it in errors.
LabelImage labels_from_image(const Image& label_image, LabelKind kind, const std::string& what);

// (a) Every image file of images_dir (sorted by name) paired with the label file of the same
// stem in labels_dir. A multi-page TIFF becomes one sample per page (named by page_name), paired
// with the same page of its label stack. Throws IOError for a missing/empty folder or a missing
// label file, ShapeError when an image and its label differ in size or page count (naming both
// files and sizes).
std::vector<Sample> load_folder_dataset(const std::string& images_dir,
                                        const std::string& labels_dir,
                                        LabelKind kind = LabelKind::Auto);
// (b) Page i of image_stack with page i of label_stack.
std::vector<Sample> load_stack_dataset(const std::string& image_stack,
                                       const std::string& label_stack,
                                       LabelKind kind = LabelKind::Auto);
// (c) Only the annotated frames of one sequence ("01", "02") of a CTC data set directory.
std::vector<Sample> load_ctc_dataset(const std::string& dataset_dir,
                                     const std::string& sequence = "01");

// Image files of a folder (sorted by name) without labels, e.g. a test set; every page of a
// stack is a sample (page_name). Each entry's `labels` is empty (width = height = 0).
std::vector<Sample> load_image_folder(const std::string& images_dir);

// The name of page `page` of a stack of `pages` pages whose file stem is `stem`: "<stem>_p<page>",
// the page number 0-based and zero-padded to the width of the largest ("vol_p07" of 30 pages).
std::string page_name(const std::string& stem, int page, int pages);

// Image files in a folder, sorted by file name. Throws IOError when the folder is missing
// or holds none.
std::vector<std::string> list_image_files(const std::string& dir);

}  // namespace unet
