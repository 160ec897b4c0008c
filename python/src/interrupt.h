// python/src/interrupt.h — running a long library call from Python: without the GIL (other Python
// threads run meanwhile), interruptible with Ctrl-C, and with an optional Python progress
// callback. The library asks its ProgressCallback (core/progress.h) before its first tile and
// after each; the callback made here takes the GIL back for that moment, runs pending signal
// handlers (Ctrl-C raises KeyboardInterrupt there) and the user's callback, and tells the
// library to stop when either raised or the user's callback returned False. The Python error is
// then re-raised as it was; a plain False becomes unetcore.CancelledError.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

#include "core/error.h"
#include "core/progress.h"

namespace unetcore_py {

// How many progress checks the last (or current) interruptible call made, and how many found the
// GIL held by the calling thread (none should): a test hook, `unetcore._core._gil_probe()`.
struct GilProbe {
  std::atomic<int64_t> checks{0}, held{0};
};
GilProbe& gil_probe();

class Interruptible {
 public:
  // `progress`: None or a callable (done, total) -> bool | None. Construct with the GIL held.
  explicit Interruptible(pybind11::object progress) : progress_(std::move(progress)) {
    gil_probe().checks = 0;
    gil_probe().held = 0;
  }

  // The check between two units of work, on the thread that runs run(): takes the GIL, runs
  // pending signal handlers, then the Python callback with (done, total). False: stop.
  bool keep_going(int64_t done, int64_t total) {
    ++gil_probe().checks;
    if (PyGILState_Check()) ++gil_probe().held;
    pybind11::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      error_.emplace();  // fetches the KeyboardInterrupt (or whatever a handler raised)
      return false;
    }
    if (progress_.is_none()) return true;
    try {
      const pybind11::object answer = progress_(done, total);
      return answer.is_none() || PyObject_IsTrue(answer.ptr()) != 0;
    } catch (pybind11::error_already_set& e) {
      error_.emplace(std::move(e));
      return false;
    }
  }
  // For SegmentOptions::progress. (Training, TrainingRun's RunObserver, polls the same check:
  // stop_requested = [&] { return !keep_going(step, steps); }.)
  unet::ProgressCallback callback() {
    return [this](int64_t done, int64_t total) { return keep_going(done, total); };
  }

  // Runs `work` with the GIL released; a stop asked by the callback comes back as the Python
  // error that caused it.
  template <typename Work>
  auto run(Work&& work) {
    try {
      pybind11::gil_scoped_release release;
      return work();
    } catch (const unet::CancelledError&) {
      rethrow_python_error();
      throw;  // the progress callback returned False: unetcore.CancelledError
    }
  }
  // The Python error that made keep_going() say stop, if any (for calls that stop without
  // CancelledError, like TrainingRun::train on a stop request). Call with the GIL held.
  void rethrow_python_error() {
    if (error_) {
      pybind11::error_already_set e = std::move(*error_);
      error_.reset();
      throw e;
    }
  }

 private:
  pybind11::object progress_;
  std::optional<pybind11::error_already_set> error_;
};

}  // namespace unetcore_py
