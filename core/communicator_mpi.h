// core/communicator_mpi.h — internal to the MPI layer (communicator_mpi.cpp and the NCCL files);
// nothing else includes it, because it includes <mpi.h>.
//
// DeviceSums is how the MPI communicator sums CUDA tensors on a real GPU: NCCL on its own stream
// (communicator_nccl.cpp, GPU build with UNET_NCCL) or nothing (communicator_nonccl.cpp: the
// MPI communicator then stages the data through host memory).
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "core/communicator.h"

namespace unet {

class DeviceSums {
 public:
  virtual ~DeviceSums() = default;
  // Starts the in-place sum of `count` floats of device memory, ordered after everything already
  // launched on the legacy default stream (where the library's kernels run).
  virtual std::unique_ptr<PendingSum> start_sum(float* data, int64_t count, double timeout_seconds) = 0;
  virtual std::string describe() const = 0;  // "NCCL 2.27.3"
};

// Collective over `comm` (every rank calls it at the same point). Null when this build has no
// NCCL. Throws DistributedError when NCCL fails to start.
std::unique_ptr<DeviceSums> make_nccl_sums(MPI_Comm comm, int rank, int size);
// "NCCL 2.27.3" (the version built against), or "" when this build has no NCCL.
std::string nccl_built_in();

// Throws DistributedError naming the call and MPI's message unless `status` is MPI_SUCCESS.
void check_mpi(int status, const char* call);

}  // namespace unet
