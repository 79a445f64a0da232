#include "batch.h"

namespace aionode {

int DropToken(int32_t* pairs, int n, Token token, bool* seen) {
  *seen = false;
  int w = 0;
  for (int i = 0; i < n; i++) {
    if (pairs[2 * i] == token) {
      *seen = true;
      continue;
    }
    pairs[2 * w] = pairs[2 * i];
    pairs[2 * w + 1] = pairs[2 * i + 1];
    w++;
  }
  return w;
}

int AppendDueTimers(TimerHeap* heap, int64_t now_ns, int32_t* pairs, int n,
                    int cap, bool* more) {
  int room = cap > n ? cap - n : 0;
  int32_t* tail = pairs + 2 * n;
  // PopDue writes the ids packed at the tail; spreading them into pairs from
  // the last one backwards never overwrites an id not yet moved (pair j
  // lands at 2j >= j).
  int k = heap->PopDue(now_ns, tail, room);
  for (int j = k - 1; j >= 0; j--) {
    int32_t id = tail[j];
    tail[2 * j] = kTimerPairToken;
    tail[2 * j + 1] = id;
  }
  *more = k == room && heap->PeekWhen() <= now_ns;
  return n + k;
}

int64_t NextWakeup(const TimerHeap& heap, bool running) {
  if (!running) return kNeverNs;
  int64_t when = heap.PeekWhen();
  return when < kNeverNs ? when : kNeverNs;
}

}  // namespace aionode
