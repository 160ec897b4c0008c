// unet/metrics_warping.cpp — the warping error's core (Jain et al., "Boundary learning by
// optimization with topological constraints", CVPR 2010): simple-point test by a 256-entry
// table of topological numbers, a priority-queue warp (each flip re-examines only its 8
// neighbours, so the cost is O(mismatches · log) instead of repeated full scans), and the
// classification of what remains.
#include <array>
#include <queue>

#include "core/error.h"
#include "unet/metrics.h"

namespace unet {
namespace {

// Ring positions clockwise from the top-left corner; odd positions are the 4-neighbours.
constexpr int kDx[8] = {-1, 0, 1, 1, 1, 0, -1, -1};
constexpr int kDy[8] = {-1, -1, -1, 0, 1, 1, 1, 0};

struct Topology {
  uint8_t fg4 = 0;  // T4(x, fg): 4-components of fg in N8*(x) that touch a 4-neighbour of x
  uint8_t bg8 = 0;  // T8(x, bg): 8-components of bg in N8*(x)
};

// Components of ring positions whose bit equals `value`; adjacency on the ring: consecutive
// positions are 4-adjacent; two 4-neighbours two steps apart (e.g. top and right) are
// 8-adjacent through the corner.
int ring_components(uint8_t ring, int value, bool eight, bool need_four_neighbour) {
  std::array<int, 8> comp;
  comp.fill(-1);
  int count = 0;
  for (int s = 0; s < 8; ++s) {
    if (((ring >> s) & 1) != value || comp[s] >= 0) continue;
    bool touches = false;
    std::array<int, 8> stack;
    int top = 0;
    stack[top++] = s;
    comp[s] = count;
    while (top) {
      const int p = stack[--top];
      if (p % 2 == 1) touches = true;
      int nb[4] = {(p + 1) % 8, (p + 7) % 8, -1, -1};
      if (eight && p % 2 == 1) { nb[2] = (p + 2) % 8; nb[3] = (p + 6) % 8; }
      for (int q : nb) {
        if (q < 0 || ((ring >> q) & 1) != value || comp[q] >= 0) continue;
        comp[q] = count;
        stack[top++] = q;
      }
    }
    if (!need_four_neighbour || touches) ++count;
  }
  return count;
}

const std::array<Topology, 256>& topology_table() {
  static const std::array<Topology, 256> table = [] {
    std::array<Topology, 256> t{};
    for (int r = 0; r < 256; ++r) {
      t[r].fg4 = static_cast<uint8_t>(ring_components(static_cast<uint8_t>(r), 1, false, true));
      t[r].bg8 = static_cast<uint8_t>(ring_components(static_cast<uint8_t>(r), 0, true, false));
    }
    return t;
  }();
  return table;
}

uint8_t ring_of(const std::vector<uint8_t>& m, int x, int y, int w, int h) {
  uint8_t r = 0;
  for (int s = 0; s < 8; ++s) {
    const int nx = x + kDx[s], ny = y + kDy[s];
    if (nx >= 0 && ny >= 0 && nx < w && ny < h && m[static_cast<size_t>(ny) * w + nx])
      r |= static_cast<uint8_t>(1u << s);
  }
  return r;
}

}  // namespace

bool is_simple_point(uint8_t ring) {
  const Topology t = topology_table()[ring];
  return t.fg4 == 1 && t.bg8 == 1;
}

WarpingCounts warp_and_classify(const std::vector<uint8_t>& truth_fg,
                                const std::vector<uint8_t>& prediction_fg,
                                const std::vector<float>& confidence, int width, int height,
                                std::vector<uint8_t>* warped) {
  const size_t n = static_cast<size_t>(width) * height;
  UNET_CHECK(width > 0 && height > 0 && truth_fg.size() == n && prediction_fg.size() == n &&
                 confidence.size() == n,
             ShapeError, "warp_and_classify: truth (", truth_fg.size(), "), prediction (",
             prediction_fg.size(), ") and confidence (", confidence.size(),
             ") must all hold width*height = ", n, " values");
  const auto& table = topology_table();
  std::vector<uint8_t> L(n);
  std::vector<uint8_t> B(n);
  for (size_t i = 0; i < n; ++i) {
    L[i] = truth_fg[i] ? 1 : 0;
    B[i] = prediction_fg[i] ? 1 : 0;
  }
  auto simple = [&](int x, int y) {
    const Topology t = table[ring_of(L, x, y, width, height)];
    return t.fg4 == 1 && t.bg8 == 1;
  };
  // Max-heap on (confidence, index): most confident first, ties by index (deterministic).
  std::priority_queue<std::pair<float, int64_t>> queue;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const size_t i = static_cast<size_t>(y) * width + x;
      if (L[i] != B[i] && simple(x, y)) queue.emplace(confidence[i], static_cast<int64_t>(i));
    }
  WarpingCounts c;
  while (!queue.empty()) {
    const int64_t i = queue.top().second;
    queue.pop();
    const int x = static_cast<int>(i % width), y = static_cast<int>(i / width);
    if (L[i] == B[i] || !simple(x, y)) continue;  // stale entry: a neighbour changed it
    L[i] = B[i];
    ++c.flips;
    for (int s = 0; s < 8; ++s) {
      const int nx = x + kDx[s], ny = y + kDy[s];
      if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
      const size_t j = static_cast<size_t>(ny) * width + nx;
      if (L[j] != B[j] && simple(nx, ny)) queue.emplace(confidence[j], static_cast<int64_t>(j));
    }
  }
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const size_t i = static_cast<size_t>(y) * width + x;
      if (L[i] == B[i]) continue;
      ++c.mismatches;
      const Topology t = table[ring_of(L, x, y, width, height)];
      if (t.fg4 >= 2) {
        // Adding x joins several objects; removing it cuts one apart.
        if (L[i] == 0) ++c.merges; else ++c.splits;
      } else if (t.fg4 == 0) {
        if (L[i] == 0) ++c.additions; else ++c.deletions;
      } else {
        ++c.holes;  // fg4 == 1 and bg8 != 1: a hole is created or filled
      }
    }
  if (warped) *warped = std::move(L);
  return c;
}

}  // namespace unet
