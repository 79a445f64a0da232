// The loop's only time source: CLOCK_MONOTONIC in nanoseconds. loop.time()
// in JavaScript is this value divided by 1e9.
#ifndef AIONODE_CLOCK_H_
#define AIONODE_CLOCK_H_

#include <cstdint>

namespace aionode {

// Monotonic time in nanoseconds since an unspecified start (boot on Linux).
int64_t MonotonicNs();

}  // namespace aionode

#endif  // AIONODE_CLOCK_H_
