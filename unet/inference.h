// unet/inference.h — overlap-tile segmentation (the paper's Fig. 2): an image of any size is cut
// into output tiles that abut; each is predicted from an input tile that adds the network's
// context border on every side, taken from the image and, beyond its edges, mirrored. With
// valid convolutions every output pixel depends only on its own context, so the stitched result
// has exactly the image's size and does not depend on the tile size (up to float rounding).
// Optional test-time augmentation averages the class probabilities over the 8 flips/rotations.
// A stack (a multi-page TIFF's pages, a NumPy [N, H, W] array) is segmented page by page.
#pragma once

#include <cstdint>

#include "core/progress.h"
#include "core/tensor.h"
#include "unet/image.h"
#include "unet/model.h"

namespace unet {

struct SegmentOptions {
  int64_t tile = 0;   // input tile size (valid for the model); 0 = the largest valid size <= 572
                      // that is not much larger than the image needs
  bool tta = false;   // average over the 8 dihedral transforms
  // Called before the first tile and after each with (tiles done, tiles of the whole call);
  // returning false stops the call with CancelledError (core/progress.h). Optional.
  ProgressCallback progress;
};

// image: float32 [C, H, W] on the CPU (C = model's in_channels), values as the model was
// trained on. Returns class probabilities float32 [K, H, W] on the CPU. Runs the model in eval
// mode (no dropout) without recording a graph, on the model's device. The image is read while
// the call runs (it may be a borrowed view, Tensor::from_external) and never written.
Tensor segment_image(UNet& model, const Tensor& image, const SegmentOptions& options = {});

// Every page of a stack: float32 [N, C, H, W] on the CPU -> [N, K, H, W]. Page i of the result
// is exactly segment_image() of page i (the same computation, written in place: no copies of
// pages in or out).
Tensor segment_stack(UNet& model, const Tensor& stack, const SegmentOptions& options = {});

// How many network evaluations (tiles) segment_image makes for an H×W image: for progress
// displays that span several calls. Throws like segment_image for an invalid options.tile.
int64_t segment_tile_count(const UNetConfig& config, int64_t height, int64_t width, const SegmentOptions& options = {});

// An image as segment_image takes it: normalised to [0, 1] (normalised()), float32 [C, H, W] on
// the CPU.
Tensor image_tensor(const Image& image);

// Channel 1 (the foreground class of a two-class model) of class probabilities [K, H, W] on the
// CPU, as a float image (values in [0, 1]). Throws ShapeError for fewer than two classes.
Image foreground_probability(const Tensor& probabilities);
// Channel k of class probabilities [K, H, W] on the CPU, as a float image.
Image class_probability(const Tensor& probabilities, int64_t k);

// The [C, rows, cols] window of `image` ([C, H, W], CPU) whose top-left corner is (top, left),
// which may lie outside the image: missing pixels are mirrored (mirror_index of
// kernels/elastic_warp.h, the same reflection the augmentation warp uses).
Tensor mirrored_window(const Tensor& image, int64_t top, int64_t left, int64_t rows, int64_t cols);

}  // namespace unet
