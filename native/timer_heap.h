// A binary min-heap of timers ordered by (when, seq): the earliest deadline
// first, and timers with equal deadlines in the order they were added. Ids
// are small non-negative integers chosen by the caller (the JS side keeps a
// dense id -> TimerHandle table with a free list), so cancel is O(log n)
// through an id -> heap-position index, with no search.
//
// Not thread-safe: owned by the loop thread. Returns 0 / count or -errno.
#ifndef AIONODE_TIMER_HEAP_H_
#define AIONODE_TIMER_HEAP_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace aionode {

class TimerHeap {
 public:
  // Adds timer `id` (0 <= id < kMaxId) due at `when_ns` (monotonic clock).
  // -EINVAL for a bad id, -EEXIST if the id is already in the heap.
  int Add(int32_t id, int64_t when_ns);

  // Removes timer `id`. -ENOENT if it is not in the heap.
  int Remove(int32_t id);

  // Whether `id` is in the heap.
  bool Contains(int32_t id) const;

  // Deadline of the earliest timer, or INT64_MAX when empty.
  int64_t PeekWhen() const;

  size_t Size() const { return heap_.size(); }
  bool Empty() const { return heap_.empty(); }

  // Pops up to `max` timers whose deadline is <= now_ns, in (when, seq)
  // order, writing their ids to out[0..count). Returns the count.
  int PopDue(int64_t now_ns, int32_t* out, int max);

  // Removes every timer and releases the storage.
  void Clear();

  // Bytes of storage held: the heap array and the id -> position index.
  // Both shrink when the heap falls far below its peak (T13: memory comes
  // back after a million timers are cancelled); the index can only shrink
  // down to the largest id still in use.
  size_t HeapBytes() const { return heap_.capacity() * sizeof(Entry); }
  size_t IndexBytes() const { return pos_.capacity() * sizeof(int32_t); }

  static constexpr int32_t kMaxId = 1 << 30;

 private:
  struct Entry {
    int64_t when;
    uint64_t seq;
    int32_t id;
  };
  static bool Less(const Entry& a, const Entry& b) {
    return a.when < b.when || (a.when == b.when && a.seq < b.seq);
  }
  void SiftUp(size_t i);
  void SiftDown(size_t i);
  void Place(size_t i, const Entry& e);
  void RemoveAt(size_t i);
  void MaybeShrink();

  // Below this many slots storage is never given back: not worth the copy.
  static constexpr size_t kKeepSlots = 1024;

  std::vector<Entry> heap_;
  std::vector<int32_t> pos_;  // id -> heap index, -1 when absent
  uint64_t next_seq_ = 0;
  // Size under which the next removal shrinks the storage: a quarter of the
  // largest size since the last shrink. Each shrink copies O(size) after at
  // least 3x as many removals, so removal stays amortized O(log n).
  size_t shrink_below_ = 0;
};

}  // namespace aionode

#endif  // AIONODE_TIMER_HEAP_H_
