#include "timer_fd.h"

#include <cerrno>

#if defined(__linux__)
#include <sys/timerfd.h>
#include <unistd.h>
#endif

namespace aionode {

#if defined(__linux__)

int TimerFdCreate() {
  // timerfd_create(2): CLOEXEC so the fd never leaks into child processes
  // (reliability F16); NONBLOCK so a drain after a spurious wake-up returns
  // EAGAIN instead of blocking the loop.
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int TimerFdArm(int fd, int64_t when_ns) {
  // timerfd_settime(2): with TFD_TIMER_ABSTIME a deadline that has already
  // passed expires immediately, so late arming cannot lose a timer. But an
  // all-zero it_value disarms instead, so a zero or negative deadline (a
  // timer scheduled at loop time 0 or before) is moved to 1 ns after boot:
  // just as past, and it fires.
  if (when_ns < 1) when_ns = 1;
  struct itimerspec spec = {};  // it_interval zero: one-shot
  spec.it_value.tv_sec = static_cast<time_t>(when_ns / 1000000000);
  spec.it_value.tv_nsec = static_cast<long>(when_ns % 1000000000);
  if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, nullptr) < 0) return -errno;
  return 0;
}

int TimerFdDisarm(int fd) {
  struct itimerspec spec = {};  // all-zero it_value: disarm
  if (timerfd_settime(fd, 0, &spec, nullptr) < 0) return -errno;
  return 0;
}

int TimerFdDrain(int fd) {
  // timerfd_create(2): read() returns the 8-byte expiration count and resets
  // it; with nothing expired a non-blocking fd fails with EAGAIN.
  uint64_t expirations;
  for (;;) {
    ssize_t n = read(fd, &expirations, sizeof(expirations));
    if (n >= 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    return -errno;
  }
}

#else  // !__linux__: the binding falls back to a uv_timer_t.

int TimerFdCreate() { return -ENOSYS; }
int TimerFdArm(int, int64_t) { return -ENOSYS; }
int TimerFdDisarm(int) { return -ENOSYS; }
int TimerFdDrain(int) { return -ENOSYS; }

#endif

}  // namespace aionode
