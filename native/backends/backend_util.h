// Private helpers shared by the selector backends (not part of the contract,
// never included outside native/backends/ and the core test):
//   * WakeupFd: the fd a Wakeup() writes to and Select() drains.
//   * ValidInterest, and the timeout arithmetic every Select needs: an
//     absolute deadline on MonotonicNs() and rounding UP to the backend's
//     resolution, so a Select never returns before its timeout (F8).
#ifndef AIONODE_BACKENDS_BACKEND_UTIL_H_
#define AIONODE_BACKENDS_BACKEND_UTIL_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>

#if defined(__linux__)
#include <sys/eventfd.h>
#endif

#include "../clock.h"
#include "../selector.h"

namespace aionode {
namespace backend {

// True for a non-empty interest made only of kReadable | kWritable.
inline bool ValidInterest(uint32_t interest) {
  return interest != 0 && (interest & ~(kReadable | kWritable)) == 0;
}

// The longest single wait handed to the kernel. poll(2) and epoll_wait(2)
// take an int of milliseconds; longer timeouts are waited in slices.
constexpr int64_t kMaxSliceNs = static_cast<int64_t>(INT_MAX) * 1000000;

// Tracks one Select's timeout as an absolute deadline, so an EINTR retry or a
// sliced wait resumes with the time that is really left.
class Deadline {
 public:
  // timeout_ns < 0: forever; 0: do not block.
  explicit Deadline(int64_t timeout_ns) : timeout_ns_(timeout_ns) {
    if (timeout_ns > 0) {
      const int64_t now = MonotonicNs();
      // A deadline beyond INT64_MAX (centuries away) is treated as forever.
      deadline_ = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    }
  }

  bool Forever() const { return timeout_ns_ < 0; }
  bool NonBlocking() const { return timeout_ns_ == 0; }

  // Nanoseconds left for the next wait: -1 forever, else >= 0, capped at
  // kMaxSliceNs. The first call reuses the requested timeout; later calls
  // re-read the clock.
  int64_t NextWaitNs() {
    if (timeout_ns_ <= 0) return timeout_ns_;
    int64_t left;
    if (first_) {
      first_ = false;
      left = timeout_ns_;
    } else {
      left = deadline_ - MonotonicNs();
      if (left < 0) left = 0;
    }
    return left > kMaxSliceNs ? kMaxSliceNs : left;
  }

  // Whether the deadline has passed (always false for forever, true for 0).
  bool Expired() const {
    if (timeout_ns_ < 0) return false;
    if (timeout_ns_ == 0) return true;
    return deadline_ != INT64_MAX && MonotonicNs() >= deadline_;
  }

 private:
  int64_t timeout_ns_;
  int64_t deadline_ = 0;
  bool first_ = true;
};

// Nanoseconds to the milliseconds of poll(2) / epoll_wait(2), rounded up so
// that a 1.5 ms timeout waits 2 ms, never 1. -1 stays -1.
inline int CeilMs(int64_t ns) {
  if (ns < 0) return -1;
  const int64_t ms = ns / 1000000 + (ns % 1000000 != 0 ? 1 : 0);
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// The wake-up channel of a selector: an eventfd on Linux, a self-pipe
// elsewhere. Both ends are non-blocking and close-on-exec (F16).
class WakeupFd {
 public:
  WakeupFd() = default;
  WakeupFd(const WakeupFd&) = delete;
  WakeupFd& operator=(const WakeupFd&) = delete;
  ~WakeupFd() {
    if (read_fd_ >= 0) close(read_fd_);
    if (write_fd_ >= 0 && write_fd_ != read_fd_) close(write_fd_);
  }

  // Creates the fd(s). Returns 0 or -errno.
  int Open() {
#if defined(__linux__)
    // eventfd(2): one fd, an 8-byte counter; writes add, a read resets it.
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return -errno;
    read_fd_ = write_fd_ = fd;
#elif defined(__APPLE__)
    // macOS has no pipe2(2); fork() in another thread between pipe() and
    // fcntl() could leak these two fds into that one child.
    int fds[2];
    if (pipe(fds) < 0) return -errno;
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    for (int fd : fds) {
      if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
          fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        return -errno;
      }
    }
#else
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return -errno;
    read_fd_ = fds[0];
    write_fd_ = fds[1];
#endif
    return 0;
  }

  // The end a selector watches for readability.
  int read_fd() const { return read_fd_; }

  // Makes read_fd() readable. Only write(2), which is async-signal-safe;
  // errno is preserved for the benefit of signal handlers. A full pipe or a
  // saturated counter (EAGAIN) means a wake-up is already pending.
  int Signal() const {
    const int saved_errno = errno;
    int rc = 0;
#if defined(__linux__)
    const uint64_t one = 1;
    const void* buf = &one;
    const size_t len = sizeof(one);
#else
    const char one = 1;
    const void* buf = &one;
    const size_t len = 1;
#endif
    while (write(write_fd_, buf, len) < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) rc = -errno;
      break;
    }
    errno = saved_errno;
    return rc;
  }

  // Consumes every pending wake-up so read_fd() polls idle again.
  void Drain() const {
    char buf[64];  // >= 8: an eventfd read needs the whole counter.
    for (;;) {
      ssize_t n = read(read_fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      // eventfd: one read resets the counter; a pipe may hold more bytes.
      if (n <= 0 || read_fd_ == write_fd_ ||
          static_cast<size_t>(n) < sizeof(buf)) {
        return;
      }
    }
  }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

// fcntl(2) F_GETFD fails with EBADF exactly when fd is not open: the check
// poll and select need to report -EBADF the way epoll_ctl(2) does.
inline bool FdIsOpen(int fd) { return fd >= 0 && fcntl(fd, F_GETFD) >= 0; }

// The open file behind an fd, as fstat(2) names it (st_dev, st_ino). poll
// and select watch fd *numbers*; when a watched fd is closed behind their
// back and the number is handed to another file, only this tells the two
// apart, so they can let the registration die with its file as epoll's
// kernel does.
struct FileId {
  uint64_t dev = 0;
  uint64_t ino = 0;
  bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino; }
  bool operator!=(const FileId& o) const { return !(*this == o); }
};

// 0 and *out, or -errno (-EBADF for a closed fd).
inline int GetFileId(int fd, FileId* out) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  out->dev = static_cast<uint64_t>(st.st_dev);
  out->ino = static_cast<uint64_t>(st.st_ino);
  return 0;
}

}  // namespace backend
}  // namespace aionode

#endif  // AIONODE_BACKENDS_BACKEND_UTIL_H_
