#include "poll_selector.h"

#include <poll.h>

#include <cerrno>

namespace aionode {
namespace {

short ToOsFlags(uint32_t interest);
uint32_t FromOsFlags(short revents);

}  // namespace

int PollSelector::Create(std::unique_ptr<Selector>* out) {
  std::unique_ptr<PollSelector> sel(new PollSelector());
  int rc = sel->wakeup_.Open();
  if (rc < 0) return rc;
  struct pollfd wake = {};
  wake.fd = sel->wakeup_.read_fd();
  wake.events = POLLIN;
  sel->pollfds_.push_back(wake);
  sel->regs_.push_back(Registration{INT32_MIN, 0, 0, wake.fd, {}, false});
  *out = std::move(sel);
  return 0;
}

int PollSelector::Register(Fd fd, Token token, uint32_t interest) {
  if (!backend::ValidInterest(interest)) return -EINVAL;
  if (fd < 0) return -EBADF;
  bool blocked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (IndexOf(fd) >= 0) return -EEXIST;
    // poll(2) would only say POLLNVAL later; refuse a closed fd now, with
    // the EBADF that epoll_ctl(2) gives.
    backend::FileId id;
    if (backend::GetFileId(fd, &id) < 0) return -EBADF;
    struct pollfd pfd = {};
    pfd.fd = fd;
    pfd.events = ToOsFlags(interest);
    pollfds_.push_back(pfd);
    regs_.push_back(Registration{token, interest, next_serial_++, fd, id, false});
    const size_t ufd = static_cast<size_t>(fd);
    if (ufd >= index_by_fd_.size()) index_by_fd_.resize(ufd + 1, -1);
    index_by_fd_[ufd] = static_cast<int32_t>(pollfds_.size() - 1);
    blocked = select_blocked_;
  }
  WakeBlockedSelect(blocked);
  return 0;
}

int PollSelector::Modify(Fd fd, Token token, uint32_t interest) {
  if (!backend::ValidInterest(interest)) return -EINVAL;
  bool blocked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int i = IndexOf(fd);
    if (i < 0) return -ENOENT;
    backend::FileId id;
    if (backend::GetFileId(fd, &id) < 0) return -EBADF;  // as epoll_ctl(2) MOD
    // Re-filing also revives a stale registration for the file that has the
    // number now, as epoll's MOD-then-ADD does.
    Registration& reg = regs_[static_cast<size_t>(i)];
    pollfds_[static_cast<size_t>(i)].fd = fd;
    pollfds_[static_cast<size_t>(i)].events = ToOsFlags(interest);
    reg.token = token;
    reg.interest = interest;
    reg.id = id;
    reg.stale = false;
    blocked = select_blocked_;
  }
  WakeBlockedSelect(blocked);
  return 0;
}

int PollSelector::Unregister(Fd fd) {
  bool blocked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int i = IndexOf(fd);
    if (i < 0) return -ENOENT;
    // Swap with the last entry: O(1), order does not matter to poll(2).
    const size_t ui = static_cast<size_t>(i);
    const size_t last = pollfds_.size() - 1;
    if (ui != last) {
      pollfds_[ui] = pollfds_[last];
      regs_[ui] = regs_[last];
      index_by_fd_[static_cast<size_t>(regs_[ui].fd)] = i;
    }
    pollfds_.pop_back();
    regs_.pop_back();
    index_by_fd_[static_cast<size_t>(fd)] = -1;
    blocked = select_blocked_;
  }
  WakeBlockedSelect(blocked);
  return 0;
}

int PollSelector::Select(EventBuffer* out, int64_t timeout_ns) {
  if (out == nullptr || out->data == nullptr || out->capacity <= 0) {
    return -EINVAL;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.assign(pollfds_.begin(), pollfds_.end());
    snapshot_serials_.resize(regs_.size());
    for (size_t i = 0; i < regs_.size(); ++i) {
      snapshot_serials_[i] = regs_[i].serial;
    }
    // Set under the same lock as the snapshot: a change made after this
    // point sees the flag and wakes us; one made before is in the snapshot.
    select_blocked_ = timeout_ns != 0;
  }
  backend::Deadline deadline(timeout_ns);
  int n;
  for (;;) {
    n = poll(snapshot_.data(), static_cast<nfds_t>(snapshot_.size()),
             backend::CeilMs(deadline.NextWaitNs()));
    if (n > 0) break;
    if (n < 0 && errno != EINTR) {
      const int err = errno;
      std::lock_guard<std::mutex> lock(mu_);
      select_blocked_ = false;
      return -err;
    }
    // A timeout (possibly of one INT_MAX ms slice) or a signal.
    if (deadline.Expired()) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  select_blocked_ = false;
  if (n <= 0) return 0;
  int count = 0;
  if (snapshot_[0].revents != 0) wakeup_.Drain();
  for (size_t i = 1; i < snapshot_.size() && count < out->capacity; ++i) {
    const short revents = snapshot_[i].revents;
    if (revents == 0) continue;
    // Report what the fd is registered as NOW: a registration removed (or
    // removed and re-added, which gives a new serial) while we waited is
    // skipped; a Modify while we waited changes token and mask.
    const int cur = IndexOf(snapshot_[i].fd);
    if (cur < 0) continue;
    const Registration& reg = regs_[static_cast<size_t>(cur)];
    if (reg.serial != snapshot_serials_[i] || reg.stale) continue;
    // A registration dies with its file, on every backend: a closed fd
    // (POLLNVAL) or a number that now names another file is never
    // reported, exactly as epoll forgets a closed file.
    backend::FileId now;
    if ((revents & POLLNVAL) != 0 ||
        backend::GetFileId(reg.fd, &now) < 0 || now != reg.id) {
      MarkStale(static_cast<size_t>(cur));
      continue;
    }
    const uint32_t events = FromOsFlags(revents) & reg.interest;
    if (events == 0) continue;
    out->data[2 * count] = reg.token;
    out->data[2 * count + 1] = static_cast<int32_t>(events);
    ++count;
  }
  return count;
}

int PollSelector::Wakeup() { return wakeup_.Signal(); }

void PollSelector::MarkStale(size_t i) {
  regs_[i].stale = true;
  pollfds_[i].fd = -1;
}

int PollSelector::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(pollfds_.size()) - 1;
}

int PollSelector::IndexOf(Fd fd) const {
  if (fd < 0 || static_cast<size_t>(fd) >= index_by_fd_.size()) return -1;
  return index_by_fd_[static_cast<size_t>(fd)];
}

void PollSelector::WakeBlockedSelect(bool select_blocked) {
  // Only a Select blocked on another thread needs the kick; the
  // single-threaded path pays no system call.
  if (select_blocked) wakeup_.Signal();
}

namespace {

short ToOsFlags(uint32_t interest) {
  short os = 0;
  if (interest & kReadable) os |= POLLIN;
  if (interest & kWritable) os |= POLLOUT;
  return os;
}

uint32_t FromOsFlags(short revents) {
  // As CPython's selectors: an error or hang-up (POLLERR, POLLHUP, and
  // POLLNVAL for an fd closed while registered) is reported as both
  // directions, and the caller masks by the registered interest, so a
  // reader sees EOF and a writer sees EPIPE on its next call. poll(2) on
  // Linux returns POLLHUP without POLLIN for a pipe whose writer is gone.
  constexpr short kFailure = POLLERR | POLLHUP | POLLNVAL;
  uint32_t events = 0;
  if (revents & (POLLIN | POLLPRI | kFailure)) events |= kReadable;
  if (revents & (POLLOUT | kFailure)) events |= kWritable;
  return events;
}

}  // namespace
}  // namespace aionode
