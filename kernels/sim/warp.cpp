// kernels/sim/warp.cpp — warp collectives (shuffles, votes, __syncwarp) for the simulator.
//
// Lanes of a warp deposit their operand in a Collective record; the last lane named in the mask
// to arrive computes every lane's result and wakes the others, so the common case costs one
// suspension per waiting lane. A lane joins the open record with the same op, file:line and
// mask; a lane that calls a different collective (or none) leaves the record incomplete, and the
// block runner reports it once the block is stuck.
#include <bit>

#include "kernels/sim/block_runner.h"

namespace unet::sim::detail {

const char* warp_op_name(WarpOp op) {
  switch (op) {
    case WarpOp::Sync: return "__syncwarp()";
    case WarpOp::ShflIdx: return "__shfl_sync()";
    case WarpOp::ShflUp: return "__shfl_up_sync()";
    case WarpOp::ShflDown: return "__shfl_down_sync()";
    case WarpOp::ShflXor: return "__shfl_xor_sync()";
    case WarpOp::Ballot: return "__ballot_sync()";
    case WarpOp::Any: return "__any_sync()";
    case WarpOp::All: return "__all_sync()";
    case WarpOp::Exchange: return "warp-level matrix instruction";
  }
  return "warp collective";
}

void BlockRunner::fault(const std::string& what, const char* file, int line) {
  throw SimFault(unet::detail::message(what, " at ", file, ":", line, " by thread ",
                                       thread_name(static_cast<unsigned>(current_ - threads_.data())),
                                       " ", block_context()));
}

[[gnu::always_inline]] inline uint64_t BlockRunner::collective(WarpOp op, unsigned mask, uint64_t value, int operand, int width,
                                 const char* file, int line, ExchangeFn exchange,
                                 const char* name) {
  SimThread& me = *current_;
  const unsigned linear = static_cast<unsigned>(&me - threads_.data());
  const unsigned warp = linear / 32;
  const unsigned lane = linear % 32;
  if (!(mask >> lane & 1u)) {
    fault(unet::detail::message(collective_name(op, name), " with mask 0x", std::hex, mask, std::dec,
                                " called by lane ", lane, ", which the mask does not name"),
          file, line);
  }
  if (width < 1 || width > 32 || !std::has_single_bit(static_cast<unsigned>(width))) {
    fault(unet::detail::message(warp_op_name(op), " with width ", width,
                                ": the width must be a power of two from 1 to 32"),
          file, line);
  }

  const WaitSite site{file, line};
  std::vector<Collective>& open = warps_[warp];
  size_t k = 0;
  while (k < open.size() && !(open[k].op == op && open[k].mask == mask && open[k].exchange == exchange &&
                               same_site(open[k].site, site)))
    ++k;
  if (k == open.size()) {
    Collective& c = open.emplace_back();
    c.op = op;
    c.mask = mask;
    c.arrived = 0;
    c.width = width;
    c.exchange = exchange;
    c.name = name;
    c.site = site;
  }
  Collective& c = open[k];
  c.values[lane] = value;
  c.operands[lane] = operand;
  c.arrived |= 1u << lane;

  if (c.arrived != c.mask) {
    me.state = ThreadState::AtWarp;
    me.site = site;
    me.warp_op = op;
    me.warp_name = name;
    suspend();
    return me.result;
  }
  complete(c, warp);  // may fault; the record is then left for abort_all's bookkeeping only
  open[k] = open.back();
  open.pop_back();
  for (unsigned rest = mask & ~(1u << lane); rest != 0; rest &= rest - 1) {
    SimThread& t = threads_[warp * 32 + static_cast<unsigned>(std::countr_zero(rest))];
    t.state = ThreadState::Runnable;
    ++runnable_;
  }
  return me.result;
}

// Computes every participating lane's result (shuffle source lanes follow PTX shfl.sync with
// CUDA's clamp values: a source outside the lane's width segment yields the lane's own value).
void BlockRunner::complete(Collective& c, unsigned warp) {
  if (c.op == WarpOp::Exchange) {
    void* lanes[32];
    for (int lane = 0; lane < 32; ++lane) lanes[lane] = reinterpret_cast<void*>(c.values[lane]);
    c.exchange(lanes, c.site.file, c.site.line);
    return;
  }
  unsigned ballot = 0;
  for (unsigned rest = c.mask; rest != 0; rest &= rest - 1) {
    const int lane = std::countr_zero(rest);
    if (c.values[lane] != 0) ballot |= 1u << lane;
  }
  const int segment = 32 - c.width;  // PTX's segmask: the lane bits that pick the segment
  for (unsigned rest = c.mask; rest != 0; rest &= rest - 1) {
    const int lane = std::countr_zero(rest);
    const int first = lane & segment;           // first lane of this lane's segment
    const int last = first | (31 & ~segment);   // last lane of this lane's segment
    const int b = c.operands[lane] & 31;
    int src = lane;
    uint64_t result = 0;
    switch (c.op) {
      case WarpOp::Sync: break;
      case WarpOp::Ballot: result = ballot; break;
      case WarpOp::Any: result = ballot != 0 ? 1 : 0; break;
      case WarpOp::All: result = ballot == c.mask ? 1 : 0; break;
      case WarpOp::ShflIdx: src = first | (b & ~segment); break;
      case WarpOp::ShflUp: src = lane - b >= first ? lane - b : lane; break;
      case WarpOp::ShflDown: src = lane + b <= last ? lane + b : lane; break;
      case WarpOp::ShflXor: src = (lane ^ b) <= last ? lane ^ b : lane; break;
    }
    if (c.op == WarpOp::ShflIdx || c.op == WarpOp::ShflUp || c.op == WarpOp::ShflDown ||
        c.op == WarpOp::ShflXor) {
      if (!(c.mask >> src & 1u)) {
        current_ = &threads_[warp * 32 + lane];
        fault(unet::detail::message(warp_op_name(c.op), " with mask 0x", std::hex, c.mask,
                                    std::dec, ": lane ", lane, " reads lane ", src,
                                    ", which the mask does not name (its value is undefined)"),
              c.site.file, c.site.line);
      }
      result = c.values[src];
    }
    threads_[warp * 32 + lane].result = result;
  }
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int operand, int width,
                         const char* file, int line) {
  BlockRunner* runner = tls_active_runner;
  if (runner == nullptr) {
    throw KernelError(unet::detail::message(warp_op_name(op), " at ", file, ":", line,
                                            " called outside a simulated kernel"));
  }
  return runner->collective(op, mask, value, operand, width, file, line);
}

void warp_exchange(ExchangeFn compute, const char* name, void* lane_data, const char* file, int line) {
  BlockRunner* runner = tls_active_runner;
  if (runner == nullptr) {
    throw KernelError(unet::detail::message(name, " at ", file, ":", line, " called outside a simulated kernel"));
  }
  // The matrix instructions are .sync.aligned: every lane of the warp executes the same one.
  (void)runner->collective(WarpOp::Exchange, 0xFFFFFFFFu, reinterpret_cast<uint64_t>(lane_data), 0, 32, file, line,
                           compute, name);
}

void exchange_fault(const std::string& what, const char* file, int line) {
  BlockRunner* runner = tls_active_runner;
  if (runner == nullptr) throw KernelError(unet::detail::message(what, " at ", file, ":", line));
  runner->fault(what, file, line);
}

}  // namespace unet::sim::detail
