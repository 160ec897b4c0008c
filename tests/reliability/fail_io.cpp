// tests/reliability/fail_io.cpp — a fault injector for the programs' tests, loaded with
// LD_PRELOAD=libunet_fail_io.so. It makes one kind of system call fail with a chosen errno for
// files whose path contains a chosen text, so that what a full disk, a read-only folder or a dying
// disk does to a save can be tested as any user (root included, whom permission bits do not stop)
// on any filesystem, at every step of a save: creating the temporary file, writing it, flushing
// it, renaming it into place.
//
//   UNET_FAIL_IO=<call>:<errno>[:<after>]   call: open (files being created), write, fsync, rename
//                                           errno: ENOSPC, EFBIG, EROFS, EACCES, EIO, EDQUOT
//                                           after: writes fail once this many bytes went through
//   UNET_FAIL_IO_PATH=<text>                only paths containing it (rename: the target path)
//
// Every injected failure appends a line to the file named by UNET_FAIL_IO_LOG, if set, so a test
// can tell that the fault was really hit. Plain C calls only: it runs inside any program.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

namespace {

enum Call { NONE, OPEN, WRITE, FSYNC, RENAME };

Call fail_call = NONE;
int fail_errno = 0;
long long fail_after = 0, written = 0;
const char* fail_path = "";
unsigned char watched[65536];  // fds opened on a matching path

void configure(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  const char* spec = getenv("UNET_FAIL_IO");
  if (!spec) return;
  char what[16] = "", err[16] = "";
  long long after = 0;
  if (sscanf(spec, "%15[a-z]:%15[A-Z]:%lld", what, err, &after) < 2) return;
  fail_call = !strcmp(what, "open") ? OPEN : !strcmp(what, "write") ? WRITE : !strcmp(what, "fsync") ? FSYNC
              : !strcmp(what, "rename") ? RENAME : NONE;
  fail_errno = !strcmp(err, "ENOSPC") ? ENOSPC : !strcmp(err, "EFBIG") ? EFBIG : !strcmp(err, "EROFS") ? EROFS
               : !strcmp(err, "EACCES") ? EACCES : !strcmp(err, "EIO") ? EIO : !strcmp(err, "EDQUOT") ? EDQUOT : 0;
  if (!fail_errno) fail_call = NONE;
  fail_after = after;
  const char* p = getenv("UNET_FAIL_IO_PATH");
  fail_path = p ? p : "";
}

int matches(const char* path) { return path && strstr(path, fail_path) != NULL; }

int inject(void) {
  const char* log = getenv("UNET_FAIL_IO_LOG");
  if (log) {
    FILE* f = fopen(log, "a");
    if (f) {
      fprintf(f, "%s\n", getenv("UNET_FAIL_IO"));
      fclose(f);
    }
  }
  errno = fail_errno;
  return -1;
}

template <typename F>
F* next(F*, const char* name) {
  return reinterpret_cast<F*>(dlsym(RTLD_NEXT, name));
}
#define NEXT(name) next(&::name, #name)

int opened(int fd, const char* path) {
  if (fd >= 0 && fd < static_cast<int>(sizeof watched)) watched[fd] = static_cast<unsigned char>(matches(path));
  return fd;
}

// The one body of open, open64 and openat: fail creating a matching file, or open it and note
// whether its writes are watched. `call` opens with the mode read from the variadic arguments.
#define UNET_OPEN_BODY(path, flags, call)                                                  \
  va_list ap;                                                                               \
  va_start(ap, flags);                                                                      \
  const mode_t mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0; \
  va_end(ap);                                                                               \
  configure();                                                                              \
  if (fail_call == OPEN && (flags & O_CREAT) && matches(path)) return inject();             \
  return opened(call, path)

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) { UNET_OPEN_BODY(path, flags, NEXT(open)(path, flags, mode)); }
int open64(const char* path, int flags, ...) { UNET_OPEN_BODY(path, flags, NEXT(open64)(path, flags, mode)); }
int openat(int dir, const char* path, int flags, ...) {
  UNET_OPEN_BODY(path, flags, NEXT(openat)(dir, path, flags, mode));
}

ssize_t write(int fd, const void* data, size_t n) {
  configure();
  if (fail_call == WRITE && fd >= 0 && fd < static_cast<int>(sizeof watched) && watched[fd]) {
    if (written >= fail_after) return inject();
    if (written + static_cast<long long>(n) > fail_after) n = static_cast<size_t>(fail_after - written);  // a short write first
    written += static_cast<long long>(n);
  }
  return NEXT(write)(fd, data, n);
}

int fsync(int fd) {
  configure();
  if (fail_call == FSYNC && fd >= 0 && fd < static_cast<int>(sizeof watched) && watched[fd]) return inject();
  return NEXT(fsync)(fd);
}

int rename(const char* from, const char* to) {
  configure();
  if (fail_call == RENAME && matches(to)) return inject();
  return NEXT(rename)(from, to);
}

int close(int fd) {
  if (fd >= 0 && fd < static_cast<int>(sizeof watched)) watched[fd] = 0;
  return NEXT(close)(fd);
}

}  // extern "C"
