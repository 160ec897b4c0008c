// core/gradient_reducer.h — data-parallel gradients: sums the parameters' gradients over the
// ranks of a Communicator in buckets, each started as soon as the backward pass has delivered
// every gradient in it, so the communication overlaps the rest of the backward pass.
//
// Buckets: the parameters in reverse order (a network's backward pass reaches its last layers
// first), cut into buckets of at most bucket_bytes (a parameter larger than that is a bucket of
// its own). A bucket is a flat float32 buffer on the parameters' device: the gradients are
// copied in when the last of them is ready, the sum runs in place, and finish() copies the
// sums back into the gradients. Buckets start strictly in order, so every rank starts the same
// collectives in the same order (what MPI and NCCL require) whatever order the pass delivers
// gradients in.
//
// Use, per step:  backward(seed, reducer.hook());  reducer.finish();
// Every parameter must receive a gradient in the pass on every rank (all of a U-Net's do); a
// parameter that received none takes part as zeros, and finish() gives it the summed gradient.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/communicator.h"
#include "core/tensor.h"

namespace unet {

class GradientReducer {
 public:
  // The bucket size when 0 is asked: about 8 buckets, at most 25 MiB each (PyTorch DDP's cap),
  // at least 256 KiB. The paper's U-Net (124 MB of gradients) gets 8 buckets of ~15.5 MB, the
  // CPU configuration (7.8 MB) 8 of ~1 MB.
  static int64_t default_bucket_bytes(int64_t gradient_bytes);

  // params: float32 tensors of one device. overlap = false starts every bucket in finish()
  // instead (to measure what the overlap saves). Throws ValueError / DeviceError / DTypeError.
  GradientReducer(std::vector<Tensor> params, Communicator& comm, int64_t bucket_bytes = 0, bool overlap = true);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // For Tensor::backward(seed, hook()): marks parameters ready and starts complete buckets.
  // Arms the reducer for one pass; finish() must follow before the next.
  std::function<void(const Tensor&)> hook();
  // Starts what has not started, waits for every bucket and writes the sums into the
  // parameters' gradients.
  void finish();

  struct Stats {
    int64_t buckets = 0;
    int64_t bytes = 0;              // summed per step by each rank
    int64_t started_in_backward = 0;  // buckets the backward pass started (the rest: finish())
    double overlapped_seconds = 0;  // from the first bucket's start to the end of the backward pass
    double exposed_seconds = 0;     // finish(): waiting for the sums after the backward pass
  };
  const Stats& last_step() const { return stats_; }  // of the last finish()

 private:
  struct Bucket;
  void parameter_ready(const Tensor& leaf);
  void start_ready_buckets();
  void start(Bucket& bucket);

  std::vector<Tensor> params_;
  Communicator& comm_;
  bool overlap_;
  std::vector<Bucket> buckets_;
  size_t next_to_start_ = 0;
  bool armed_ = false;
  double first_start_ = -1.0;
  Stats stats_;
};

}  // namespace unet
