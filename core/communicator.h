// core/communicator.h — the processes of a job and the collectives they run together: the one
// layer between the library and MPI / NCCL, so nothing else in the library or the programs
// needs an #ifdef.
//
// A job is N processes ("ranks") that a launcher (mpirun, srun) starts from one command line.
// world() is this process's view of its job:
//   * not started by a launcher, or by one with a single rank: a single process, whose
//     collectives change nothing (no MPI call is made, not even MPI_Init);
//   * N > 1 ranks in a build with MPI (CMake UNET_MPI): MPI over MPI_COMM_WORLD. Sums of CUDA
//     tensors go through NCCL when the GPU build has it (UNET_NCCL; bootstrapped through MPI),
//     otherwise through host memory; in the simulator build CUDA memory is host memory;
//   * N > 1 ranks in a build without MPI: world() throws DistributedError, so N copies of a
//     program never each run the whole job side by side (and write over each other's files).
// With N > 1 in the GPU build, each rank makes its node-local rank's GPU (modulo the GPUs it
// sees) the current CUDA device before anything is allocated. UNET_COMMUNICATOR=mpi in the
// environment joins MPI even as a single rank: the MPI (and NCCL) path with one rank, what a
// machine with one GPU can test (NCCL refuses two ranks on one GPU).
//
// Collectives are matched by order: every rank starts the same collectives with the same sizes
// in the same order. Waiting is bounded: a collective that has not completed after timeout()
// seconds (UNET_COLLECTIVE_TIMEOUT in the environment, default 1800) means a rank has died or
// stalled, and the job is ended through MPI_Abort with a message naming the collective, the rank
// and the wait, instead of hanging. A rank that fails on its own (an exception only it sees)
// must end the job with abort(): returning from main would leave the others waiting.
//
// Sums are of float32 (tensor data) or double (a step's scalars). With two ranks every element
// of a sum is one addition, a + b = b + a: the same bits whatever order MPI or NCCL choose. With
// more ranks the order is the implementation's (a ring, a tree), the same on every rank.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/device.h"
#include "core/error.h"

namespace unet {

// A collective that failed or cannot run: no MPI in this build, MPI or NCCL reported an error.
class DistributedError : public Error { using Error::Error; };

// The launcher's description of this process, read from the environment (no MPI call):
// Open MPI's OMPI_COMM_WORLD_{RANK,SIZE}, PMI/PMIx (MPICH, Intel MPI, srun --mpi=...) and
// Slurm's SLURM_PROCID / SLURM_NTASKS. size 1 and launcher "" when none is set.
struct JobEnvironment {
  int rank = 0;
  int size = 1;
  std::string launcher;  // which variables said so, e.g. "OMPI_COMM_WORLD_SIZE=2"
};
JobEnvironment job_environment();

// A sum started by Communicator::start_sum. The buffer belongs to the collective until it has
// completed: test() returns true once it has (and lets MPI progress), wait() blocks until then.
class PendingSum {
 public:
  virtual ~PendingSum() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }
  // True for single_process() (and world() without a launcher): nothing to sum, ever. An MPI
  // communicator is not, even with one rank (UNET_COMMUNICATOR=mpi).
  virtual bool is_single_process() const { return false; }
  // How many ranks of this job run on this process's node (this one included): they share its
  // cores. 1 for a single process.
  virtual int ranks_on_this_node() const { return 1; }
  // One line for people: "single process", "MPI (Open MPI v4.1.4), 2 ranks on 1 host; CUDA tensors
  // through NCCL 2.27.3".
  virtual std::string describe() const = 0;

  // Starts summing `count` float32 values at `data` elementwise over the ranks, in place: host
  // memory for a CPU device, device memory for a CUDA device. Returns at once where the transport
  // allows (MPI_Iallreduce, NCCL on its own stream). count >= 0, the same on every rank.
  virtual std::unique_ptr<PendingSum> start_sum(float* data, int64_t count, Device device) = 0;
  void sum(float* data, int64_t count, Device device) { start_sum(data, count, device)->wait(); }
  // Sums `count` host doubles elementwise over the ranks, in place (a step's scalars), blocking.
  virtual void sum(double* values, int count) = 0;
  // Returns when every rank has called it.
  virtual void barrier() = 0;
  // Ends every rank of the job with `exit_code` (MPI_Abort; a single process exits). `why` is
  // written to stderr first, prefixed with this rank.
  [[noreturn]] virtual void abort(int exit_code, const std::string& why) = 0;

  double timeout() const { return timeout_seconds_; }
  void set_timeout(double seconds);  // > 0

 protected:
  double timeout_seconds_ = 1800.0;
};

// This process's job (see the top). Created on first use and kept until the process exits
// (MPI_Finalize then). Throws DistributedError when a launcher started several ranks and this
// build has no MPI, or MPI fails to start.
Communicator& world();
// A communicator of one process (collectives change nothing), for library users and tests that
// want the single-process behaviour whatever the environment.
Communicator& single_process();

// "rank 1 of 4: " under a job of several ranks, "" otherwise: the prefix of a rank's messages.
std::string rank_prefix(const Communicator& comm);

}  // namespace unet
