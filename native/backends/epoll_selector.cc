#include "epoll_selector.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

namespace aionode {
namespace {

// epoll_event.data.u64 carries the registration itself, so Select needs no
// table lookup: the low 32 bits are the token, the next bits the interest.
// The wake-up eventfd is stored with interest 0, which no caller registration
// can have (Register rejects it), so it can never collide with a token.
uint64_t PackData(Token token, uint32_t interest) {
  return static_cast<uint32_t>(token) | (static_cast<uint64_t>(interest) << 32);
}
Token DataToken(uint64_t data) {
  return static_cast<Token>(static_cast<uint32_t>(data));
}
uint32_t DataInterest(uint64_t data) {
  return static_cast<uint32_t>(data >> 32);
}

// epoll_wait(2) rejects maxevents above INT_MAX / sizeof(epoll_event); a
// batch this large is already far beyond what one loop iteration handles.
constexpr int kMaxBatch = 1 << 16;

uint32_t ToOsFlags(uint32_t interest);
uint32_t FromOsFlags(uint32_t os_events);

}  // namespace

int EpollSelector::Create(std::unique_ptr<Selector>* out) {
  std::unique_ptr<EpollSelector> sel(new EpollSelector());
  // epoll_create1(2): EPOLL_CLOEXEC so the fd never leaks into children.
  sel->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (sel->epfd_ < 0) return -errno;
  int rc = sel->wakeup_.Open();
  if (rc < 0) return rc;
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = PackData(INT32_MIN, 0);
  if (epoll_ctl(sel->epfd_, EPOLL_CTL_ADD, sel->wakeup_.read_fd(), &ev) < 0) {
    return -errno;
  }
  *out = std::move(sel);
  return 0;
}

EpollSelector::~EpollSelector() {
  if (epfd_ >= 0) close(epfd_);
}

int EpollSelector::Register(Fd fd, Token token, uint32_t interest) {
  if (!backend::ValidInterest(interest)) return -EINVAL;
  if (fd < 0) return -EBADF;
  if (IsRegistered(fd)) return -EEXIST;
  struct epoll_event ev = {};
  ev.events = ToOsFlags(interest);
  ev.data.u64 = PackData(token, interest);
  // epoll_ctl(2): EBADF for a closed fd, EPERM for a regular file or
  // directory (always "ready", epoll refuses them), EEXIST if the kernel
  // still holds this fd, which happens when it was closed while a dup()
  // of it stays open (see Unregister).
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
  const size_t ufd = static_cast<size_t>(fd);
  if (ufd >= registered_.size()) registered_.resize(ufd + 1, 0);
  registered_[ufd] = 1;
  ++size_;
  return 0;
}

int EpollSelector::Modify(Fd fd, Token token, uint32_t interest) {
  if (!backend::ValidInterest(interest)) return -EINVAL;
  if (!IsRegistered(fd)) return -ENOENT;
  struct epoll_event ev = {};
  ev.events = ToOsFlags(interest);
  ev.data.u64 = PackData(token, interest);
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
  // epoll(7): the kernel drops a registration by itself when the last
  // descriptor of its file closes, so ENOENT here means the fd was closed
  // behind our back and its number now names another file. The caller is
  // re-filing this number for that file: add it, so a re-added reader is
  // watched on every backend alike (poll and select key by number anyway).
  if (errno != ENOENT) return -errno;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
  return 0;
}

int EpollSelector::Unregister(Fd fd) {
  if (!IsRegistered(fd)) return -ENOENT;
  registered_[static_cast<size_t>(fd)] = 0;
  --size_;
  // epoll(7): closing the last descriptor of a file removes it from every
  // epoll set, and EPOLL_CTL_DEL then fails with EBADF (fd closed) or ENOENT
  // (fd number already reused by another file). Both mean "already gone".
  // If a dup() of the closed fd is still open the kernel keeps the old
  // registration (keyed by file, not fd number) and may report it under the
  // old token; the binding must close through the loop and use fresh tokens
  // to drop such stale events (reliability F1).
  if (epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr) < 0 && errno != EBADF &&
      errno != ENOENT) {
    return -errno;
  }
  return 0;
}

int EpollSelector::Select(EventBuffer* out, int64_t timeout_ns) {
  if (out == nullptr || out->data == nullptr || out->capacity <= 0) {
    return -EINVAL;
  }
  const int max_events = out->capacity < kMaxBatch ? out->capacity : kMaxBatch;
  if (events_.size() < static_cast<size_t>(max_events)) {
    events_.resize(static_cast<size_t>(max_events));
  }
  backend::Deadline deadline(timeout_ns);
  int n;
  for (;;) {
    n = epoll_wait(epfd_, events_.data(), max_events,
                   backend::CeilMs(deadline.NextWaitNs()));
    if (n > 0) break;
    if (n < 0 && errno != EINTR) return -errno;
    // A timeout or a signal. Waits are sliced at INT_MAX ms and EINTR may
    // come at any time, so go back to sleep for whatever is really left.
    if (deadline.Expired()) return 0;
  }
  int count = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t data = events_[static_cast<size_t>(i)].data.u64;
    const uint32_t interest = DataInterest(data);
    if (interest == 0) {  // the wake-up eventfd: consumed, never reported
      wakeup_.Drain();
      continue;
    }
    const uint32_t events =
        FromOsFlags(events_[static_cast<size_t>(i)].events) & interest;
    if (events == 0) continue;
    out->data[2 * count] = DataToken(data);
    out->data[2 * count + 1] = static_cast<int32_t>(events);
    ++count;
  }
  return count;
}

int EpollSelector::Wakeup() { return wakeup_.Signal(); }

bool EpollSelector::IsRegistered(Fd fd) const {
  return fd >= 0 && static_cast<size_t>(fd) < registered_.size() &&
         registered_[static_cast<size_t>(fd)] != 0;
}

namespace {

uint32_t ToOsFlags(uint32_t interest) {
  // Level-triggered (no EPOLLET): an fd stays reported while it is ready,
  // like poll and select, so a partial read never loses readiness.
  uint32_t os = 0;
  if (interest & kReadable) os |= EPOLLIN;
  if (interest & kWritable) os |= EPOLLOUT;
  return os;
}

uint32_t FromOsFlags(uint32_t os_events) {
  // As CPython's selectors: EPOLLERR and EPOLLHUP, which epoll_ctl(2) says
  // are always reported whatever the interest, count as both directions;
  // the caller then masks by the registered interest, so a reader sees EOF
  // and a writer sees EPIPE on its next call.
  constexpr uint32_t kFailure = EPOLLERR | EPOLLHUP;
  uint32_t events = 0;
  if (os_events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | kFailure)) {
    events |= kReadable;
  }
  if (os_events & (EPOLLOUT | kFailure)) events |= kWritable;
  return events;
}

}  // namespace
}  // namespace aionode
