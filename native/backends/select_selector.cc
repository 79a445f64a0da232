#include "select_selector.h"

#include <sys/select.h>
#include <sys/time.h>

#include <cerrno>

namespace aionode {
namespace {

void ToOsFlags(int fd, uint32_t interest, fd_set* read_set, fd_set* write_set);
uint32_t FromOsFlags(int fd, const fd_set& read_set, const fd_set& write_set);

// Nanoseconds to select(2)'s timeval, rounded UP to the microsecond.
struct timeval CeilTimeval(int64_t ns) {
  const int64_t us = ns / 1000 + (ns % 1000 != 0 ? 1 : 0);
  struct timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

}  // namespace

int SelectSelector::Create(std::unique_ptr<Selector>* out) {
  std::unique_ptr<SelectSelector> sel(new SelectSelector());
  int rc = sel->wakeup_.Open();
  if (rc < 0) return rc;
  const int wake_fd = sel->wakeup_.read_fd();
  if (wake_fd >= FD_SETSIZE) return -ERANGE;
  FD_ZERO(&sel->read_set_);
  FD_ZERO(&sel->write_set_);
  FD_SET(wake_fd, &sel->read_set_);
  sel->max_fd_ = wake_fd;
  *out = std::move(sel);
  return 0;
}

int SelectSelector::Register(Fd fd, Token token, uint32_t interest) {
  if (!backend::ValidInterest(interest)) return -EINVAL;
  if (fd < 0) return -EBADF;
  // select(2): FD_SET with fd >= FD_SETSIZE is undefined behaviour (a write
  // past the fd_set), so such fds are refused outright.
  if (fd >= FD_SETSIZE) return -ERANGE;
  bool blocked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Find(fd) != nullptr) return -EEXIST;
    // select(2) would fail as a whole with EBADF later; refuse a closed fd
    // now, with the EBADF that epoll_ctl(2) gives.
    backend::FileId id;
    if (backend::GetFileId(fd, &id) < 0) return -EBADF;
    regs_[fd] = Registration{token, interest, next_serial_++, id, false};
    SetInterest(fd, interest);
    if (fd > max_fd_) max_fd_ = fd;
    ++size_;
    blocked = select_blocked_;
  }
  WakeBlockedSelect(blocked);
  return 0;
}

int SelectSelector::Modify(Fd fd, Token token, uint32_t interest) {
  if (!backend::ValidInterest(interest)) return -EINVAL;
  bool blocked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Registration* reg = Find(fd);
    if (reg == nullptr) return -ENOENT;
    backend::FileId id;
    if (backend::GetFileId(fd, &id) < 0) return -EBADF;  // as epoll_ctl(2) MOD
    // Re-filing also revives a stale registration for the file that has the
    // number now, as epoll's MOD-then-ADD does.
    reg->token = token;
    reg->interest = interest;
    reg->id = id;
    reg->stale = false;
    SetInterest(fd, interest);
    blocked = select_blocked_;
  }
  WakeBlockedSelect(blocked);
  return 0;
}

int SelectSelector::Unregister(Fd fd) {
  bool blocked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Registration* reg = Find(fd);
    if (reg == nullptr) return -ENOENT;
    *reg = Registration{0, 0, 0, {}, false};
    FD_CLR(fd, &read_set_);
    FD_CLR(fd, &write_set_);
    --size_;
    if (fd == max_fd_) {
      // The wake-up fd stays in read_set_, so the scan always stops.
      while (max_fd_ >= 0 && !FD_ISSET(max_fd_, &read_set_) &&
             !FD_ISSET(max_fd_, &write_set_)) {
        --max_fd_;
      }
    }
    blocked = select_blocked_;
  }
  WakeBlockedSelect(blocked);
  return 0;
}

int SelectSelector::Select(EventBuffer* out, int64_t timeout_ns) {
  if (out == nullptr || out->data == nullptr || out->capacity <= 0) {
    return -EINVAL;
  }
  int nfds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    nfds = TakeSnapshot();
    // Set under the same lock as the snapshot: a change made after this
    // point sees the flag and wakes us; one made before is in the snapshot.
    select_blocked_ = timeout_ns != 0;
  }
  backend::Deadline deadline(timeout_ns);
  int ebadf_retries = 0;
  fd_set ready_read;
  fd_set ready_write;
  int n;
  for (;;) {
    // select(2) overwrites the sets (and clears them on timeout), so every
    // attempt starts again from the snapshot.
    ready_read = snapshot_read_;
    ready_write = snapshot_write_;
    const int64_t wait_ns = deadline.NextWaitNs();
    struct timeval tv;
    if (wait_ns >= 0) tv = CeilTimeval(wait_ns);
    n = select(nfds, &ready_read, &ready_write, nullptr,
               wait_ns < 0 ? nullptr : &tv);
    if (n > 0) break;
    if (n < 0 && errno == EBADF) {
      // An fd was closed without being unregistered (or was unregistered
      // and closed by another thread after our snapshot). select(2) then
      // fails as a whole. A registration dies with its file, as on epoll:
      // take the closed fds out of the sets and wait again on the rest.
      int dropped = 0;
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd = 0; fd < nfds; ++fd) {
        const bool watched = FD_ISSET(fd, &snapshot_read_) ||
                             FD_ISSET(fd, &snapshot_write_);
        if (!watched || backend::FdIsOpen(fd)) continue;
        // Unregistered or already stale since our snapshot: the fresh
        // snapshot below leaves it out.
        if (regs_[fd].serial != 0 && !regs_[fd].stale) MarkStale(fd);
        ++dropped;
      }
      // Retry on a fresh snapshot. Every fd open may also mean the closed
      // number was reused between select(2) and our scan: the identity
      // check below catches that file, so a few retries are enough.
      if (dropped > 0 || ++ebadf_retries <= 3) {
        nfds = TakeSnapshot();
        continue;
      }
      // select(2) keeps refusing an open fd (an O_PATH fd, say): report the
      // error rather than spin.
      select_blocked_ = false;
      return -EBADF;
    }
    if (n < 0 && errno != EINTR) {
      const int err = errno;
      std::lock_guard<std::mutex> lock(mu_);
      select_blocked_ = false;
      return -err;
    }
    // A timeout (possibly of one slice) or a signal.
    if (deadline.Expired()) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  select_blocked_ = false;
  if (n <= 0) return 0;
  const int wake_fd = wakeup_.read_fd();
  if (FD_ISSET(wake_fd, &ready_read)) wakeup_.Drain();
  int count = 0;
  for (int fd = 0; fd < nfds && count < out->capacity; ++fd) {
    if (fd == wake_fd) continue;
    uint32_t events = FromOsFlags(fd, ready_read, ready_write);
    if (events == 0) continue;
    // Report what the fd is registered as NOW: a registration removed (or
    // removed and re-added, which gives a new serial) while we waited is
    // skipped; a Modify while we waited changes token and mask.
    const Registration& reg = regs_[fd];
    if (reg.serial == 0 || reg.serial != snapshot_serials_[fd] || reg.stale) {
      continue;
    }
    events &= reg.interest;
    if (events == 0) continue;
    // The number may name another file since it was registered: such a
    // registration died with its file and is never reported.
    backend::FileId now;
    if (backend::GetFileId(fd, &now) < 0 || now != reg.id) {
      MarkStale(fd);
      continue;
    }
    out->data[2 * count] = reg.token;
    out->data[2 * count + 1] = static_cast<int32_t>(events);
    ++count;
  }
  return count;
}

int SelectSelector::Wakeup() { return wakeup_.Signal(); }

void SelectSelector::MarkStale(Fd fd) {
  regs_[fd].stale = true;
  FD_CLR(fd, &read_set_);
  FD_CLR(fd, &write_set_);
}

int SelectSelector::TakeSnapshot() {
  snapshot_read_ = read_set_;
  snapshot_write_ = write_set_;
  const int nfds = max_fd_ + 1;
  for (int fd = 0; fd < nfds; ++fd) snapshot_serials_[fd] = regs_[fd].serial;
  return nfds;
}

int SelectSelector::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

SelectSelector::Registration* SelectSelector::Find(Fd fd) {
  if (fd < 0 || fd >= FD_SETSIZE || regs_[fd].serial == 0) return nullptr;
  return &regs_[fd];
}

void SelectSelector::SetInterest(Fd fd, uint32_t interest) {
  ToOsFlags(fd, interest, &read_set_, &write_set_);
}

void SelectSelector::WakeBlockedSelect(bool select_blocked) {
  // Only a Select blocked on another thread needs the kick; the
  // single-threaded path pays no system call.
  if (select_blocked) wakeup_.Signal();
}

namespace {

void ToOsFlags(int fd, uint32_t interest, fd_set* read_set,
               fd_set* write_set) {
  if (interest & kReadable) {
    FD_SET(fd, read_set);
  } else {
    FD_CLR(fd, read_set);
  }
  if (interest & kWritable) {
    FD_SET(fd, write_set);
  } else {
    FD_CLR(fd, write_set);
  }
}

uint32_t FromOsFlags(int fd, const fd_set& read_set,
                     const fd_set& write_set) {
  // select(2) has no error bits: a socket error or hang-up already shows
  // as readable (EOF) and writable (EPIPE) in the sets that watch the fd,
  // which is exactly "report as the registered directions".
  uint32_t events = 0;
  if (FD_ISSET(fd, &read_set)) events |= kReadable;
  if (FD_ISSET(fd, &write_set)) events |= kWritable;
  return events;
}

}  // namespace
}  // namespace aionode
