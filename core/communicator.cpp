// core/communicator.cpp — what every build has: the launcher's environment, the single-process
// communicator, and world(), which asks the MPI layer (communicator_mpi.cpp, or the stand-in of
// a build without MPI, communicator_nompi.cpp) for a job of several ranks.
#include "core/communicator.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace unet {

// Defined by communicator_mpi.cpp (MPI_Init, MPI_COMM_WORLD) or communicator_nompi.cpp (throws).
std::unique_ptr<Communicator> make_mpi_world(const JobEnvironment& env);

namespace {

// An integer environment variable, or -1 when unset or not a number.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n >= 0 && n < (1L << 30) ? static_cast<int>(n) : -1;
}

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  bool is_single_process() const override { return true; }
  std::unique_ptr<PendingSum> start_sum(float*, int64_t count, Device) override {
    UNET_CHECK(count >= 0, ValueError, "Communicator::start_sum: count must be >= 0, got ", count);
    struct Done final : PendingSum {
      bool test() override { return true; }
      void wait() override {}
    };
    return std::make_unique<Done>();
  }
  void sum(double*, int count) override {
    UNET_CHECK(count >= 0, ValueError, "Communicator::sum: count must be >= 0, got ", count);
  }
  void barrier() override {}
  [[noreturn]] void abort(int exit_code, const std::string& why) override {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::exit(exit_code);
  }
};

}  // namespace

JobEnvironment job_environment() {
  // In the order of precedence: a launcher that sets several families (srun starting an Open MPI
  // program sets Slurm's and PMIx's) agrees on them.
  static constexpr const char* kRankSize[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                                 {"PMIX_RANK", "PMIX_SIZE"},
                                                 {"PMI_RANK", "PMI_SIZE"},
                                                 {"SLURM_PROCID", "SLURM_NTASKS"}};
  JobEnvironment env;
  for (const auto& [rank_var, size_var] : kRankSize) {
    const int rank = env_int(rank_var), size = env_int(size_var);
    if (rank < 0 || size < 1) continue;
    UNET_CHECK(rank < size, DistributedError, "the launcher says this is rank ", rank, " of ", size, " (", rank_var,
               ", ", size_var, "): a rank must be below the size");
    env.rank = rank;
    env.size = size;
    env.launcher = std::string(size_var) + "=" + std::to_string(size);
    break;
  }
  return env;
}

void Communicator::set_timeout(double seconds) {
  UNET_CHECK(std::isfinite(seconds) && seconds > 0.0, ValueError,
             "Communicator::set_timeout: the wait for a collective must be a finite number of seconds > 0, got ",
             seconds);
  timeout_seconds_ = seconds;
}

Communicator& single_process() {
  static SingleProcess single;
  return single;
}

Communicator& world() {
  static const std::unique_ptr<Communicator> job = []() -> std::unique_ptr<Communicator> {
    const JobEnvironment env = job_environment();
    const char* forced = std::getenv("UNET_COMMUNICATOR");
    const std::string choice = forced ? forced : "";
    UNET_CHECK(choice.empty() || choice == "mpi", ValueError, "UNET_COMMUNICATOR='", choice,
               "': the only choice is 'mpi' (join MPI even as a single rank); unset it for the default");
    if (env.size == 1 && choice.empty()) return nullptr;
    std::unique_ptr<Communicator> c = make_mpi_world(env);
    if (const char* t = std::getenv("UNET_COLLECTIVE_TIMEOUT"); t && *t) {
      char* end = nullptr;
      const double seconds = std::strtod(t, &end);
      UNET_CHECK(*end == '\0' && seconds > 0.0, ValueError, "UNET_COLLECTIVE_TIMEOUT='", t,
                 "': expected the seconds a rank waits for a collective before ending the job, a number > 0");
      c->set_timeout(seconds);
    }
    return c;
  }();
  return job ? *job : single_process();
}

std::string rank_prefix(const Communicator& comm) {
  if (comm.size() == 1) return "";
  return "rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) + ": ";
}

}  // namespace unet
