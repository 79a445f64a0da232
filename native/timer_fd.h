// A kernel timer that polls readable at an absolute monotonic deadline, so
// native timers wake the same selector as I/O (Linux timerfd). Elsewhere
// every call returns -ENOSYS and the binding falls back to a uv_timer_t.
#ifndef AIONODE_TIMER_FD_H_
#define AIONODE_TIMER_FD_H_

#include <cstdint>

namespace aionode {

// Creates a non-blocking, close-on-exec CLOCK_MONOTONIC timer fd.
// Returns the fd or -errno.
int TimerFdCreate();

// Arms `fd` to fire at absolute monotonic time `when_ns`. Any deadline
// already past, zero and negative ones included, fires at once (callAt(0)
// and callAt(-1) are "as soon as possible", never "never"). Returns 0 or
// -errno.
int TimerFdArm(int fd, int64_t when_ns);

// Cancels a pending deadline. Returns 0 or -errno.
int TimerFdDisarm(int fd);

// Clears the readable state after the timer fired. Returns 0 or -errno
// (0 also when it had not fired).
int TimerFdDrain(int fd);

}  // namespace aionode

#endif  // AIONODE_TIMER_FD_H_
