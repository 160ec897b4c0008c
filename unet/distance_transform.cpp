// unet/distance_transform.cpp — Felzenszwalb–Huttenlocher EDT: columns, then rows.
#include "unet/distance_transform.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace unet {

void squared_distance_1d(const double* f, double* d, int n, std::vector<int>& v,
                         std::vector<double>& z) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  v.resize(n);
  z.resize(n + 1);
  // Parabolas rooted at +inf never form part of the envelope: skip them.
  int k = -1;
  for (int q = 0; q < n; ++q) {
    if (f[q] == kInf) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -kInf;
      z[1] = kInf;
      continue;
    }
    double s;
    while (true) {
      const int p = v[k];
      s = ((f[q] + double(q) * q) - (f[p] + double(p) * p)) / (2.0 * (q - p));
      if (s <= z[k] && k > 0) { --k; continue; }
      if (s <= z[k]) { k = -1; break; }  // the new parabola dominates everything so far
      break;
    }
    ++k;
    v[k] = q;
    z[k] = (k == 0) ? -kInf : s;
    z[k + 1] = kInf;
  }
  if (k < 0) {
    for (int q = 0; q < n; ++q) d[q] = kInf;
    return;
  }
  int j = 0;
  for (int q = 0; q < n; ++q) {
    while (z[j + 1] < q) ++j;
    const double dq = q - v[j];
    d[q] = dq * dq + f[v[j]];
  }
}

std::vector<float> squared_distance_transform(const std::vector<uint8_t>& source, int width,
                                              int height) {
  UNET_CHECK(width > 0 && height > 0, ShapeError, "distance_transform: size must be positive, got ",
             width, "x", height);
  UNET_CHECK(source.size() == static_cast<size_t>(width) * height, ShapeError,
             "distance_transform: source holds ", source.size(), " values, ", width, "x", height,
             " needs ", static_cast<size_t>(width) * height);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const size_t n = source.size();
  std::vector<double> g(n);
  std::vector<int> v;
  std::vector<double> z, f(std::max(width, height)), d(std::max(width, height));
  for (int x = 0; x < width; ++x) {
    for (int y = 0; y < height; ++y) f[y] = source[static_cast<size_t>(y) * width + x] ? 0.0 : kInf;
    squared_distance_1d(f.data(), d.data(), height, v, z);
    for (int y = 0; y < height; ++y) g[static_cast<size_t>(y) * width + x] = d[y];
  }
  std::vector<float> out(n);
  for (int y = 0; y < height; ++y) {
    squared_distance_1d(&g[static_cast<size_t>(y) * width], d.data(), width, v, z);
    for (int x = 0; x < width; ++x)
      out[static_cast<size_t>(y) * width + x] = static_cast<float>(d[x]);
  }
  return out;
}

std::vector<float> distance_transform(const std::vector<uint8_t>& source, int width, int height) {
  std::vector<float> out = squared_distance_transform(source, width, height);
  for (float& v : out) v = std::sqrt(v);
  return out;
}

}  // namespace unet
