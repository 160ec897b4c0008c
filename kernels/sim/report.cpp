// kernels/sim/report.cpp — the words of the simulator's KernelError messages: which block and
// thread, which barrier or collective (file:line), and what every other thread was doing when
// the block got stuck. Each message names the kernel, its launch site and the schedule, so the
// failure can be reproduced with UNET_SIM_SCHEDULE.
#include <sstream>
#include <vector>

#include "kernels/sim/block_runner.h"

namespace unet::sim::detail {
namespace {

// "0-15,17,20-31"
std::string lane_list(unsigned lanes) {
  std::ostringstream s;
  bool first = true;
  for (int lane = 0; lane < 32;) {
    if (!(lanes >> lane & 1u)) {
      ++lane;
      continue;
    }
    int end = lane;
    while (end + 1 < 32 && (lanes >> (end + 1) & 1u)) ++end;
    s << (first ? "" : ",") << lane;
    if (end > lane) s << "-" << end;
    first = false;
    lane = end + 1;
  }
  return first ? std::string("none") : s.str();
}

}  // namespace

std::string BlockRunner::thread_name(unsigned linear) const { return format_index(threads_[linear].idx); }

std::string BlockRunner::block_context() const {
  std::ostringstream s;
  s << "in block " << format_index(block_idx_) << " of kernel";
  if (site_.kernel_name != nullptr) s << " `" << site_.kernel_name << "`";
  s << " (blockDim " << format_index(uint3{block_dim_.x, block_dim_.y, block_dim_.z})
    << ", launched at " << site_.file << ":" << site_.line << ", schedule "
    << to_string(schedule_) << ")";
  return s.str();
}

std::string BlockRunner::describe_wait(unsigned linear) const {
  if (linear >= n_) return unet::detail::message("does not exist (the block has ", n_, " threads)");
  const SimThread& t = threads_[linear];
  switch (t.state) {
    case ThreadState::Done: return "exited";
    case ThreadState::AtBarrier:
      return unet::detail::message("waits at ", barrier_name(t.barrier), " at ", t.site.file, ":",
                                   t.site.line);
    case ThreadState::AtWarp:
      return unet::detail::message("waits at ", collective_name(t.warp_op, t.warp_name), " at ", t.site.file, ":",
                                   t.site.line);
    default: return "is runnable";
  }
}

// Called when no thread can run but some still wait: explains why they never will.
std::string BlockRunner::describe_stall() const {
  std::ostringstream s;
  // A warp collective that misses lanes is the more specific diagnosis: report it first.
  for (unsigned w = 0; w < warps_.size(); ++w) {
    for (const Collective& c : warps_[w]) {
      const unsigned missing = c.mask & ~c.arrived;
      if (missing == 0) continue;
      s << "divergent warp collective: " << collective_name(c.op, c.name) << " at " << c.site.file << ":"
        << c.site.line << " with mask 0x" << std::hex << c.mask << std::dec << " in warp " << w
        << " " << block_context() << ": lanes " << lane_list(c.arrived)
        << " arrived, but not every lane named in the mask did;";
      int listed = 0;
      for (int lane = 0; lane < 32; ++lane) {
        if (!(missing >> lane & 1u)) continue;
        if (listed == 4) {
          s << " (lanes " << lane_list(missing) << " are missing in all)";
          break;
        }
        const unsigned linear = w * 32 + lane;
        s << (listed ? ";" : "") << " lane " << lane;
        if (linear < n_) s << " (thread " << thread_name(linear) << ")";
        s << " " << describe_wait(linear);
        ++listed;
      }
      return s.str();
    }
  }

  // Otherwise threads wait at block barriers that not every thread reaches.
  struct Group {
    WaitSite site;
    BarrierKind kind;
    unsigned count;
    unsigned example;
  };
  std::vector<Group> groups;
  std::vector<unsigned> exited;
  for (unsigned i = 0; i < n_; ++i) {
    const SimThread& t = threads_[i];
    if (t.state == ThreadState::Done) {
      exited.push_back(i);
    } else if (t.state == ThreadState::AtBarrier) {
      bool found = false;
      for (Group& g : groups) {
        if (g.kind == t.barrier && same_site(g.site, t.site)) {
          ++g.count;
          found = true;
          break;
        }
      }
      if (!found) groups.push_back({t.site, t.barrier, 1, i});
    }
  }
  if (groups.size() == 1) {
    const Group& g = groups.front();
    s << barrier_name(g.kind) << " at " << g.site.file << ":" << g.site.line
      << " is not reached by every thread " << block_context() << ": " << g.count << " of " << n_
      << " threads wait there (e.g. thread " << thread_name(g.example) << ")";
  } else {
    s << "threads wait at different barriers " << block_context() << ":";
    for (size_t k = 0; k < groups.size(); ++k) {
      const Group& g = groups[k];
      s << (k ? ";" : "") << " " << g.count << " threads at " << barrier_name(g.kind) << " at "
        << g.site.file << ":" << g.site.line << " (e.g. thread " << thread_name(g.example) << ")";
    }
  }
  if (!exited.empty()) {
    s << "; " << exited.size() << " threads exited without reaching it: thread";
    for (size_t k = 0; k < exited.size() && k < 4; ++k) s << (k ? ", " : " ") << thread_name(exited[k]);
    if (exited.size() > 4) s << ", ...";
  }
  return s.str();
}

}  // namespace unet::sim::detail
