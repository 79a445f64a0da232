// The event-source contract: what the loop host (loop_wrap) drives, whether
// the source reports readiness (Selector, selector.h) or completions
// (Proactor, proactor.h). The host watches BackendFd() with one uv_poll_t
// (or runs a WaitThread when there is none), calls Wait(0) when it polls
// readable, and hands the pairs to JavaScript in one batch.
//
// Conventions shared by every method:
//   * Returns 0 (or a count) on success and -errno on failure; never throws,
//     never prints. EINTR is handled inside.
//   * Wait reports (token, value) pairs: (token, events) for a selector,
//     (token, result) for a proactor. Tokens below 0 are reserved for the
//     host: kTimerToken is the expiry of the source's own timer (ArmTimer).
//
// Timers: the host keeps the timer heap; a source that can wake itself at a
// deadline (a timerfd in its own wait set, kqueue's EVFILT_TIMER, ...)
// implements ArmTimer so the host needs no second wake-up mechanism. The
// expiry is consumed inside Wait (the timerfd is drained there) and reported
// as one (kTimerToken, 1) pair, so a Wait on a helper thread still hands
// something over. Sources without one return -ENOSYS and the host uses a
// uv_timer_t: one rule, "the source's timer, else libuv's".
//
// Threads: a source belongs to one thread, except that Wakeup() and
// ArmTimer() after the first call may be called from any thread while Wait
// blocks on another (the helper-thread mode).
#ifndef AIONODE_EVENT_SOURCE_H_
#define AIONODE_EVENT_SOURCE_H_

#include <cerrno>
#include <cstdint>

namespace aionode {

using Fd = int;
using Token = int32_t;

// Reserved token of a source's timer expiry; never reaches JavaScript.
constexpr Token kTimerToken = -2;

// Caller-owned output of Wait: `capacity` pairs laid out as
// data[2*i] = token, data[2*i+1] = value. Wait never writes past capacity.
struct EventBuffer {
  int32_t* data;
  int capacity;  // in pairs
};

class EventSource {
 public:
  virtual ~EventSource() = default;

  // Waits up to `timeout_ns` nanoseconds (-1: forever, 0: do not block) and
  // fills `out`; returns the number of pairs (0 on timeout or wake-up).
  virtual int Wait(EventBuffer* out, int64_t timeout_ns) = 0;

  // Makes a blocked Wait (or the next one) return promptly. Thread-safe.
  virtual int Wakeup() = 0;

  // An fd that polls readable whenever Wait would report something, or -1
  // when there is none (the host then needs its helper thread).
  virtual Fd BackendFd() const = 0;

  // The backend's name: "epoll", "poll", "select", "io_uring".
  virtual const char* Name() const = 0;

  // Arms the source's own timer to expire at absolute CLOCK_MONOTONIC time
  // `when_ns`; INT64_MAX disarms. A deadline of zero, negative or already
  // past expires at once (never "disarm": issue 8 item 4). The first call
  // sets the timer up (call it from the owning thread before any Wait runs
  // elsewhere). -ENOSYS when the source has no timer of its own.
  virtual int ArmTimer(int64_t /*when_ns*/) { return -ENOSYS; }
};

}  // namespace aionode

#endif  // AIONODE_EVENT_SOURCE_H_
