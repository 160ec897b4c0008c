// core/communicator_mpi.cpp — the communicator of a job of several ranks over MPI_COMM_WORLD:
// MPI_Init_thread / MPI_Finalize, non-blocking sums (MPI_Iallreduce) that a bounded wait
// completes, the node-local GPU choice, and CUDA tensors through NCCL or host memory.
//
// Errors: MPI_COMM_WORLD gets MPI_ERRORS_RETURN, so a failed call throws DistributedError with
// MPI's message (the program then ends the job with abort()); a rank that is killed is noticed
// by the launcher, which ends the others; a rank that stalls is noticed by the others' bounded
// waits (PendingMpi::wait), which throw DistributedError after Communicator::timeout().
#include "core/communicator_mpi.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <thread>
#include <vector>

#include "core/cuda_runtime.h"

namespace unet {

void check_mpi(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  UNET_THROW(DistributedError, call, " failed: ", std::string(text, static_cast<size_t>(length)));
}

namespace {

using Clock = std::chrono::steady_clock;

// Polls `done` until it returns true; after `timeout` seconds throws DistributedError saying what
// waited. The first polls spin (a sum between two ranks of one node takes microseconds); then the
// poll sleeps, up to 200 µs, so a rank that waits for a slower one leaves the CPU to it.
template <typename Done>
void bounded_wait(Done&& done, double timeout, const std::string& what) {
  const Clock::time_point start = Clock::now();
  auto pause = std::chrono::microseconds(0);
  for (int polls = 0; !done(); ++polls) {
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    UNET_CHECK(waited < timeout, DistributedError, what, " waited ", waited,
               " s for the other ranks (the limit is ", timeout,
               " s, UNET_COLLECTIVE_TIMEOUT): a rank has died or stalled");
    if (polls < 1000) continue;
    pause = std::min(std::chrono::microseconds(200), pause + std::chrono::microseconds(10));
    std::this_thread::sleep_for(pause);
  }
}

// Requests of one sum (one per INT_MAX elements), optionally followed by a copy back to the
// device when the data was staged through host memory.
class PendingMpi final : public PendingSum {
 public:
  PendingMpi(std::vector<MPI_Request> requests, double timeout, std::string what)
      : requests_(std::move(requests)), timeout_(timeout), what_(std::move(what)) {}
  std::vector<float> staged;  // host copy of device data (empty: the sum runs in place)
  float* device_data = nullptr;

  bool test() override {
    if (complete_) return true;
    int flag = 0;
    check_mpi(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE),
              "MPI_Testall");
    if (flag) finish();
    return complete_;
  }
  void wait() override {
    bounded_wait([&] { return test(); }, timeout_, what_);
  }

 private:
  void finish() {
    complete_ = true;
    if (!staged.empty())
      cuda_rt::memcpy(device_data, staged.data(), staged.size() * sizeof(float), cuda_rt::CopyKind::HostToDevice);
  }
  std::vector<MPI_Request> requests_;
  double timeout_;
  std::string what_;
  bool complete_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const JobEnvironment& env) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      // SERIALIZED: the library calls MPI from one thread at a time, not always the main one
      // (e.g. a Python thread).
      int provided = 0;
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
      owns_mpi_ = true;
    }
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    UNET_CHECK(rank_ == env.rank && size_ == env.size, DistributedError, "MPI says this is rank ", rank_, " of ",
               size_, " but the launcher said rank ", env.rank, " of ", env.size, " (", env.launcher,
               "): was the program started by another MPI's launcher than the one it was built with?");
    // The ranks sharing this node: its GPUs are dealt out by node-local rank.
    MPI_Comm node;
    check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
    int node_roots = local_rank_ == 0 ? 1 : 0;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &node_roots, 1, MPI_INT, MPI_SUM, comm_), "MPI_Allreduce");
    hosts_ = node_roots;
    if (!cuda_rt::is_simulated() && cuda_rt::device_count() > 0)
      cuda_rt::set_device(local_rank_ % cuda_rt::device_count());
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    library_ = std::string(version, static_cast<size_t>(length));
    library_ = library_.substr(0, library_.find_first_of(",\n"));
  }

  ~MpiCommunicator() override {
    device_sums_.reset();
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (finalised) return;
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int ranks_on_this_node() const override { return local_size_; }
  std::string describe() const override {
    std::string s = "MPI (" + library_ + "), " + std::to_string(size_) + " ranks on " + std::to_string(hosts_) +
                    (hosts_ == 1 ? " host" : " hosts");
    if (!cuda_rt::is_simulated() && cuda_rt::device_count() > 0)
      s += nccl_built_in().empty() ? "; CUDA tensors through host memory (this build has no NCCL)"
                                   : "; CUDA tensors through " + nccl_built_in();
    return s;
  }

  std::unique_ptr<PendingSum> start_sum(float* data, int64_t count, Device device) override {
    UNET_CHECK(count >= 0, ValueError, "Communicator::start_sum: count must be >= 0, got ", count);
    const std::string what = "a sum of " + std::to_string(count) + " floats";
    const bool on_gpu = device.is_cuda() && !cuda_rt::is_simulated();
    if (on_gpu && count > 0) {
      if (!nccl_tried_) {
        nccl_tried_ = true;  // collective: every rank reaches its first device sum at the same point
        device_sums_ = make_nccl_sums(comm_, rank_, size_);
      }
      if (device_sums_) return device_sums_->start_sum(data, count, timeout());
    }
    std::vector<float> staged;
    float* host = data;
    if (on_gpu && count > 0) {  // no NCCL: through host memory
      staged.resize(static_cast<size_t>(count));
      cuda_rt::memcpy(staged.data(), data, staged.size() * sizeof(float), cuda_rt::CopyKind::DeviceToHost);
      host = staged.data();
    }
    std::vector<MPI_Request> requests;
    for (int64_t at = 0; at < count; at += INT_MAX) {
      const int n = static_cast<int>(std::min<int64_t>(INT_MAX, count - at));
      requests.emplace_back();
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, host + at, n, MPI_FLOAT, MPI_SUM, comm_, &requests.back()),
                "MPI_Iallreduce");
    }
    auto pending = std::make_unique<PendingMpi>(std::move(requests), timeout(), what);
    if (!staged.empty()) {
      pending->staged = std::move(staged);
      pending->device_data = data;
    }
    return pending;
  }

  void sum(double* values, int count) override {
    UNET_CHECK(count >= 0, ValueError, "Communicator::sum: count must be >= 0, got ", count);
    MPI_Request request;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, comm_, &request), "MPI_Iallreduce");
    PendingMpi({request}, timeout(), "a sum of " + std::to_string(count) + " doubles").wait();
  }

  void barrier() override {
    MPI_Request request;
    check_mpi(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier");
    PendingMpi({request}, timeout(), "a barrier").wait();
  }

  [[noreturn]] void abort(int exit_code, const std::string& why) override {
    std::fprintf(stderr, "%s%s\n", rank_prefix(*this).c_str(), why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; if it did, end this rank at least
  }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, hosts_ = 1;
  bool owns_mpi_ = false;
  std::string library_;
  bool nccl_tried_ = false;
  std::unique_ptr<DeviceSums> device_sums_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_world(const JobEnvironment& env) {
  return std::make_unique<MpiCommunicator>(env);
}

}  // namespace unet
