// bench/step_peer.h — a PyTorch process that times one step per request (bench/step_pytorch.py
// --serve), for bench/step --interleave: started with a pipe each way, asked for "forward" or
// "train", it answers the step's wall time in milliseconds. Linux/POSIX only (fork, exec, pipes),
// like the rest of bench/step's CPU side.
#pragma once

#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "core/error.h"

namespace unet::bench {

class StepPeer {
 public:
  // Runs argv[0] with argv (searched on PATH) and reads its first line, the "ready" JSON.
  explicit StepPeer(const std::vector<std::string>& argv) {
    UNET_CHECK(!argv.empty(), ValueError, "StepPeer: no command");
    int to_child[2], from_child[2];
    UNET_CHECK(::pipe(to_child) == 0 && ::pipe(from_child) == 0, IOError, "StepPeer: pipe() failed");
    pid_ = ::fork();
    UNET_CHECK(pid_ >= 0, IOError, "StepPeer: fork() failed");
    if (pid_ == 0) {  // the child: stdin and stdout are the pipes, stderr stays ours
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      ::close(to_child[0]), ::close(to_child[1]), ::close(from_child[0]), ::close(from_child[1]);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      std::perror("step: exec");
      ::_exit(127);
    }
    ::close(to_child[0]), ::close(from_child[1]);
    to_ = ::fdopen(to_child[1], "w");
    from_ = ::fdopen(from_child[0], "r");
    UNET_CHECK(to_ && from_, IOError, "StepPeer: fdopen() failed");
    ready_ = read_line();
    UNET_CHECK(!ready_.empty(), IOError, "StepPeer: ", argv[0], " ended before it was ready (its stderr says why)");
  }
  StepPeer(const StepPeer&) = delete;
  StepPeer& operator=(const StepPeer&) = delete;
  // Closing its input ends the peer; wait for it so no process outlives the benchmark.
  ~StepPeer() {
    if (to_) std::fclose(to_);
    if (from_) std::fclose(from_);
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
  }

  // The peer's first line (a JSON object: torch version, threads, CPU capability).
  const std::string& ready() const { return ready_; }

  // Sends one request line and returns the answer line; throws if the peer has gone.
  std::string request(const std::string& what) {
    UNET_CHECK(std::fprintf(to_, "%s\n", what.c_str()) > 0 && std::fflush(to_) == 0, IOError,
               "StepPeer: the PyTorch process stopped reading (request '", what, "')");
    std::string line = read_line();
    UNET_CHECK(!line.empty(), IOError, "StepPeer: no answer to '", what, "' (the PyTorch process ended; its stderr says why)");
    return line;
  }

  double request_ms(const std::string& what) {
    const std::string answer = request(what);
    try {
      return std::stod(answer);
    } catch (const std::exception&) {
      UNET_THROW(IOError, "StepPeer: '", what, "' was answered '", answer, "', not a time in milliseconds");
    }
  }

 private:
  std::string read_line() {
    std::string line;
    for (int c; (c = std::fgetc(from_)) != EOF && c != '\n';) line.push_back(static_cast<char>(c));
    return line;
  }

  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  std::string ready_;
};

}  // namespace unet::bench
