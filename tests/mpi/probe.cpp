// tests/mpi/probe.cpp — a job whose rank 1 fails, for the test that a failing rank ends the job
// with a clear error instead of a hang (tests/mpi/failures.sh). Rank 0 starts a sum of gradients,
// as a training step would; rank 1, instead of joining it:
//   stall    sleeps (a hung rank): rank 0's bounded wait throws, and it ends the job
//   die      is killed by a signal: the launcher notices and ends the job
//   error    throws an error only it sees, and ends the job as the programs do (examples::fail)
//
//   mpirun -np 2 mpi_probe stall|die|error
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "../../examples/job_cli.h"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "stall" && mode != "die" && mode != "error") {
    std::fprintf(stderr, "usage: mpi_probe stall|die|error\n");
    return 2;
  }
  try {
    unet::Communicator& job = unet::examples::join_job();
    job.set_timeout(5.0);
    if (job.rank() == 1) {
      if (mode == "stall") std::this_thread::sleep_for(std::chrono::hours(1));
      if (mode == "die") std::raise(SIGKILL);
      UNET_THROW(unet::IOError, "cannot read this rank's training data (a failure only rank 1 sees)");
    }
    std::vector<float> gradients(1000, 1.0f);
    job.sum(gradients.data(), static_cast<int64_t>(gradients.size()), unet::Device::cpu());
    std::fprintf(stderr, "mpi_probe: rank 0 completed a sum rank 1 never joined\n");
    return 0;
  } catch (const unet::Error& e) {
    return unet::examples::fail("mpi_probe", e, 5);
  }
}
