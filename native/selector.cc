#include "selector.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

// The build decides which backends exist: binding.gyp / CMakeLists.txt add
// backends/<name>_selector.cc and define AIO_HAVE_<NAME> together, so these
// are the only platform conditions outside the backend files themselves.
#include "timer_fd.h"

#if defined(AIO_HAVE_EPOLL)
#include "backends/epoll_selector.h"
#endif
#if defined(AIO_HAVE_POLL)
#include "backends/poll_selector.h"
#endif
#if defined(AIO_HAVE_SELECT)
#include "backends/select_selector.h"
#endif

namespace aionode {
namespace {

struct Backend {
  const char* name;
  int (*create)(std::unique_ptr<Selector>* out);
};

// Compiled-in backends, best first: the order of Python's DefaultSelector
// (kqueue > epoll > poll > select). A trailing null entry keeps the array
// non-empty when a build has no backend at all.
constexpr Backend kBackends[] = {
#if defined(AIO_HAVE_EPOLL)
    {"epoll", &EpollSelector::Create},
#endif
#if defined(AIO_HAVE_POLL)
    {"poll", &PollSelector::Create},
#endif
#if defined(AIO_HAVE_SELECT)
    {"select", &SelectSelector::Create},
#endif
    {nullptr, nullptr},
};

// Every backend name aionode knows, compiled in here or not, so that a
// misspelt name (-EINVAL) differs from one this build lacks (-ENOSYS).
constexpr const char* kKnownNames[] = {"kqueue", "epoll",    "poll",
                                       "select", "io_uring", "iocp"};

}  // namespace

Selector::~Selector() {
  if (timer_fd_ >= 0) close(timer_fd_);
}

int Selector::Wait(EventBuffer* out, int64_t timeout_ns) {
  int n = Select(out, timeout_ns);
  if (timer_fd_ < 0 || n <= 0) return n;
  for (int i = 0; i < n; ++i) {
    if (out->data[2 * i] == kTimerToken) {
      // Consumed here, where it was reported: a helper thread that hands
      // the pair over would otherwise see the fd readable again at once.
      TimerFdDrain(timer_fd_);
      break;
    }
  }
  return n;
}

int Selector::ArmTimer(int64_t when_ns) {
  if (timer_fd_ < 0) {
    // The first call, on the owning thread before any helper thread waits:
    // Register is the same path a caller's fd takes, so every backend
    // watches the timer in its own set (epoll's, poll's or select's).
    int fd = TimerFdCreate();
    if (fd < 0) return fd;
    int rc = Register(fd, kTimerToken, kReadable);
    if (rc < 0) {
      close(fd);
      return rc;
    }
    timer_fd_ = fd;
  }
  // TimerFdArm maps a zero or past deadline to 1 ns: it fires.
  return when_ns == INT64_MAX ? TimerFdDisarm(timer_fd_)
                              : TimerFdArm(timer_fd_, when_ns);
}

void Selector::DropTimer() {
  if (timer_fd_ < 0) return;
  Unregister(timer_fd_);
  close(timer_fd_);
  timer_fd_ = -1;
}

int CreateSelector(const char* name, std::unique_ptr<Selector>* out) {
  if (name == nullptr || out == nullptr) return -EINVAL;
  const bool want_default = std::strcmp(name, "default") == 0;
  for (const Backend& b : kBackends) {
    if (b.name == nullptr) break;
    if (want_default || std::strcmp(name, b.name) == 0) return b.create(out);
  }
  if (want_default) return -ENOSYS;
  for (const char* known : kKnownNames) {
    if (std::strcmp(name, known) == 0) return -ENOSYS;
  }
  return -EINVAL;
}

const char* AvailableSelectors() {
  // Built once from kBackends; a function-local static is thread-safe.
  static const std::string list = [] {
    std::string s;
    for (const Backend& b : kBackends) {
      if (b.name == nullptr) break;
      if (!s.empty()) s += ',';
      s += b.name;
    }
    return s;
  }();
  return list.c_str();
}

}  // namespace aionode
