// kernels/sim/tensor_core.cpp — the warp-level matrix instructions of the simulator
// (declarations and contract in tensor_core.h). The fragment layouts below are the PTX ISA's
// ("Matrix fragments for mma.m16n8k8" and "mma.m16n8k16", "Warp-level matrix load instruction:
// ldmatrix"), written once here; tests/kernels/tensor_core_probe.cu states them again on its
// own, so a slip in either shows up (and on a GPU the same tests check the hardware).
//
// With lane = 4·group + t (group = lane / 4, t = lane % 4):
//   m16n8k8 .tf32   a_i (i = 0..3): row group + 8·(i & 1),       col t + 4·(i >> 1)
//                   b_i (i = 0..1): row (k) t + 4·i,              col group
//   m16n8k16 .bf16  element e of A (e = 0..7, register e / 2, low half first):
//                                   row group + 8·((e >> 1) & 1), col 2t + (e & 1) + 8·(e >> 2)
//                   element e of B (e = 0..3): row (k) 2t + (e & 1) + 8·(e >> 1), col group
//   C and D (both)  c_i (i = 0..3): row group + 8·(i >> 1),       col 2t + (i & 1)
//
// The arithmetic: each product of two TF32 or BF16 values is exact in double, and the sum of the
// K products and c is formed in double and rounded once to FP32. PTX does not say in which order
// or with which intermediate rounding the hardware accumulates, so results can differ from a GPU
// in the last bits of FP32; tests compare with tolerances, never bit for bit. A TF32 operand must
// be a TF32 value (low 13 bits zero, or NaN/Inf): PTX defines the instruction on .tf32 data, and
// the simulator refuses anything else rather than guess what the hardware does with the extra
// bits, so a kernel that forgets cvt.rna.tf32.f32 is caught here.
#include "kernels/sim/tensor_core.h"

#include <cstring>
#include <numeric>

#include "core/precision.h"
#include "kernels/sim/block_runner.h"

namespace unet::sim::detail {
namespace {

struct MmaLane {
  float* d;
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
};

constexpr int group_of(int lane) { return lane >> 2; }
constexpr int t_of(int lane) { return lane & 3; }

// C/D fragment position of register i of `lane` (both shapes).
constexpr int cd_row(int lane, int i) { return group_of(lane) + 8 * (i >> 1); }
constexpr int cd_col(int lane, int i) { return 2 * t_of(lane) + (i & 1); }

// D = A·B + C over K, each sum in double, rounded once.
template <int K>
void multiply(const double (&a)[16][K], const double (&b)[K][8], const double (&c)[16][8], void* const* lanes) {
  for (int lane = 0; lane < 32; ++lane) {
    const MmaLane& l = *static_cast<const MmaLane*>(lanes[lane]);
    for (int i = 0; i < 4; ++i) {
      const int row = cd_row(lane, i), col = cd_col(lane, i);
      double s = c[row][col];
      for (int k = 0; k < K; ++k) s += a[row][k] * b[k][col];
      l.d[i] = static_cast<float>(s);
    }
  }
}

void read_c(void* const* lanes, double (&c)[16][8]) {
  for (int lane = 0; lane < 32; ++lane) {
    const MmaLane& l = *static_cast<const MmaLane*>(lanes[lane]);
    for (int i = 0; i < 4; ++i) c[cd_row(lane, i)][cd_col(lane, i)] = l.c[i];
  }
}

double tf32_operand(uint32_t bits, const char* which, int lane, int i, const char* file, int line) {
  const bool special = (bits & 0x7F800000u) == 0x7F800000u;
  if (!special && (bits & 0x1FFFu) != 0) {
    exchange_fault(unet::detail::message("mma.sync.m16n8k8 .tf32: operand ", which, i, " of lane ", lane, " is 0x",
                                         std::hex, bits, std::dec,
                                         ", not a TF32 value (its low 13 bits are not zero); round it with "
                                         "cvt.rna.tf32.f32 (tc::tf32_bits) first"),
                   file, line);
  }
  return static_cast<double>(std::bit_cast<float>(bits));
}

void mma_tf32_exchange(void* const* lanes, const char* file, int line) {
  double a[16][8], b[8][8], c[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const MmaLane& l = *static_cast<const MmaLane*>(lanes[lane]);
    const int g = group_of(lane), t = t_of(lane);
    for (int i = 0; i < 4; ++i) a[g + 8 * (i & 1)][t + 4 * (i >> 1)] = tf32_operand(l.a[i], "a", lane, i, file, line);
    for (int i = 0; i < 2; ++i) b[t + 4 * i][g] = tf32_operand(l.b[i], "b", lane, i, file, line);
  }
  read_c(lanes, c);
  multiply(a, b, c, lanes);
}

double bf16_element(uint32_t reg, int e) { return bf16_to_float(static_cast<uint16_t>(reg >> (16 * (e & 1)))); }

void mma_bf16_exchange(void* const* lanes, const char*, int) {
  double a[16][16], b[16][8], c[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const MmaLane& l = *static_cast<const MmaLane*>(lanes[lane]);
    const int g = group_of(lane), t = t_of(lane);
    for (int e = 0; e < 8; ++e)
      a[g + 8 * ((e >> 1) & 1)][2 * t + (e & 1) + 8 * (e >> 2)] = bf16_element(l.a[e >> 1], e);
    for (int e = 0; e < 4; ++e) b[2 * t + (e & 1) + 8 * (e >> 1)][g] = bf16_element(l.b[e >> 1], e);
  }
  read_c(lanes, c);
  multiply(a, b, c, lanes);
}

// ---- ldmatrix -----------------------------------------------------------------------------------
// Matrix m (8 rows of 8 b16 values, each row 16 contiguous bytes) takes its row r from the
// address given by lane 8m + r. Lane l receives, per matrix, one 32-bit word: row l / 4, values
// 2(l % 4) and 2(l % 4) + 1 (low half first); with .trans, column l / 4, rows 2(l % 4) and
// 2(l % 4) + 1, i.e. the same word of the transposed matrix.
struct LdmatrixLane {
  uint32_t* out;
  const unsigned char* row;
};

template <int Count, bool Trans>
void ldmatrix_exchange(void* const* lanes, const char* file, int line) {
  const unsigned char* rows[Count][8];
  for (int m = 0; m < Count; ++m) {
    for (int r = 0; r < 8; ++r) {
      const unsigned char* p = static_cast<const LdmatrixLane*>(lanes[8 * m + r])->row;
      if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
        exchange_fault(unet::detail::message("ldmatrix.x", Count, Trans ? ".trans" : "", ": lane ", 8 * m + r,
                                             " gives row address ", static_cast<const void*>(p),
                                             ", which is not 16-byte aligned"),
                       file, line);
      }
      rows[m][r] = p;
    }
  }
  const auto value = [&](int m, int r, int col) {  // b16 value (r, col) of matrix m
    uint16_t v;
    std::memcpy(&v, rows[m][r] + 2 * col, 2);
    return static_cast<uint32_t>(v);
  };
  for (int lane = 0; lane < 32; ++lane) {
    const LdmatrixLane& l = *static_cast<const LdmatrixLane*>(lanes[lane]);
    const int g = group_of(lane), t = t_of(lane);
    for (int m = 0; m < Count; ++m) {
      l.out[m] = Trans ? value(m, 2 * t, g) | value(m, 2 * t + 1, g) << 16
                       : value(m, g, 2 * t) | value(m, g, 2 * t + 1) << 16;
    }
  }
}

template <int Count, bool Trans>
constexpr const char* ldmatrix_name() {
  if constexpr (Count == 1) return Trans ? "ldmatrix.x1.trans" : "ldmatrix.x1";
  else if constexpr (Count == 2) return Trans ? "ldmatrix.x2.trans" : "ldmatrix.x2";
  else return Trans ? "ldmatrix.x4.trans" : "ldmatrix.x4";
}

template <int Count, bool Trans>
void ldmatrix_n(uint32_t* out, const void* row, const char* file, int line) {
  LdmatrixLane me{out, static_cast<const unsigned char*>(row)};
  warp_exchange(&ldmatrix_exchange<Count, Trans>, ldmatrix_name<Count, Trans>(), &me, file, line);
}

BlockRunner& runner_for(const char* what, const char* file, int line) {
  BlockRunner* runner = tls_active_runner;
  if (runner == nullptr)
    throw KernelError(unet::detail::message(what, " at ", file, ":", line, " called outside a simulated kernel"));
  return *runner;
}

}  // namespace

void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                      const char* file, int line) {
  MmaLane me{d, a, b, c};
  warp_exchange(&mma_tf32_exchange, "mma.sync.m16n8k8.tf32", &me, file, line);
}

void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                       const char* file, int line) {
  MmaLane me{d, a, b, c};
  warp_exchange(&mma_bf16_exchange, "mma.sync.m16n8k16.bf16", &me, file, line);
}

void ldmatrix(uint32_t* out, int count, bool trans, const void* row, const char* file, int line) {
  switch (count * 2 + (trans ? 1 : 0)) {
    case 2: return ldmatrix_n<1, false>(out, row, file, line);
    case 3: return ldmatrix_n<1, true>(out, row, file, line);
    case 4: return ldmatrix_n<2, false>(out, row, file, line);
    case 5: return ldmatrix_n<2, true>(out, row, file, line);
    case 8: return ldmatrix_n<4, false>(out, row, file, line);
    case 9: return ldmatrix_n<4, true>(out, row, file, line);
    default:
      runner_for("ldmatrix", file, line)
          .fault(unet::detail::message("ldmatrix with ", count, " matrices: PTX has .x1, .x2 and .x4"), file, line);
  }
}

// ---- cp.async -----------------------------------------------------------------------------------

void cp_async(void* dst, const void* src, int cp_size, int src_size, const char* file, int line) {
  BlockRunner& runner = runner_for("cp.async", file, line);
  if (cp_size != 4 && cp_size != 8 && cp_size != 16)
    runner.fault(unet::detail::message("cp.async of ", cp_size, " bytes: PTX copies 4, 8 or 16"), file, line);
  if (src_size < 0 || src_size > cp_size)
    runner.fault(unet::detail::message("cp.async with src-size ", src_size, ": it must lie in [0, ", cp_size, "]"),
                 file, line);
  if (reinterpret_cast<uintptr_t>(dst) % cp_size != 0 || (src_size > 0 && reinterpret_cast<uintptr_t>(src) % cp_size != 0))
    runner.fault(unet::detail::message("cp.async of ", cp_size, " bytes from ", src, " to ", dst,
                                       ": both addresses must be aligned to the copy size"),
                 file, line);
  AsyncCopy copy;
  copy.dst = static_cast<unsigned char*>(dst);
  copy.bytes = static_cast<uint8_t>(cp_size);
  if (src_size > 0) std::memcpy(copy.data, src, static_cast<size_t>(src_size));
  unsigned char poison[4];
  std::memcpy(poison, &kSharedMemoryPoison, 4);
  for (int i = 0; i < cp_size; ++i) copy.dst[i] = poison[i % 4];  // in flight: not there yet
  runner.async_copies().copies.push_back(copy);
}

void cp_async_commit_group() {
  AsyncCopies& state = runner_for("cp.async.commit_group", "", 0).async_copies();
  const size_t committed = std::accumulate(state.groups.begin(), state.groups.end(), size_t{0});
  state.groups.push_back(static_cast<uint32_t>(state.copies.size() - committed));
}

void cp_async_wait_group(int pending, const char* file, int line) {
  AsyncCopies& state = runner_for("cp.async.wait_group", file, line).async_copies();
  size_t landed = 0, groups = 0;
  while (state.groups.size() - groups > static_cast<size_t>(pending < 0 ? 0 : pending)) landed += state.groups[groups++];
  for (size_t i = 0; i < landed; ++i) std::memcpy(state.copies[i].dst, state.copies[i].data, state.copies[i].bytes);
  state.copies.erase(state.copies.begin(), state.copies.begin() + static_cast<std::ptrdiff_t>(landed));
  state.groups.erase(state.groups.begin(), state.groups.begin() + static_cast<std::ptrdiff_t>(groups));
}

}  // namespace unet::sim::detail
