// unet/visualize.cpp — overlays and line plots drawn into 8-bit RGB images.
#include "unet/visualize.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace unet {
namespace {

void put(Image& img, int x, int y, unsigned char r, unsigned char g, unsigned char b) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  img.at(x, y, 0) = r;
  img.at(x, y, 1) = g;
  img.at(x, y, 2) = b;
}

// Bresenham line, 2 px thick.
void line(Image& img, int x0, int y0, int x1, int y1, unsigned char r, unsigned char g, unsigned char b) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    put(img, x0, y0, r, g, b);
    put(img, x0, y0 + 1, r, g, b);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) { err += dy; x0 += sx; }
    if (e2 <= dx) { err += dx; y0 += sy; }
  }
}

}  // namespace

Image segmentation_overlay(const Image& grey, const Image& probability, const LabelImage* truth) {
  validate(grey, "overlay image");
  validate(probability, "overlay probability");
  UNET_CHECK(grey.channels == 1 && probability.channels == 1, ShapeError,
             "segmentation_overlay: image and probability must be single-channel");
  UNET_CHECK(grey.width == probability.width && grey.height == probability.height, ShapeError,
             "segmentation_overlay: image ", grey.width, "x", grey.height, " and probability ",
             probability.width, "x", probability.height, " differ");
  const bool with_truth = truth && truth->width > 0;
  if (with_truth)
    UNET_CHECK(truth->width == grey.width && truth->height == grey.height, ShapeError,
               "segmentation_overlay: truth ", truth->width, "x", truth->height, " differs from the image");
  Image out = make_image(grey.width, grey.height, 3, SampleFormat::U8);
  for (int y = 0; y < grey.height; ++y)
    for (int x = 0; x < grey.width; ++x) {
      const float v = std::clamp(grey.at(x, y), 0.0f, 1.0f) * 255.0f;
      float r = v, g = v, b = v;
      const bool predicted_boundary = probability.at(x, y) < 0.5f;
      if (predicted_boundary) {  // red tint
        r = 0.45f * r + 0.55f * 255.0f;
        g *= 0.45f;
        b *= 0.45f;
      }
      if (with_truth && (truth->at(x, y) == 0) != predicted_boundary) {  // disagreement: green
        r *= 0.3f;
        g = 0.3f * g + 0.7f * 255.0f;
        b *= 0.3f;
      }
      out.at(x, y, 0) = std::round(r);
      out.at(x, y, 1) = std::round(g);
      out.at(x, y, 2) = std::round(b);
    }
  return out;
}

Image line_plot(const std::vector<PlotSeries>& series, int width, int height, bool log_y) {
  UNET_CHECK(width >= 64 && height >= 64, ValueError, "line_plot: canvas must be at least 64x64");
  Image img = make_image(width, height, 3, SampleFormat::U8);
  std::fill(img.pixels.begin(), img.pixels.end(), 255.0f);
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  auto ty = [&](double y) { return log_y ? std::log10(y) : y; };
  for (const auto& s : series) {
    UNET_CHECK(s.x.size() == s.y.size(), ValueError, "line_plot: x and y differ in length");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (log_y && s.y[i] <= 0)) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, ty(s.y[i]));
      ymax = std::max(ymax, ty(s.y[i]));
    }
  }
  const int left = 40, right = width - 15, top = 15, bottom = height - 30;
  if (!(xmax > xmin)) { xmin -= 1; xmax += 1; }
  if (!(ymax > ymin)) { ymin -= 1; ymax += 1; }
  auto px = [&](double x) { return left + static_cast<int>(std::lround((x - xmin) / (xmax - xmin) * (right - left))); };
  auto py = [&](double y) { return bottom - static_cast<int>(std::lround((ty(y) - ymin) / (ymax - ymin) * (bottom - top))); };
  // Grid: decades on a log axis, 5 divisions otherwise.
  if (log_y) {
    for (double d = std::floor(ymin); d <= ymax; d += 1.0)
      if (d >= ymin) line(img, left, py(std::pow(10.0, d)), right, py(std::pow(10.0, d)), 225, 225, 225);
  } else {
    for (int i = 0; i <= 5; ++i) {
      const int y = bottom - i * (bottom - top) / 5;
      line(img, left, y, right, y, 225, 225, 225);
    }
  }
  line(img, left, bottom, right, bottom, 0, 0, 0);
  line(img, left, top, left, bottom, 0, 0, 0);
  for (const auto& s : series) {
    int last_x = -1, last_y = -1;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (log_y && s.y[i] <= 0)) continue;
      const int x = px(s.x[i]), y = py(s.y[i]);
      if (last_x >= 0) line(img, last_x, last_y, x, y, s.r, s.g, s.b);
      last_x = x;
      last_y = y;
    }
  }
  return img;
}

}  // namespace unet
