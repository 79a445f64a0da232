// Assembly of one batch in the shared events array: what the loop binding
// does between a select and the call into JavaScript, kept free of Node so
// the core test can drive it (due-timer order, capacity limits, the timer
// fd's pair).
//
// A batch is `n` (token, events) pairs followed by due timers as
// (kTimerPairToken, id) pairs, all in one caller-owned int32 array of `cap`
// pairs. Returns counts; never fails.
#ifndef AIONODE_BATCH_H_
#define AIONODE_BATCH_H_

#include <cstdint>

#include "selector.h"
#include "timer_heap.h"

namespace aionode {

// First element of a due-timer pair; tokens handed to JavaScript are >= 0.
constexpr int32_t kTimerPairToken = -1;

// Deadlines at or past this never fire: +Infinity and delays beyond the
// int64 nanosecond range (about 292 years) are clamped here, and nothing is
// armed for them, so a huge delay can never wrap around into an early one.
constexpr int64_t kNeverNs = INT64_MAX - 1;

// Removes every pair whose token is `token` from pairs[0, n), keeping the
// order of the others. Returns the new count; *seen says whether one went.
int DropToken(int32_t* pairs, int n, Token token, bool* seen);

// Pops the timers due at `now_ns` (deadline <= now, in (when, seq) order)
// and appends them as (kTimerPairToken, id) after the first n pairs, as far
// as `cap` pairs allow. Returns the new pair count. *more is set when due
// timers stay in the heap for lack of room (the caller runs another pass).
int AppendDueTimers(TimerHeap* heap, int64_t now_ns, int32_t* pairs, int n,
                    int cap, bool* more);

// The deadline to arm the wake-up for, or kNeverNs for none: the heap's
// earliest deadline while the loop runs.
int64_t NextWakeup(const TimerHeap& heap, bool running);

}  // namespace aionode

#endif  // AIONODE_BATCH_H_
