// unet/visualize.cpp — overlays and line plots drawn into 8-bit RGB images.
#include "unet/visualize.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

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

// A 5×7 pixel font for tick labels: digits and the characters printf's %g uses. Each glyph is 7
// rows of 5 bits, the most significant bit leftmost.
struct Glyph {
  char c;
  unsigned char rows[7];
};
constexpr Glyph kFont[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},
};
constexpr int kGlyphWidth = 6, kGlyphHeight = 7;  // 5 columns + 1 of spacing

int text_width(const std::string& text) { return static_cast<int>(text.size()) * kGlyphWidth - 1; }

// Draws `text` with its top-left corner at (x, y); characters outside the font are skipped.
void draw_text(Image& img, int x, int y, const std::string& text, unsigned char grey) {
  for (char c : text) {
    for (const Glyph& glyph : kFont)
      if (glyph.c == c)
        for (int row = 0; row < kGlyphHeight; ++row)
          for (int col = 0; col < 5; ++col)
            if (glyph.rows[row] & (0x10 >> col)) put(img, x + col, y + row, grey, grey, grey);
    x += kGlyphWidth;
  }
}

std::string format_tick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", std::fabs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

// The "nice" step (1, 2 or 5 times a power of 10) for about `divisions` intervals over a span.
double nice_step(double span, int divisions) {
  const double raw = span / divisions, power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * power >= raw) return m * power;
  return 10.0 * power;
}

// Calls f(v) for the multiples v of the nice step in [lo, hi] (at most 64 of them; none when the
// range is not finite). Counted with an integer, so a step below the values' resolution cannot
// loop forever.
template <typename F> void for_each_tick(double lo, double hi, int divisions, F&& f) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo)) return;
  const double step = nice_step(hi - lo, divisions), first = std::ceil(lo / step);
  for (int i = 0; i < 64; ++i) {
    const double v = (first + i) * step;
    if (v > hi + 1e-9 * step) break;
    f(v);
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

Image instance_overlay(const Image& grey, const LabelImage& instances, const LabelImage* truth) {
  validate(grey, "overlay image");
  validate(instances, "overlay instances");
  UNET_CHECK(grey.channels == 1, ShapeError, "instance_overlay: the image must be single-channel, got ", grey.channels);
  UNET_CHECK(grey.width == instances.width && grey.height == instances.height, ShapeError, "instance_overlay: image ",
             grey.width, "x", grey.height, " and instances ", instances.width, "x", instances.height, " differ");
  const bool with_truth = truth && truth->width > 0;
  if (with_truth)
    UNET_CHECK(truth->width == grey.width && truth->height == grey.height, ShapeError,
               "instance_overlay: truth ", truth->width, "x", truth->height, " differs from the image");
  const auto [lo, hi] = std::minmax_element(grey.pixels.begin(), grey.pixels.end());
  const float scale = *hi > *lo ? 255.0f / (*hi - *lo) : 0.0f;
  // An object's pixel is on its outline when a 4-neighbour inside the image belongs elsewhere.
  auto outline = [](const LabelImage& l, int x, int y) {
    const int32_t id = l.at(x, y);
    if (id <= 0) return false;
    return (x > 0 && l.at(x - 1, y) != id) || (y > 0 && l.at(x, y - 1) != id) ||
           (x + 1 < l.width && l.at(x + 1, y) != id) || (y + 1 < l.height && l.at(x, y + 1) != id);
  };
  Image out = make_image(grey.width, grey.height, 3, SampleFormat::U8);
  for (int y = 0; y < grey.height; ++y)
    for (int x = 0; x < grey.width; ++x) {
      const float v = (grey.at(x, y) - *lo) * scale;
      float rgb[3] = {v, v, v};
      const int32_t id = instances.at(x, y);
      if (id > 0) {
        // A colour per id: hue stepped by the golden ratio, so neighbouring ids differ clearly.
        const float hue = std::fmod(static_cast<float>(id) * 0.618034f, 1.0f) * 6.0f;
        const float f = hue - std::floor(hue);
        const float table[6][3] = {{1, f, 0}, {1 - f, 1, 0}, {0, 1, f}, {0, 1 - f, 1}, {f, 0, 1}, {1, 0, 1 - f}};
        const float* c = table[static_cast<int>(hue) % 6];
        const float mix = outline(instances, x, y) ? 1.0f : 0.35f;
        for (int k = 0; k < 3; ++k) rgb[k] = (1.0f - mix) * rgb[k] + mix * 255.0f * c[k];
      }
      if (with_truth && outline(*truth, x, y)) rgb[0] = rgb[1] = rgb[2] = 255.0f;
      for (int k = 0; k < 3; ++k) out.at(x, y, k) = std::round(std::clamp(rgb[k], 0.0f, 255.0f));
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
  const int left = 52, right = width - 15, top = 15, bottom = height - 26;
  if (!(xmax > xmin)) { xmin -= 1; xmax += 1; }
  if (!(ymax > ymin)) { ymin -= 1; ymax += 1; }
  auto px = [&](double x) { return left + static_cast<int>(std::lround((x - xmin) / (xmax - xmin) * (right - left))); };
  auto py = [&](double y) { return bottom - static_cast<int>(std::lround((ty(y) - ymin) / (ymax - ymin) * (bottom - top))); };
  // Horizontal grid lines with their values at the left: 1, 2 and 5 per decade on a log axis
  // (the decades darker), nice steps otherwise.
  auto y_tick = [&](double value, unsigned char shade) {
    const int y = py(value);
    line(img, left, y, right, y, shade, shade, shade);
    const std::string label = format_tick(value);
    draw_text(img, left - 6 - text_width(label), y - kGlyphHeight / 2, label, 60);
  };
  if (log_y) {
    for (double d = std::floor(ymin); d <= ymax; d += 1.0)
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * std::pow(10.0, d);
        if (std::log10(v) >= ymin - 1e-9 && std::log10(v) <= ymax + 1e-9) y_tick(v, m == 1.0 ? 215 : 235);
      }
  } else {
    for_each_tick(ymin, ymax, 5, [&](double v) { y_tick(v, 225); });
  }
  // Ticks along x with their values below the axis.
  for_each_tick(xmin, xmax, 6, [&](double v) {
    const int x = px(v);
    line(img, x, bottom, x, bottom + 4, 0, 0, 0);
    const std::string label = format_tick(v);
    draw_text(img, x - text_width(label) / 2, bottom + 8, label, 60);
  });
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
