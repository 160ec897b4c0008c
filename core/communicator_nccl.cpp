// core/communicator_nccl.cpp — sums of CUDA tensors through NCCL (GPU build with UNET_NCCL): one
// NCCL communicator over the MPI ranks (its unique id broadcast by MPI), one non-blocking stream
// for the collectives, events to order them after the library's kernels.
//
// Besides core/cuda_runtime_gpu.cpp, the one file that calls the CUDA runtime: NCCL works on
// streams and events, which the rest of the library (every kernel on CUDA's per-thread default
// stream, core/cuda_runtime.h) never needs.
//
// Ordering: a sum records an event on the legacy stream, its stream waits for it, so the
// collective reads the data only after every kernel launched before it (the backward pass that
// wrote the gradients: the legacy stream waits for every blocking stream, the per-thread default
// streams of the library's kernels included, on every thread), while the kernels launched after
// it run beside it: the overlap (the NCCL stream is non-blocking). Not capturable into a CUDA
// graph (the legacy stream is refused during a capture): data-parallel steps run eagerly. Waiting
// polls the sum's completion event (and NCCL's asynchronous error) with the communicator's time
// limit, so a stalled rank ends in DistributedError, not a hang.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <thread>

#include "core/communicator_mpi.h"
#include "core/cuda_check.h"

#define UNET_NCCL_CHECK(expr)                                                                        \
  do {                                                                                               \
    const ncclResult_t unet_nccl_status_ = (expr);                                                   \
    if (unet_nccl_status_ != ncclSuccess)                                                            \
      UNET_THROW(::unet::DistributedError, #expr, " failed: ", ncclGetErrorString(unet_nccl_status_)); \
  } while (0)

namespace unet {
namespace {

std::string version_text(int code) {
  // NCCL_VERSION_CODE = major * 10000 + minor * 100 + patch (since 2.9).
  return "NCCL " + std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." +
         std::to_string(code % 100);
}

class PendingNccl final : public PendingSum {
 public:
  PendingNccl(ncclComm_t comm, cudaEvent_t done, double timeout, int64_t count)
      : comm_(comm), done_(done), timeout_(timeout), count_(count) {}
  ~PendingNccl() override { cudaEventDestroy(done_); }

  bool test() override {
    if (complete_) return true;
    const cudaError_t e = cudaEventQuery(done_);
    if (e == cudaSuccess) return complete_ = true;
    if (e != cudaErrorNotReady) UNET_CUDA_CHECK(e);
    ncclResult_t async = ncclSuccess;
    UNET_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    UNET_CHECK(async == ncclSuccess || async == ncclInProgress, DistributedError, "NCCL sum of ", count_,
               " floats failed: ", ncclGetErrorString(async));
    return false;
  }
  void wait() override {
    const auto start = std::chrono::steady_clock::now();
    while (!test()) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited >= timeout_) {
        ncclCommAbort(comm_);  // frees the stream of the stalled collective; the job is over anyway
        UNET_THROW(DistributedError, "an NCCL sum of ", count_, " floats waited ", waited,
                   " s for the other ranks (the limit is ", timeout_,
                   " s, UNET_COLLECTIVE_TIMEOUT): a rank has died or stalled");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

 private:
  ncclComm_t comm_;
  cudaEvent_t done_;
  double timeout_;
  int64_t count_;
  bool complete_ = false;
};

class NcclSums final : public DeviceSums {
 public:
  NcclSums(MPI_Comm mpi, int rank, int size) {
    ncclUniqueId id;
    if (rank == 0) UNET_NCCL_CHECK(ncclGetUniqueId(&id));
    check_mpi(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, mpi), "MPI_Bcast of the NCCL unique id");
    UNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    UNET_NCCL_CHECK(ncclCommInitRank(&comm_, size, id, rank));
    int code = 0;
    UNET_NCCL_CHECK(ncclGetVersion(&code));
    version_ = version_text(code);
  }
  ~NcclSums() override {
    cudaStreamSynchronize(stream_);
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  std::unique_ptr<PendingSum> start_sum(float* data, int64_t count, double timeout) override {
    cudaEvent_t ready, done;
    UNET_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    UNET_CUDA_CHECK(cudaEventRecord(ready, cudaStreamLegacy));
    UNET_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    cudaEventDestroy(ready);  // released once the wait it orders has been enqueued
    UNET_NCCL_CHECK(ncclAllReduce(data, data, static_cast<size_t>(count), ncclFloat, ncclSum, comm_, stream_));
    UNET_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    UNET_CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_unique<PendingNccl>(comm_, done, timeout, count);
  }
  std::string describe() const override { return version_; }

 private:
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::string version_;
};

}  // namespace

std::unique_ptr<DeviceSums> make_nccl_sums(MPI_Comm comm, int rank, int size) {
  return std::make_unique<NcclSums>(comm, rank, size);
}

std::string nccl_built_in() { return version_text(NCCL_VERSION_CODE); }

}  // namespace unet
