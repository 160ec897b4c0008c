// core/communicator_nonccl.cpp — the NCCL layer of an MPI build without NCCL (the simulator build,
// or UNET_NCCL off): none, so the MPI communicator sums CUDA tensors through host memory.
#include "core/communicator_mpi.h"

namespace unet {

std::unique_ptr<DeviceSums> make_nccl_sums(MPI_Comm, int, int) { return nullptr; }
std::string nccl_built_in() { return ""; }

}  // namespace unet
