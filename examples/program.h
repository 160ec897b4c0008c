// examples/program.h — how every example program meets failure, in one place: whatever goes wrong
// (a wrong flag, a missing or corrupt file, images of the wrong size, an unwritable or full disk,
// a diverging loss, no memory left) ends the program with one line on stderr,
//     <program>: error: <what was wrong, what is allowed> [; <note>]
// and an exit status that says what kind of failure it was:
//     0 done, 1 wrong command line, 2 bad input or environment (unet::Error: files, sizes,
//     devices, disks), 3 training diverged (NumericError), 4 out of memory (OutOfMemoryError),
//     70 a bug (any other exception; please report it).
// Under mpirun a failing rank ends the whole job with that status (job_cli.h).
// Files are written atomically by the library (unet/atomic_file.h), so a failure leaves nothing
// half-written. A file size limit (RLIMIT_FSIZE) makes writes fail with EFBIG, reported like a
// full disk, instead of killing the program with SIGXFSZ.
//
//   int main(int argc, char** argv) {
//     CLI::App app{"..."};  ... add options ...
//     return unet::examples::run_program("segment", app, argc, argv, [&] { ...; return 0; });
//   }
#pragma once

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <string>

#include "core/error.h"
#include "job_cli.h"

namespace unet::examples {

// Added to the error line of a later failure: what the user still has (train_em: "the last good
// checkpoint is out/model.safetensors, step 400").
inline std::string& failure_note() {
  static std::string note;
  return note;
}

// The message on one line (a multi-line what() is joined with " / ").
inline std::string one_line(std::string text) {
  for (size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', at)) {
    const bool last = at + 1 == text.size();
    text.replace(at, 1, last ? "" : " / ");
  }
  return text;
}

// Prints the error line and returns `status`; in a job of several ranks (job_cli.h) ends every
// rank with `status` instead (MPI_Abort), since returning would leave the others waiting.
inline int report_failure(const char* program, const std::string& what, int status) {
  const std::string& note = failure_note();
  const std::string line = std::string(program) + ": error: " + one_line(what) + (note.empty() ? "" : "; ") + note;
  Communicator* job = joined_job();
  if (job && job->size() > 1) job->abort(status, line);
  std::fprintf(stderr, "%s\n", line.c_str());
  return status;
}

template <typename Body>
int run_program(const char* program, CLI::App& app, int argc, char** argv, Body&& body) {
  std::signal(SIGXFSZ, SIG_IGN);
  app.failure_message([program](const CLI::App*, const CLI::Error& e) {
    return std::string(program) + ": error: " + one_line(e.what()) + " (" + program + " --help lists the options)\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);  // --help prints the help and is a success
    return status == 0 ? 0 : 1;
  }
  try {
    return body();
  } catch (const OutOfMemoryError& e) {
    return report_failure(program, e.what(), 4);
  } catch (const std::bad_alloc&) {
    return report_failure(program, "out of host memory (std::bad_alloc)", 4);
  } catch (const NumericError& e) {
    return report_failure(program, e.what(), 3);
  } catch (const Error& e) {
    return report_failure(program, e.what(), 2);
  } catch (const std::filesystem::filesystem_error& e) {  // creating an output folder, listing one
    return report_failure(program, e.what(), 2);
  } catch (const std::exception& e) {
    return report_failure(program, std::string("unexpected failure (a bug, please report it): ") + e.what(), 70);
  }
}

}  // namespace unet::examples
