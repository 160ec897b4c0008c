// unet/visualize.h — pictures a person would rather look at than read: an overlay of a
// segmentation on its image, and a line plot (loss curves). They return 8-bit RGB Images;
// writing them is up to the caller (write_png from unet/image_io.h).
#pragma once

#include <string>
#include <vector>

#include "unet/image.h"

namespace unet {

// The grey image (values in [0, 1], one channel) with the predicted boundary (probability of the
// foreground class < 0.5) tinted red and, if `truth` is given (non-empty), the true boundary
// (label 0) outlined in green where the two disagree.
Image segmentation_overlay(const Image& grey, const Image& foreground_probability,
                           const LabelImage* truth = nullptr);

// Instances over their image (grey, any value range: stretched from its darkest to its brightest
// pixel): each object tinted in its own colour (one per id) with its outline drawn in full, and,
// if `truth` is given, the ground-truth objects' outlines in white on top — where the two
// outlines part, the segmentation missed.
Image instance_overlay(const Image& grey, const LabelImage& instances, const LabelImage* truth = nullptr);

struct PlotSeries {
  std::vector<double> x, y;
  unsigned char r = 30, g = 90, b = 200;
};

// Line plot on a white canvas: axes, light grid lines at "nice" y values (1, 2, 5 per decade on a
// log scale, where values <= 0 are skipped) labelled with their values, and ticks with values
// along x (a built-in 5×7 pixel font: digits, '.', '-', '+', 'e'). No titles: the caller says
// what the axes are.
Image line_plot(const std::vector<PlotSeries>& series, int width = 800, int height = 400, bool log_y = false);

}  // namespace unet
