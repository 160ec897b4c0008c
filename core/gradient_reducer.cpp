// core/gradient_reducer.cpp — the buckets, the backward hook that fills and starts them, and
// the wait that writes the sums back.
#include "core/gradient_reducer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "core/cuda_runtime.h"

namespace unet {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Copies `count` floats between two buffers of one device.
void copy_floats(float* dst, const float* src, int64_t count, Device device) {
  const size_t bytes = static_cast<size_t>(count) * sizeof(float);
  if (device.is_cpu())
    std::memcpy(dst, src, bytes);
  else
    cuda_rt::memcpy(dst, src, bytes, cuda_rt::CopyKind::DeviceToDevice);
}

}  // namespace

struct GradientReducer::Bucket {
  std::vector<size_t> members;  // indices into params_, in the bucket's layout order
  std::vector<int64_t> offsets; // each member's first element in `flat`
  int64_t size = 0;             // elements of `flat`
  Tensor flat;
  size_t ready = 0;             // members whose gradient this pass has delivered
  std::unique_ptr<PendingSum> pending;
};

int64_t GradientReducer::default_bucket_bytes(int64_t gradient_bytes) {
  return std::clamp<int64_t>(gradient_bytes / 8, int64_t{256} << 10, int64_t{25} << 20);
}

GradientReducer::GradientReducer(std::vector<Tensor> params, Communicator& comm, int64_t bucket_bytes, bool overlap)
    : params_(std::move(params)), comm_(comm), overlap_(overlap) {
  UNET_CHECK(bucket_bytes >= 0, ValueError, "GradientReducer: bucket_bytes must be >= 0 (0 = the default), got ",
             bucket_bytes);
  int64_t total = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    check_float(params_[i], "GradientReducer", "params[i]");
    UNET_CHECK(params_[i].device() == params_[0].device(), DeviceError, "GradientReducer: parameter ", i, " is on ",
               params_[i].device().str(), " but parameter 0 on ", params_[0].device().str(),
               "; one reducer sums the gradients of one device");
    total += params_[i].numel();
  }
  const int64_t cap = (bucket_bytes > 0 ? bucket_bytes : default_bucket_bytes(total * 4)) / 4;
  // Reverse order: the backward pass delivers the last layers' gradients first.
  int64_t filled = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const int64_t n = params_[k].numel();
    if (buckets_.empty() || (filled > 0 && filled + n > cap)) {
      buckets_.emplace_back();
      filled = 0;
    }
    buckets_.back().offsets.push_back(filled);
    buckets_.back().members.push_back(k);
    filled += n;
    buckets_.back().size = filled;
  }
  for (Bucket& b : buckets_) {
    b.flat = Tensor::empty(Shape{b.size}, DType::Float32, params_[0].device());
    stats_.bytes += b.size * 4;
  }
  stats_.buckets = static_cast<int64_t>(buckets_.size());
}

GradientReducer::~GradientReducer() = default;

std::function<void(const Tensor&)> GradientReducer::hook() {
  UNET_CHECK(!armed_, ValueError, "GradientReducer::hook: the previous pass was not finished (call finish())");
  armed_ = true;
  first_start_ = -1.0;
  next_to_start_ = 0;
  stats_.started_in_backward = 0;
  for (Bucket& b : buckets_) b.ready = 0;
  // Which bucket each parameter belongs to, by its TensorImpl (what the engine hands back).
  auto where = std::make_shared<std::unordered_map<const TensorImpl*, size_t>>();
  for (size_t bi = 0; bi < buckets_.size(); ++bi)
    for (size_t m : buckets_[bi].members) (*where)[params_[m].impl().get()] = bi;
  return [this, where](const Tensor& leaf) {
    const auto it = where->find(leaf.impl().get());
    if (it == where->end()) return;  // a leaf that is not one of the parameters (an input)
    ++buckets_[it->second].ready;
    if (overlap_) start_ready_buckets();
  };
}

void GradientReducer::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].ready >= buckets_[next_to_start_].members.size()) {
    start(buckets_[next_to_start_++]);
    ++stats_.started_in_backward;
  }
  // Let MPI move the buckets in flight along (it progresses inside MPI calls).
  for (size_t i = 0; i < next_to_start_; ++i) buckets_[i].pending->test();
}

void GradientReducer::start(Bucket& b) {
  const Device device = b.flat.device();
  float* flat = b.flat.data<float>();
  for (size_t j = 0; j < b.members.size(); ++j) {
    const Tensor& p = params_[b.members[j]];
    const Tensor g = p.grad();
    if (g.defined())
      copy_floats(flat + b.offsets[j], g.data<float>(), p.numel(), device);
    else if (device.is_cpu())
      std::fill(flat + b.offsets[j], flat + b.offsets[j] + p.numel(), 0.0f);
    else
      cuda_rt::memset(flat + b.offsets[j], 0, static_cast<size_t>(p.numel()) * sizeof(float));
  }
  if (first_start_ < 0) first_start_ = now_seconds();
  b.pending = comm_.start_sum(flat, b.flat.numel(), device);
}

void GradientReducer::finish() {
  UNET_CHECK(armed_, ValueError, "GradientReducer::finish: no pass to finish (pass hook() to backward first)");
  armed_ = false;
  const double backward_end = now_seconds();
  while (next_to_start_ < buckets_.size()) start(buckets_[next_to_start_++]);
  for (Bucket& b : buckets_) {
    b.pending->wait();
    b.pending.reset();
    for (size_t j = 0; j < b.members.size(); ++j) {
      Tensor& p = params_[b.members[j]];
      if (!p.grad().defined()) p.impl()->grad = Tensor::empty(p.shape(), DType::Float32, p.device()).impl();
      copy_floats(p.grad().data<float>(), b.flat.data<float>() + b.offsets[j], p.numel(), p.device());
    }
  }
  stats_.overlapped_seconds = std::max(0.0, backward_end - first_start_);
  stats_.exposed_seconds = now_seconds() - backward_end;
}

}  // namespace unet
