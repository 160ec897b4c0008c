// examples/job_cli.h — what a program does when it may run as one rank of a job (mpirun, srun;
// docs/scale-out.md): join the job, let rank 0 alone talk on stdout, and end the whole job when
// a rank fails (the others may be waiting for it in a collective). Header-only like progress.h.
#pragma once

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "core/communicator.h"
#include "core/parallel.h"

namespace unet::examples {

// The job this process joined (null before join_job, or when joining failed).
inline Communicator*& joined_job() {
  static Communicator* job = nullptr;
  return job;
}

// Joins the job (unet::world(): MPI under a launcher of several ranks) and silences stdout on
// every rank but 0, so a job prints one progress display and one summary. Throws
// DistributedError (several ranks and no MPI in this build).
inline Communicator& join_job() {
  Communicator& comm = world();
  joined_job() = &comm;
  // Ranks on one node share its cores: each takes its share, unless --threads (applied after
  // this) says otherwise. With all cores each, N ranks would fight for them, and the thread pool
  // polls between parallel regions (core/parallel.h), which makes oversubscription costly.
  const int sharing = comm.ranks_on_this_node();
  if (sharing > 1) set_num_threads(std::max(1, num_threads() / sharing));
  if (!comm.is_root()) std::freopen("/dev/null", "w", stdout);
  return comm;
}

// Reports `e` on stderr and returns `status`; in a job of several ranks, ends every rank with
// `status` instead (MPI_Abort), since returning would leave the others waiting.
inline int fail(const char* program, const std::exception& e, int status = 2) {
  const std::string message = std::string(program) + ": error: " + e.what();
  Communicator* job = joined_job();
  if (job && job->size() > 1) job->abort(status, message);
  std::fprintf(stderr, "%s\n", message.c_str());
  return status;
}

}  // namespace unet::examples
