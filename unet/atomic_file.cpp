// unet/atomic_file.cpp — temporary file, fsync, rename, folder fsync (see atomic_file.h).
#include "unet/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace unet {
namespace {

namespace fs = std::filesystem;

std::string folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

// Flushes the folder's entry list, so a rename in it survives a power loss. Filesystems that
// cannot sync a folder say EINVAL; there is nothing more to do on those.
int sync_folder(const std::string& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int result = ::fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
  ::close(fd);
  return result;
}

}  // namespace

std::string describe_errno(int error) {
  const char* name = strerrorname_np(error);
  return unet::detail::message(std::strerror(error), " (", name ? name : "errno " + std::to_string(error), ")");
}

namespace {
// The IOError of a write of `path` that failed at `step` (its temporary already removed).
[[noreturn]] void throw_write_failure(const std::string& path, const char* step, int error) {
  UNET_THROW(IOError, "cannot write '", path, "': ", step, " failed: ", describe_errno(error),
             "; the previous file at that path, if any, is unchanged");
}

[[noreturn]] void throw_folder_sync_failure(const std::string& path, int error) {
  UNET_THROW(IOError, "wrote '", path, "' but could not flush its folder to the disk (fsync): ", describe_errno(error),
             "; after a power loss the previous file may reappear");
}
}  // namespace

std::string temporary_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return unet::detail::message(path, ".tmp-", ::getpid(), "-", counter++);
}

AtomicFile::AtomicFile(const std::string& path) : path_(path), temporary_(temporary_path_for(path)) {
  // Every write of a path cleans up after the killed writers of that path — checkpoints, but also
  // loss.png, metrics.json and the overlays, which a kill can interrupt as well.
  remove_stale_temporaries(path);
  fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("creating a temporary file in its folder", errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_.c_str());
}

void AtomicFile::fail(const char* step, int error) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temporary_.c_str());
  throw_write_failure(path_, step, error);
}

void AtomicFile::write(const void* data, size_t bytes) {
  UNET_CHECK(fd_ >= 0 && !committed_, IOError, "'", path_, "': write after commit or failure");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing", errno);
    }
    if (n == 0) fail("writing", EIO);
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  UNET_CHECK(fd_ >= 0 && !committed_, IOError, "'", path_, "': commit after commit or failure");
  if (::fsync(fd_) != 0) fail("flushing to the disk (fsync)", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("closing", errno);
  if (::rename(temporary_.c_str(), path_.c_str()) != 0) fail("renaming the temporary file into place", errno);
  committed_ = true;
  if (const int error = sync_folder(folder_of(path_)); error != 0) throw_folder_sync_failure(path_, error);
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

void commit_temporary(const std::string& temporary, const std::string& path) {
  auto fail = [&](const char* step, int error) {
    ::unlink(temporary.c_str());
    throw_write_failure(path, step, error);
  };
  const int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("reopening the temporary file", errno);
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    fail("flushing to the disk (fsync)", error);
  }
  ::close(fd);
  if (::rename(temporary.c_str(), path.c_str()) != 0) fail("renaming the temporary file into place", errno);
  if (const int error = sync_folder(folder_of(path)); error != 0) throw_folder_sync_failure(path, error);
}

namespace {
// The writer's pid of a temporary named "<target>.tmp-<pid>-<n>", or 0 if `name` is not one
// (the target's name, when not empty, must match too).
pid_t temporary_writer(std::string_view name, std::string_view target) {
  const size_t mark = name.rfind(".tmp-");
  if (mark == std::string_view::npos || mark == 0 || (!target.empty() && name.substr(0, mark) != target)) return 0;
  const std::string_view rest = name.substr(mark + 5);
  const size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash + 1 == rest.size()) return 0;
  const auto all_digits = [](std::string_view digits) {
    return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (dash > 9 || !all_digits(rest.substr(0, dash)) || !all_digits(rest.substr(dash + 1))) return 0;
  pid_t pid = 0;
  for (char c : rest.substr(0, dash)) pid = pid * 10 + (c - '0');
  return pid;
}

// Deletes, in `folder`, the temporaries (of `target`, or of any file when it is empty) whose
// writer no longer runs. A process that still runs may be writing one (EPERM: it runs, as another
// user); so may this one, from another thread.
void remove_stale(const std::string& folder, std::string_view target) {
  DIR* dir = ::opendir(folder.c_str());
  if (!dir) return;  // nothing to clean (the write itself will report an unusable folder)
  while (const dirent* entry = ::readdir(dir)) {
    const pid_t pid = temporary_writer(entry->d_name, target);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    ::unlinkat(::dirfd(dir), entry->d_name, 0);
  }
  ::closedir(dir);
}
}  // namespace

void remove_stale_temporaries(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  if (!name.empty()) remove_stale(folder_of(path), name);
}

void remove_stale_temporaries_in(const std::string& folder) { remove_stale(folder.empty() ? "." : folder, ""); }

}  // namespace unet
