// POSIX select(2) backend (built with AIO_HAVE_SELECT). It can only watch
// fds below FD_SETSIZE (Register says -ERANGE above that); like poll it has
// no pollable fd of its own and is driven from the binding's helper thread,
// so the interest table is guarded by a mutex and Select waits on a copy.
#ifndef AIONODE_BACKENDS_SELECT_SELECTOR_H_
#define AIONODE_BACKENDS_SELECT_SELECTOR_H_

#include <sys/select.h>

#include <cstdint>
#include <memory>
#include <mutex>

#include "../selector.h"
#include "backend_util.h"

namespace aionode {

class SelectSelector final : public Selector {
 public:
  // Creates the wake-up fd (-ERANGE if even that is >= FD_SETSIZE).
  // Returns 0 or -errno.
  static int Create(std::unique_ptr<Selector>* out);

  int Register(Fd fd, Token token, uint32_t interest) override;
  int Modify(Fd fd, Token token, uint32_t interest) override;
  int Unregister(Fd fd) override;
  int Select(EventBuffer* out, int64_t timeout_ns) override;
  int Wakeup() override;
  Fd BackendFd() const override { return -1; }
  const char* Name() const override { return "select"; }
  int Size() const override;

 private:
  struct Registration {
    Token token;
    uint32_t interest;
    uint64_t serial;  // 0: not registered; new on every Register
    backend::FileId id;  // the file registered; checked before reporting
    bool stale;       // its file was closed behind our back: out of the sets
  };

  SelectSelector() = default;
  // Registration of fd, or nullptr. Requires mu_.
  Registration* Find(Fd fd);
  // fd's file was closed behind our back (or its number names another file
  // now): take it out of the sets, so select(2) neither fails with EBADF
  // nor reports the new file, until Modify re-files it. Requires mu_.
  void MarkStale(Fd fd);
  // Copies the sets and serials for a wait. Requires mu_; returns nfds.
  int TakeSnapshot();
  // Writes fd's interest into the fd_sets. Requires mu_.
  void SetInterest(Fd fd, uint32_t interest);
  void WakeBlockedSelect(bool select_blocked);

  backend::WakeupFd wakeup_;

  mutable std::mutex mu_;
  // Guarded by mu_.
  Registration regs_[FD_SETSIZE] = {};
  fd_set read_set_;
  fd_set write_set_;
  int max_fd_ = -1;  // highest fd in the sets, the wake-up fd included
  int size_ = 0;
  uint64_t next_serial_ = 1;
  bool select_blocked_ = false;

  // Select's private copy, so it can wait unlocked.
  fd_set snapshot_read_;
  fd_set snapshot_write_;
  uint64_t snapshot_serials_[FD_SETSIZE] = {};
};

}  // namespace aionode

#endif  // AIONODE_BACKENDS_SELECT_SELECTOR_H_
