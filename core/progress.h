// core/progress.h — how a long library call (segmenting a stack, training) tells its caller how
// far it is and learns that it should stop. The call invokes the callback before its first unit
// of work and after each one (a tile, a step) on the calling thread; a callback that returns
// false makes the call stop there and throw CancelledError. The library itself never prints and
// never looks at signals: a program's progress bar, a Python Ctrl-C check or a GUI's cancel
// button all live in the callback.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "core/error.h"

namespace unet {

// (units done, units in all) -> keep going?
using ProgressCallback = std::function<bool(int64_t done, int64_t total)>;

// Counts a call's units of work and asks the callback (if any) after each.
class ProgressCounter {
 public:
  // `what` names the call and its unit in the CancelledError ("segment_image", "tiles").
  ProgressCounter(ProgressCallback callback, int64_t total, std::string what, std::string unit)
      : callback_(std::move(callback)), total_(total), what_(std::move(what)), unit_(std::move(unit)) {
    ask();
  }
  // One more unit done; throws CancelledError if the callback says stop.
  void advance() {
    ++done_;
    ask();
  }
  int64_t done() const { return done_; }
  int64_t total() const { return total_; }

 private:
  void ask() {
    if (callback_ && !callback_(done_, total_))
      throw CancelledError(detail::message(what_, ": stopped by the caller after ", done_, " of ", total_, " ",
                                           unit_));
  }
  ProgressCallback callback_;
  int64_t total_;
  int64_t done_ = 0;
  std::string what_, unit_;
};

}  // namespace unet
