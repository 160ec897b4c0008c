// tests/reliability/kill_train.cpp — crash-safe checkpoints, proven by killing (CTest
// checkpoint_kills; docs/reliability.md).
//
//   kill_train BIN_DIR WORK_DIR [--kills N] [--steps S] [--seed K]
//
// Trains a tiny model with train_em once without interruption (the reference), then again in a
// chain of runs that are killed with SIGKILL and restarted with --resume from the checkpoint on
// disk, until a run finishes. Half of the kills come at a random moment after the start (loading,
// training, saving, scoring), half the moment a checkpoint's temporary file appears (inotify), i.e.
// inside a checkpoint write. After every kill:
//   - the checkpoint on disk loads (load_safetensors and load_model), and
//   - it is exactly the last one whose rename the harness saw (the previous checkpoint if the kill
//     came inside a write, the new one if it came after the rename): its step says which.
// At the end:
//   - every loss the chain logged equals the reference's loss of that step, bit for bit (so every
//     resume continued exactly), and
//   - the final checkpoint and metrics.json are byte-identical to the reference's, and no temporary
//     file is left in the output folder.
// Prints the counts (kills, kills inside a write, checkpoints verified); exits non-zero on any
// failure, naming it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/device.h"
#include "unet/image_io.h"
#include "unet/safetensors.h"
#include "unet/trainer.h"

extern char** environ;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "kill_train: FAILED: %s\n", what.c_str());
  std::exit(1);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Options {
  fs::path bin, work;
  int kills = 20;
  int steps = 16;
  uint64_t seed = 1;
};

// The train_em command of every run: a tiny CPU model, a checkpoint after every step, no time
// budget (progress would then depend on the clock), the plain validation at the end.
std::vector<std::string> train_command(const Options& o, const fs::path& out, bool resume) {
  std::vector<std::string> args = {(o.bin / "train_em").string(), "--data", (o.work / "data").string(),
                                   "--first-val", "2", "--out", out.string(), "--iterations",
                                   std::to_string(o.steps), "--checkpoint-every", "1", "--device", "cpu",
                                   "--base-channels", "2", "--tile", "188", "--threads", "2", "--minutes", "0",
                                   "--no-tta"};
  if (resume) args.insert(args.end(), {"--resume", (out / "model.safetensors").string()});
  return args;
}

pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) fail("cannot start " + args[0]);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// True once the process has ended (it stays waitable).
bool has_ended(pid_t pid) {
  siginfo_t info{};
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) fail("waitpid");
  return status;
}

// The "step" of a checkpoint's training state.
int64_t checkpoint_step(const unet::SafetensorsFile& f) {
  return nlohmann::json::parse(f.metadata.at("unetcore.training")).at("step").get<int64_t>();
}

// step -> the loss logged for it (every line of log.jsonl that has a loss).
std::multimap<int64_t, std::string> logged_losses(const fs::path& log) {
  std::multimap<int64_t, std::string> losses;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) fail(log.string() + " holds a line that is not JSON: " + line);
    if (j.contains("loss")) losses.emplace(j.at("step").get<int64_t>(), j.at("loss").dump());
  }
  return losses;
}

// Watches the output folder: temporaries created and checkpoints renamed into place.
class FolderWatch {
 public:
  explicit FolderWatch(const fs::path& dir) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0 || inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) fail("inotify on " + dir.string());
  }
  ~FolderWatch() { close(fd_); }
  // Reads the events that arrived within `timeout_ms` (0: those already queued).
  void poll_events(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return;
    alignas(inotify_event) char buf[8192];
    for (;;) {
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return;
      for (char* at = buf; at < buf + n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(at);
        const std::string name = e->len ? e->name : "";
        if ((e->mask & IN_CREATE) && name.starts_with("model.safetensors.tmp-")) ++temporaries_created;
        if ((e->mask & IN_MOVED_TO) && name == "model.safetensors") ++checkpoints_committed;
        at += sizeof(inotify_event) + e->len;
      }
    }
  }
  int temporaries_created = 0;
  int checkpoints_committed = 0;

 private:
  int fd_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s BIN_DIR WORK_DIR [--kills N] [--steps S] [--seed K]\n", argv[0]);
    return 2;
  }
  o.bin = argv[1];
  o.work = argv[2];
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--kills") o.kills = std::atoi(argv[i + 1]);
    else if (flag == "--steps") o.steps = std::atoi(argv[i + 1]);
    else if (flag == "--seed") o.seed = std::strtoull(argv[i + 1], nullptr, 10);
    else fail("unknown option " + flag);
  }
  fs::remove_all(o.work);
  // Three shipped ISBI slices, their top-left 256 x 256 (a restart loads them, and the run ends
  // by scoring one): two to train on, one to validate.
  for (const char* part : {"images", "labels"}) {
    fs::create_directories(o.work / "data" / "train" / part);
    for (const char* slice : {"00.png", "01.png", "02.png"}) {
      const unet::Image full = unet::read_image((fs::path(UNET_SOURCE_DIR) / "data" / "isbi2012" / "train" / part / slice).string());
      unet::Image crop = unet::make_image(256, 256, full.channels, full.format);
      for (int y = 0; y < 256; ++y)
        for (int x = 0; x < 256; ++x) crop.at(x, y) = full.at(x, y);
      unet::write_png((o.work / "data" / "train" / part / slice).string(), crop);
    }
  }

  // ---- the reference -------------------------------------------------------------------------------
  const fs::path ref = o.work / "reference", run = o.work / "killed";
  const auto t0 = Clock::now();
  if (const int status = wait_exit(spawn(train_command(o, ref, false), o.work / "reference.txt"));
      !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("the uninterrupted reference run failed; see " + (o.work / "reference.txt").string());
  const double reference_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::map<int64_t, std::string> reference_loss;
  for (const auto& [step, loss] : logged_losses(ref / "log.jsonl")) reference_loss[step] = loss;
  if (static_cast<int>(reference_loss.size()) != o.steps) fail("the reference logged the wrong number of steps");

  // ---- the killed chain ----------------------------------------------------------------------------
  fs::create_directories(run);
  std::mt19937_64 rng(o.seed);
  int kills = 0, inside_write = 0, verified = 0, runs = 0;
  int64_t committed_step = 0;  // the step of the checkpoint on disk (0: none yet)
  for (;;) {
    const bool resume = fs::exists(run / "model.safetensors");
    FolderWatch watch(run);
    const pid_t pid = spawn(train_command(o, run, resume), o.work / "killed.txt");
    ++runs;
    const int64_t start_step = committed_step;
    if (kills < o.kills) {
      const bool in_write = kills % 2 == 1;
      if (in_write) {
        // The moment the n-th checkpoint write of this run starts (its temporary appears).
        const int nth = 1 + static_cast<int>(rng() % 3);
        while (watch.temporaries_created < nth && !has_ended(pid)) watch.poll_events(5);
        // A few hundred microseconds later at most: somewhere in the write, the fsync or the rename.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 400));
      } else {
        // Anywhere in what is left of the run: loading, a step, a save, the final scoring.
        const double left = std::max(0.2, static_cast<double>(o.steps - committed_step) / o.steps);
        std::this_thread::sleep_for(std::chrono::duration<double>(left * reference_seconds * (rng() % 1000) / 1000.0));
      }
      kill(pid, SIGKILL);  // (a run that has already finished is not affected)
    }
    const int status = wait_exit(pid);
    watch.poll_events(0);
    const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    if (killed) {
      ++kills;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fail("a run ended by itself with a failure; see " + (o.work / "killed.txt").string());
    }
    // What the harness saw committed: every checkpoint of this run is one step further (the final
    // save of a finished run writes the last step again).
    committed_step = std::min<int64_t>(start_step + watch.checkpoints_committed, o.steps);
    if (!fs::exists(run / "model.safetensors")) {
      if (committed_step != 0) fail("the checkpoint disappeared after a kill");
    } else {
      const std::string path = (run / "model.safetensors").string();
      try {
        const unet::SafetensorsFile f = unet::load_safetensors(path);
        unet::load_model(path, unet::Device::cpu());
        if (checkpoint_step(f) != committed_step)
          fail("after kill " + std::to_string(kills) + " the checkpoint is of step " + std::to_string(checkpoint_step(f)) +
               " but the last one renamed into place was of step " + std::to_string(committed_step));
      } catch (const std::exception& e) {
        fail("after kill " + std::to_string(kills) + " the checkpoint does not load: " + e.what());
      }
      ++verified;
    }
    // The killed process's temporary is still there: the kill came inside a checkpoint write.
    for (const auto& e : fs::directory_iterator(run))
      if (killed && e.path().filename().string().starts_with("model.safetensors.tmp-" + std::to_string(pid) + "-"))
        ++inside_write;
    if (!killed && kills >= o.kills) break;  // the last run finished
  }

  // ---- the end: the same run as the reference ------------------------------------------------------
  const auto chain = logged_losses(run / "log.jsonl");
  for (const auto& [step, loss] : chain) {
    if (!reference_loss.count(step) || reference_loss[step] != loss)
      fail("step " + std::to_string(step) + " logged loss " + loss + " after a resume, the reference " +
           (reference_loss.count(step) ? reference_loss[step] : "nothing"));
  }
  for (const char* file : {"model.safetensors", "metrics.json"})
    if (slurp(run / file) != slurp(ref / file)) fail(std::string(file) + " differs from the uninterrupted run's");
  for (const auto& e : fs::directory_iterator(run))
    if (e.path().filename().string().find(".tmp-") != std::string::npos)
      fail("a temporary file is left in the output folder: " + e.path().string());
  std::printf("kill_train: %d kills (%d inside a checkpoint write) over %d runs of %d steps; %d checkpoints verified (after "
              "every kill and every finished run), all loadable and the last one renamed into place; %zu logged losses and the final model and "
              "metrics are bit-identical to the uninterrupted run's (reference %.1f s, all %.1f s)\n",
              kills, inside_write, runs, o.steps, verified, chain.size(), reference_seconds,
              std::chrono::duration<double>(Clock::now() - t0).count());
  return 0;
}
