// Linux epoll(7) backend (built with AIO_HAVE_EPOLL). Level-triggered; the
// epoll fd is BackendFd(), so Node's loop can watch it with a uv_poll_t.
#ifndef AIONODE_BACKENDS_EPOLL_SELECTOR_H_
#define AIONODE_BACKENDS_EPOLL_SELECTOR_H_

#include <sys/epoll.h>

#include <memory>
#include <vector>

#include "../selector.h"
#include "backend_util.h"

namespace aionode {

class EpollSelector final : public Selector {
 public:
  // Creates the epoll fd and its wake-up eventfd. Returns 0 or -errno.
  static int Create(std::unique_ptr<Selector>* out);

  ~EpollSelector() override;

  int Register(Fd fd, Token token, uint32_t interest) override;
  int Modify(Fd fd, Token token, uint32_t interest) override;
  int Unregister(Fd fd) override;
  int Select(EventBuffer* out, int64_t timeout_ns) override;
  int Wakeup() override;
  Fd BackendFd() const override { return epfd_; }
  const char* Name() const override { return "epoll"; }
  int Size() const override { return size_; }

 private:
  EpollSelector() = default;
  bool IsRegistered(Fd fd) const;

  int epfd_ = -1;
  backend::WakeupFd wakeup_;
  // fd -> registered (1) or not (0). The kernel forgets an fd by itself when
  // its last descriptor closes, so this table is what tells Unregister of a
  // closed fd (success) from Unregister of an unknown one (-ENOENT), and it
  // backs Size(). Only the registering thread touches it; Select does not.
  std::vector<uint8_t> registered_;
  int size_ = 0;
  std::vector<struct epoll_event> events_;  // Select's kernel buffer
};

}  // namespace aionode

#endif  // AIONODE_BACKENDS_EPOLL_SELECTOR_H_
