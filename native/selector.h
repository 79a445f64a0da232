// The selector contract: every readiness backend (epoll, poll, select, and
// later kqueue) implements this class in one file under backends/.
//
// Conventions shared by every method:
//   * Returns 0 (or a count) on success and -errno on failure; never throws,
//     never prints. EAGAIN and EINTR are handled inside (Select retries EINTR
//     with the remaining timeout).
//   * Registrations are keyed by fd (one registration per fd, as epoll does)
//     and carry a caller-chosen Token. Select reports tokens, never fds, so a
//     caller can tell a stale event for a closed-and-reused fd apart from a new
//     registration by giving every registration a fresh token.
//   * Tokens below 0 are reserved for the binding (timer fd, wake-ups).
//
// Threads: a Selector belongs to one thread, except that
//   * Wakeup() may be called from any thread at any time, and
//   * Register/Modify/Unregister may run on one thread while Select blocks on
//     another (the helper-thread mode of poll and select). The change is seen
//     by the next Select; call Wakeup() to make a blocked Select start over.
#ifndef AIONODE_SELECTOR_H_
#define AIONODE_SELECTOR_H_

#include <cstdint>
#include <memory>

#include "event_source.h"

namespace aionode {

// Interest and event bits. They equal Python's selectors.EVENT_READ and
// EVENT_WRITE so they cross into JavaScript unchanged.
enum : uint32_t {
  kReadable = 1,
  kWritable = 2,
};

// A Selector is an EventSource (event_source.h) whose Wait is Select and
// whose pairs are (token, events). Its timer (ArmTimer, Linux) is a timerfd
// registered in its own interest set under kTimerToken, drained inside Wait.
class Selector : public EventSource {
 public:
  ~Selector() override;

  // Starts watching `fd` for `interest` (kReadable | kWritable, non-zero).
  // -EEXIST if fd is already registered, -EBADF if fd is not open,
  // -EINVAL for an empty or unknown interest, -ERANGE if the backend cannot
  // hold this fd number (select's FD_SETSIZE).
  virtual int Register(Fd fd, Token token, uint32_t interest) = 0;

  // Replaces the interest and token of a registered fd. -ENOENT if absent.
  // A registration whose file was closed behind the selector's back is
  // re-made for whatever file now has that number (epoll's kernel dropped
  // it with the file; poll and select watch numbers anyway), so a caller
  // re-filing a reused number gets it watched on every backend.
  virtual int Modify(Fd fd, Token token, uint32_t interest) = 0;

  // Stops watching `fd`. -ENOENT if absent. Works for an fd that has already
  // been closed (the registration is forgotten either way).
  virtual int Unregister(Fd fd) = 0;

  // Waits up to `timeout_ns` nanoseconds (-1: forever, 0: poll) and fills
  // `out` with ready pairs; returns the number of pairs (0 on timeout).
  // Timeouts are rounded UP to the backend's resolution, so Select never
  // returns early because of rounding. Reported events are masked by the
  // registered interest; errors and hang-ups report as the registered
  // directions, as Python's selectors do. A Wakeup() makes it return (0 if
  // nothing else is ready).
  virtual int Select(EventBuffer* out, int64_t timeout_ns) = 0;

  // Makes a Select that is blocked (or the next one) return promptly.
  // Thread-safe and async-signal-safe.
  virtual int Wakeup() = 0;

  // An fd that polls readable whenever Select would report something
  // (epoll's fd, kqueue's fd), or -1 when the backend has none (poll,
  // select): those need the helper thread to be driven from Node's loop.
  virtual Fd BackendFd() const = 0;

  // The backend's name: "epoll", "poll", "select".
  virtual const char* Name() const = 0;

  // Number of registered fds (the timer's, once armed, included).
  virtual int Size() const = 0;

  // EventSource: Wait is Select, plus draining the timer fd when its
  // (kTimerToken, events) pair is among the results.
  int Wait(EventBuffer* out, int64_t timeout_ns) override;
  int ArmTimer(int64_t when_ns) override;

  // Unregisters and closes the timer fd (the host is done with it), so the
  // selector's size is what JavaScript registered. Idempotent.
  void DropTimer();
  bool HasTimer() const { return timer_fd_ >= 0; }

 private:
  int timer_fd_ = -1;
};

// Creates the backend called `name` ("epoll", "poll", "select", or
// "default" for the best one compiled in). Returns 0 and sets *out, or
// -ENOSYS if that backend is not compiled in here, or -errno from the
// backend's set-up (e.g. epoll_create1, eventfd).
int CreateSelector(const char* name, std::unique_ptr<Selector>* out);

// Backend names compiled into this build, best first, as a
// comma-separated list ("epoll,poll,select").
const char* AvailableSelectors();

}  // namespace aionode

#endif  // AIONODE_SELECTOR_H_
