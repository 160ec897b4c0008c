// examples/progress.h — the examples' progress display: a one-line bar with rate and ETA that
// redraws in place on a terminal, and plain log lines every few seconds otherwise (CI logs,
// pipes). Header-only so every example program can use it.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

namespace unet::examples {

class Progress {
 public:
  Progress(std::string label, int64_t total)
      : label_(std::move(label)), total_(total), tty_(isatty(fileno(stdout)) != 0),
        start_(std::chrono::steady_clock::now()), last_(start_) {}

  // The work also ends after `seconds` (a time budget): the bar and the ETA show whichever end
  // comes first. 0 = no budget.
  void set_time_limit(double seconds) { time_limit_ = seconds; }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  // `done` items finished; `detail` is appended (e.g. "loss 0.412").
  void update(int64_t done, const std::string& detail, bool force = false) {
    const auto now = std::chrono::steady_clock::now();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    if (!force && since_last < (tty_ ? 0.2 : 10.0) && done < total_) return;
    last_ = now;
    const double t = elapsed(), rate = done > 0 ? done / t : 0.0;
    double eta = rate > 0 ? (total_ - done) / rate : 0.0;
    double fraction = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 0.0;
    if (time_limit_ > 0) {
      eta = std::min(eta, std::max(0.0, time_limit_ - t));
      fraction = std::max(fraction, std::min(1.0, t / time_limit_));
    }
    if (tty_) {
      constexpr int kWidth = 28;
      const int filled = static_cast<int>(kWidth * fraction);
      std::string bar(filled, '#');
      bar.resize(kWidth, '.');
      std::printf("\r%s [%s] %lld/%lld  %s  %.2f it/s  ETA %s   ", label_.c_str(), bar.c_str(),
                  static_cast<long long>(done), static_cast<long long>(total_), detail.c_str(), rate,
                  format_seconds(eta).c_str());
    } else {
      std::printf("%s %lld/%lld  %s  %.2f it/s  elapsed %s  ETA %s\n", label_.c_str(),
                  static_cast<long long>(done), static_cast<long long>(total_), detail.c_str(), rate,
                  format_seconds(t).c_str(), format_seconds(eta).c_str());
    }
    std::fflush(stdout);
  }

  // Leaves `seconds` (work done between updates that is not part of the counted items, e.g.
  // scoring a validation set) out of elapsed(), the rate and the ETA.
  void exclude_seconds(double seconds) {
    start_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
  }

  void finish() {
    if (tty_) std::printf("\n");
    std::fflush(stdout);
  }

  static std::string format_seconds(double s) {
    char buf[32];
    const int total = static_cast<int>(s + 0.5);
    if (total >= 3600)
      std::snprintf(buf, sizeof buf, "%dh%02dm", total / 3600, (total / 60) % 60);
    else
      std::snprintf(buf, sizeof buf, "%dm%02ds", total / 60, total % 60);
    return buf;
  }

 private:
  std::string label_;
  int64_t total_;
  double time_limit_ = 0.0;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace unet::examples
