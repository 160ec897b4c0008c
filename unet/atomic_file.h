// unet/atomic_file.h — how the library writes files that must never be seen half-written
// (checkpoints, images, JSON): into a temporary file in the target's folder, flushed to the disk
// (fsync), renamed over the target, and the folder flushed too. After a crash, a kill or a power
// loss the path holds the old file or the new one, each complete (rename is atomic, and both
// fsyncs order the data before the name). A failure — a full disk (ENOSPC), the file size limit
// (EFBIG), an unwritable or read-only folder — throws IOError saying which step failed and why
// (errno by name), removes the temporary file and leaves the previous file untouched.
//
// Temporary files are named "<path>.tmp-<pid>-<n>". A process killed while writing leaves its
// temporary behind; remove_stale_temporaries(path) deletes those whose process is gone, and
// every AtomicFile calls it for its path first, so a restarted run's next write of a file
// (checkpoint, loss curve, metrics, image) cleans up after the writer that was killed;
// remove_stale_temporaries_in(folder) does it for a whole folder (a training run's, when it starts).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace unet {

class AtomicFile {
 public:
  // Creates the temporary file; throws IOError if the folder does not let it.
  explicit AtomicFile(const std::string& path);
  // Removes the temporary unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // fsync, close, rename over the target, fsync the folder. The file is in place afterwards.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return temporary_; }

 private:
  [[noreturn]] void fail(const char* step, int error);
  std::string path_, temporary_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole file in one call.
void write_file_atomically(const std::string& path, std::string_view bytes);

// For writers that create the temporary themselves (libtiff opens files by name): a fresh
// temporary name for `path`, and the commit of a finished temporary (fsync, rename, folder fsync;
// the temporary is removed if that fails).
std::string temporary_path_for(const std::string& path);
void commit_temporary(const std::string& temporary, const std::string& path);

// "No space left on device (ENOSPC)": errno for messages.
std::string describe_errno(int error);

// Deletes "<path>.tmp-<pid>-<n>" files left by processes that no longer run.
void remove_stale_temporaries(const std::string& path);
// Deletes every "<name>.tmp-<pid>-<n>" in `folder` (not below it) whose process no longer runs:
// for a program taking over an output folder, whose restarted run may never write again some
// file a killed writer left half-written (a resumed run that has no steps left draws no loss curve).
void remove_stale_temporaries_in(const std::string& folder);

}  // namespace unet
