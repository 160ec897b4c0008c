// unet/metrics_thinning.cpp — the ISBI 2012 challenge's border thinning, the step before its
// final measures V_rand (thinned) and V_info (thinned): Fiji Trainable_Segmentation's
// WatershedTransform2D (a Vincent–Soille flooding, as its author wrote it) run with 4-connectivity
// on the binary proposal inverted so that the predicted membrane is high (255) and the predicted
// interior low (0). On a two-level image its flooding reduces to the steps below; the order of
// the queue and of the neighbours decides which side of an even-width membrane keeps the dam, so
// both follow the Java exactly (docs/measures.md).
#include "core/error.h"
#include "unet/metrics.h"

namespace unet {

LabelImage thin_borders(const LabelImage& objects) {
  validate(objects, "thin_borders");
  const int w = objects.width, h = objects.height;
  LabelImage out = objects;
  auto& lab = out.labels;
  // The Java's label states: basins > 0, dams 0 (WSHED), MASK for membrane not yet reached,
  // INQUEUE for membrane waiting in the queue.
  constexpr int32_t kDam = 0, kMask = -2, kQueued = -3;
  bool any_basin = false;
  for (auto& v : lab) {
    if (v > 0) any_basin = true;
    else v = kMask;
  }
  if (!any_basin) {
    // Level 0 is empty, so at level 255 the first pixel starts a new basin whose flood fills the
    // (4-connected) image.
    std::fill(lab.begin(), lab.end(), 1);
    return out;
  }
  // Level 0 (the interior) is labelled already: its basins are its 4-connected components, the
  // objects (their numbering differs from the Java's column-major one, which no measure sees).
  // Level 255: the membrane pixels in the order of the Java's pixel list (x outer, y inner)
  // enter the queue when a 4-neighbour is a basin. Found in raster order (cache-friendly), then
  // bucketed by column, which keeps each column's pixels in y order: the column-major order.
  const auto at = [w](int x, int y) { return static_cast<size_t>(y) * w + x; };
  const int dx[4] = {-1, 0, 1, 0}, dy[4] = {0, -1, 0, 1};  // left, up, right, down
  std::vector<int32_t> seeds;
  std::vector<int32_t> column_start(static_cast<size_t>(w) + 1, 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      if (lab[at(x, y)] != kMask) continue;
      for (int k = 0; k < 4; ++k) {
        const int u = x + dx[k], v = y + dy[k];
        if (u >= 0 && u < w && v >= 0 && v < h && lab[at(u, v)] > 0) {
          seeds.push_back(static_cast<int32_t>(at(x, y)));
          ++column_start[static_cast<size_t>(x) + 1];
          break;
        }
      }
    }
  for (int x = 0; x < w; ++x) column_start[x + 1] += column_start[x];
  std::vector<int32_t> queue(seeds.size());
  for (int32_t i : seeds) {
    queue[column_start[i % w]++] = i;
    lab[static_cast<size_t>(i)] = kQueued;
  }
  queue.reserve(lab.size());
  // The flooding, statement for statement (the flag, a member of no pixel in the Java, records
  // whether the pixel being visited became a dam by meeting a dam: then a basin may still claim it).
  bool flag = false;
  for (size_t head = 0; head < queue.size(); ++head) {
    const size_t p = static_cast<size_t>(queue[head]);
    const int x = static_cast<int>(p % w), y = static_cast<int>(p / w);
    for (int k = 0; k < 4; ++k) {
      const int u = x + dx[k], v = y + dy[k];
      if (u < 0 || u >= w || v < 0 || v >= h) continue;
      const size_t c = at(u, v);
      if (lab[c] > 0) {
        if (lab[p] == kQueued || (lab[p] == kDam && flag)) {
          lab[p] = lab[c];
        } else if (lab[p] > 0 && lab[p] != lab[c]) {
          lab[p] = kDam;
          flag = false;
        }
      } else if (lab[c] == kDam) {
        if (lab[p] == kQueued) {
          lab[p] = kDam;
          flag = true;
        }
      } else if (lab[c] == kMask) {
        lab[c] = kQueued;
        queue.push_back(static_cast<int32_t>(c));
      }
    }
  }
  // The Java then starts new basins at membrane pixels still MASK; there are none: every
  // 4-connected piece of membrane touches the interior somewhere (the image is 4-connected and
  // has interior), so the flood above reached all of it, and every queued pixel met a labelled
  // neighbour (the one that queued it, or a basin) and left the queued state.
  for (auto& v : lab)
    if (v < 0) v = 0;
  return out;
}

}  // namespace unet
