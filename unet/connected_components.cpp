// unet/connected_components.cpp — two-pass labelling with a union-find over provisional labels.
#include "unet/connected_components.h"

#include <numeric>

#include "core/error.h"

namespace unet {
namespace {

int32_t find_root(std::vector<int32_t>& parent, int32_t a) {
  while (parent[a] != a) {
    parent[a] = parent[parent[a]];  // path halving keeps the trees flat
    a = parent[a];
  }
  return a;
}

void unite(std::vector<int32_t>& parent, int32_t a, int32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a == b) return;
  if (a < b) parent[b] = a; else parent[a] = b;  // smaller label wins: keeps raster order
}

// Generic two-pass labelling where `same(i, j)` says whether neighbouring pixels i, j belong
// together (both pixels are known to be "inside").
template <typename Inside, typename Same>
LabelImage label_components(int width, int height, Connectivity conn, Inside inside, Same same,
                            int& n_components) {
  LabelImage out = make_label_image(width, height);
  std::vector<int32_t> parent(1, 0);
  auto& L = out.labels;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int64_t i = static_cast<int64_t>(y) * width + x;
      if (!inside(i)) continue;
      int32_t label = 0;
      auto consider = [&](int64_t j) {
        if (L[j] == 0 || !same(i, j)) return;
        if (label == 0) label = L[j]; else unite(parent, label, L[j]);
      };
      if (x > 0) consider(i - 1);
      if (y > 0) consider(i - width);
      if (conn == Connectivity::Eight && y > 0) {
        if (x > 0) consider(i - width - 1);
        if (x + 1 < width) consider(i - width + 1);
      }
      if (label == 0) {
        label = static_cast<int32_t>(parent.size());
        parent.push_back(label);
      }
      L[i] = label;
    }
  }
  // Final ids 1..n in order of the smallest provisional label (= raster order of first pixel).
  std::vector<int32_t> final_id(parent.size(), 0);
  int32_t next = 0;
  for (size_t k = 1; k < parent.size(); ++k) {
    const int32_t r = find_root(parent, static_cast<int32_t>(k));
    if (final_id[r] == 0) final_id[r] = ++next;
    final_id[k] = final_id[r];
  }
  for (auto& v : L)
    if (v) v = final_id[v];
  n_components = next;
  return out;
}

}  // namespace

LabelImage connected_components(const std::vector<uint8_t>& mask, int width, int height,
                                Connectivity connectivity, int& n_components) {
  UNET_CHECK(width > 0 && height > 0, ShapeError, "connected_components: size must be positive, got ",
             width, "x", height);
  UNET_CHECK(mask.size() == static_cast<size_t>(width) * height, ShapeError,
             "connected_components: mask holds ", mask.size(), " values, ", width, "x", height,
             " needs ", static_cast<size_t>(width) * height);
  return label_components(
      width, height, connectivity, [&](int64_t i) { return mask[i] != 0; },
      [](int64_t, int64_t) { return true; }, n_components);
}

LabelImage connected_components(const std::vector<uint8_t>& mask, int width, int height,
                                Connectivity connectivity) {
  int n = 0;
  return connected_components(mask, width, height, connectivity, n);
}

LabelImage split_disconnected(const LabelImage& labels) {
  validate(labels, "split_disconnected");
  int n = 0;
  const auto& L = labels.labels;
  return label_components(
      labels.width, labels.height, Connectivity::Four, [&](int64_t i) { return L[i] > 0; },
      [&](int64_t i, int64_t j) { return L[i] == L[j]; }, n);
}

}  // namespace unet
