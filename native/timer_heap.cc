#include "timer_heap.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace aionode {

int TimerHeap::Add(int32_t id, int64_t when_ns) {
  if (id < 0 || id >= kMaxId) return -EINVAL;
  const size_t uid = static_cast<size_t>(id);
  // The JS side hands out dense ids from a free list, so growing the index to
  // the largest id seen costs memory proportional to the live timer count.
  if (uid >= pos_.size()) pos_.resize(uid + 1, -1);
  if (pos_[uid] >= 0) return -EEXIST;
  heap_.push_back(Entry{when_ns, next_seq_++, id});
  pos_[uid] = static_cast<int32_t>(heap_.size() - 1);
  SiftUp(heap_.size() - 1);
  if (heap_.size() / 4 > shrink_below_) shrink_below_ = heap_.size() / 4;
  return 0;
}

int TimerHeap::Remove(int32_t id) {
  if (!Contains(id)) return -ENOENT;
  RemoveAt(static_cast<size_t>(pos_[static_cast<size_t>(id)]));
  return 0;
}

bool TimerHeap::Contains(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < pos_.size() &&
         pos_[static_cast<size_t>(id)] >= 0;
}

int64_t TimerHeap::PeekWhen() const {
  return heap_.empty() ? INT64_MAX : heap_[0].when;
}

int TimerHeap::PopDue(int64_t now_ns, int32_t* out, int max) {
  int count = 0;
  while (count < max && !heap_.empty() && heap_[0].when <= now_ns) {
    out[count++] = heap_[0].id;
    RemoveAt(0);
  }
  return count;
}

void TimerHeap::Clear() {
  std::vector<Entry>().swap(heap_);
  std::vector<int32_t>().swap(pos_);
  shrink_below_ = 0;
}

void TimerHeap::MaybeShrink() {
  if (heap_.size() >= shrink_below_) return;
  shrink_below_ = heap_.size() / 4;
  if (heap_.capacity() > kKeepSlots && heap_.capacity() > 2 * heap_.size()) {
    std::vector<Entry> copy;
    copy.reserve(std::max(kKeepSlots, 2 * heap_.size()));
    copy.assign(heap_.begin(), heap_.end());
    heap_.swap(copy);
  }
  // The index must cover every live id; past the largest one it is all -1.
  size_t need = 0;
  for (const Entry& e : heap_) {
    need = std::max(need, static_cast<size_t>(e.id) + 1);
  }
  if (pos_.capacity() > kKeepSlots && pos_.capacity() > 2 * need) {
    std::vector<int32_t> copy;
    copy.reserve(std::max(kKeepSlots, 2 * need));
    copy.assign(pos_.begin(), pos_.begin() + static_cast<ptrdiff_t>(need));
    pos_.swap(copy);
  }
}

// Writes `e` at index i and records its position, the one place where the
// id -> position index is updated for entries that stay in the heap.
void TimerHeap::Place(size_t i, const Entry& e) {
  heap_[i] = e;
  pos_[static_cast<size_t>(e.id)] = static_cast<int32_t>(i);
}

void TimerHeap::SiftUp(size_t i) {
  const Entry e = heap_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!Less(e, heap_[parent])) break;
    Place(i, heap_[parent]);
    i = parent;
  }
  Place(i, e);
}

void TimerHeap::SiftDown(size_t i) {
  const size_t n = heap_.size();
  const Entry e = heap_[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && Less(heap_[child + 1], heap_[child])) ++child;
    if (!Less(heap_[child], e)) break;
    Place(i, heap_[child]);
    i = child;
  }
  Place(i, e);
}

void TimerHeap::RemoveAt(size_t i) {
  pos_[static_cast<size_t>(heap_[i].id)] = -1;
  const Entry last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) {  // removed the last slot: nothing to fix
    MaybeShrink();
    return;
  }
  // The moved entry may belong above or below slot i (it came from another
  // subtree), so try both directions; at most one of them moves it.
  Place(i, last);
  if (i > 0 && Less(last, heap_[(i - 1) / 2])) {
    SiftUp(i);
  } else {
    SiftDown(i);
  }
  MaybeShrink();
}

}  // namespace aionode
