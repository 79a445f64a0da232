#include "clock.h"

#include <time.h>

namespace aionode {

int64_t MonotonicNs() {
  // clock_gettime(2): CLOCK_MONOTONIC never jumps with settimeofday() or NTP
  // steps, so deadlines computed from it cannot fire early after a wall-clock
  // change. On Linux it is served by the vDSO, without a system call.
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace aionode
