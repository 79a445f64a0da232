// POSIX poll(2) backend (built with AIO_HAVE_POLL): the portable fallback,
// forceable in tests. It has no pollable fd of its own (BackendFd() is -1),
// so the binding drives it from a helper thread; hence the interest table is
// guarded by a mutex and Select waits on a snapshot of it.
#ifndef AIONODE_BACKENDS_POLL_SELECTOR_H_
#define AIONODE_BACKENDS_POLL_SELECTOR_H_

#include <poll.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "../selector.h"
#include "backend_util.h"

namespace aionode {

class PollSelector final : public Selector {
 public:
  // Creates the wake-up fd. Returns 0 or -errno.
  static int Create(std::unique_ptr<Selector>* out);

  int Register(Fd fd, Token token, uint32_t interest) override;
  int Modify(Fd fd, Token token, uint32_t interest) override;
  int Unregister(Fd fd) override;
  int Select(EventBuffer* out, int64_t timeout_ns) override;
  int Wakeup() override;
  Fd BackendFd() const override { return -1; }
  const char* Name() const override { return "poll"; }
  int Size() const override;

 private:
  struct Registration {
    Token token;
    uint32_t interest;
    uint64_t serial;  // changes on every Register, kept by Modify
    Fd fd;            // pollfds_[i].fd is -1 while the registration is stale
    backend::FileId id;  // the file registered; checked before reporting
    bool stale;       // its file was closed behind our back: never reported
  };

  PollSelector() = default;
  // Index of fd in pollfds_ / regs_, or -1. Requires mu_.
  int IndexOf(Fd fd) const;
  // The registration at index i lost its file (closed, or the number now
  // names another file): poll(2) ignores a negative fd, so it stops being
  // watched (no POLLNVAL spin) until Modify re-files it. Requires mu_.
  void MarkStale(size_t i);
  // Wakes a Select blocked on another thread so it takes a new snapshot.
  void WakeBlockedSelect(bool select_blocked);

  backend::WakeupFd wakeup_;

  mutable std::mutex mu_;
  // Guarded by mu_. pollfds_[0] is the wake-up fd; pollfds_[i] and regs_[i]
  // (i >= 1) describe one registration; index_by_fd_[fd] is its i or -1.
  std::vector<struct pollfd> pollfds_;
  std::vector<Registration> regs_;
  std::vector<int32_t> index_by_fd_;
  uint64_t next_serial_ = 1;
  bool select_blocked_ = false;  // a Select is waiting on a snapshot

  // Select's private copy of pollfds_ / serials, so it can wait unlocked.
  std::vector<struct pollfd> snapshot_;
  std::vector<uint64_t> snapshot_serials_;
};

}  // namespace aionode

#endif  // AIONODE_BACKENDS_POLL_SELECTOR_H_
