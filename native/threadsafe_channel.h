// Cross-thread message channels (issue 10 item 4): how a worker_thread (or
// any thread) hands a message to an event loop that lives on another thread.
//
// A Channel is a mutex-guarded FIFO of opaque byte strings (the binding
// fills them with v8.serialize output) plus the target's wake-up, a plain
// function pointer (uv_async_send in the binding). Channels live in one
// process-global registry keyed by a 64-bit id that is never reused, so a
// stale id names nothing instead of someone else's loop. Senders look the id
// up per post and hold the channel (shared_ptr) only for the post itself.
//
// Ordering: one FIFO per channel, appended under its mutex, so messages from
// one sender arrive in the order that sender posted them (and every sender's
// posts interleave in the order they took the lock).
//
// Lifetime: Close() marks the channel closed and forgets the wake-up under
// the same mutex Post() calls the wake-up under, so once Close() returns no
// thread can touch the target's wake-up any more and the binding may free it
// (uv_close). Posts after Close() fail with -EPIPE; an id that was never
// registered or has been removed fails with -ENOENT. No Node or libuv
// headers here; every call returns 0, a count or -errno.
//
// Calls: a message may carry a reply address (the caller's channel id and
// its token for the call). The channel then owes that caller an answer:
// from Drain() on the call is "open" until the target Settle()s it (and
// posts its answer). Whatever is still owed when the channel closes (calls
// queued and never drained, calls drained and never settled) is answered
// here, by a kAbandonedKind message to the caller, so a caller never waits
// on a loop that has gone: Close() runs on every path that ends a channel,
// the binding's close(), its finalizer and environment teardown, where no
// JavaScript can run any more.
//
// Batches: Drain() takes at most max_bytes of payload per call (at least
// one message); when more is left it requests the wake-up again, so a big
// backlog reaches the target in several turns instead of one allocation.
#ifndef AIONODE_THREADSAFE_CHANNEL_H_
#define AIONODE_THREADSAFE_CHANNEL_H_

#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace aionode {

struct ChannelMessage {
  int32_t kind = 0;   // caller-defined tag (user message, call, cancel, reply)
  std::string bytes;  // opaque payload
  uint64_t reply_to = 0;  // a call: the channel owed its answer (0: not a call)
  uint64_t token = 0;     // the caller's name for the call
};

// The answer the channel gives a call it can no longer serve. Its bytes:
// the token (8 bytes, little-endian) then one reason byte.
constexpr int32_t kAbandonedKind = -1;
enum AbandonReason : uint8_t {
  kAbandonClosed = 0,         // the target channel closed
  kAbandonUndeliverable = 1,  // the target could not take the batch (memory)
};

class Channel {
 public:
  // Called with the channel's mutex held, on the posting thread, when the
  // FIFO goes from "drained" to "has something": must be async-signal-ish
  // cheap and must not call back into the channel.
  using Wake = void (*)(void* arg);

  Channel(uint64_t id, Wake wake, void* arg) : id_(id), wake_(wake), arg_(arg) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  uint64_t id() const { return id_; }

  // Appends a message; wakes the target when it was idle. 0, or -EPIPE when
  // the channel is closed. A nonzero reply_to makes it a call (see above).
  int Post(int32_t kind, const void* data, size_t len, uint64_t reply_to = 0,
           uint64_t token = 0);
  // The same, taking the payload over (no copy).
  int Post(int32_t kind, std::string&& bytes, uint64_t reply_to = 0,
           uint64_t token = 0);

  // Moves queued messages into *out (appended, FIFO): all of them, or as
  // many as fit in max_bytes of payload (always at least one). Calls among
  // them become open. Re-enables the wake-up, or, when messages are left,
  // requests it again. Returns how many were moved (0 when closed).
  size_t Drain(std::vector<ChannelMessage>* out,
               size_t max_bytes = std::numeric_limits<size_t>::max());

  // Marks the open call (reply_to, token) answered. True when it was open:
  // the target now posts its answer. False when it is not (never drained
  // here, already settled, or abandoned by Close()): post nothing.
  bool Settle(uint64_t reply_to, uint64_t token);

  // Answers the open calls among `msgs` (drained, then lost by the target)
  // with kAbandonedKind and `reason`. Returns how many were answered.
  size_t Abandon(const std::vector<ChannelMessage>& msgs, AbandonReason reason);

  // Closed channels accept nothing and forget their wake-up; queued
  // messages are dropped, and every call still owed an answer (queued or
  // open) is answered with kAbandonedKind / kAbandonClosed. Idempotent.
  // Returns the count of queued messages dropped.
  size_t Close();

  // Calls drained and not yet settled.
  size_t open_calls() const;

  bool closed() const;
  size_t queued() const;
  // Wake-ups requested so far (a burst of posts before a drain costs one).
  uint64_t wakes() const;

 private:
  const uint64_t id_;
  mutable std::mutex mu_;
  std::deque<ChannelMessage> q_;
  Wake wake_;
  void* arg_;
  bool closed_ = false;
  bool signalled_ = false;  // a wake-up is outstanding: Drain has not run since
  uint64_t wakes_ = 0;
  std::set<std::pair<uint64_t, uint64_t>> open_;  // (reply_to, token)
};

// The process-global registry. Thread-safe.
namespace channels {

// Creates and registers a channel with a fresh id (never 0, never reused).
std::shared_ptr<Channel> Open(Channel::Wake wake, void* arg);

// The channel with `id`, or null when there is none (closed and removed, or
// never opened).
std::shared_ptr<Channel> Find(uint64_t id);

// Closes the channel and drops it from the registry (idempotent).
void Remove(const std::shared_ptr<Channel>& ch);

// Post through the registry: 0, -ENOENT (no such id), -EPIPE (closed).
int Post(uint64_t id, int32_t kind, const void* data, size_t len,
         uint64_t reply_to = 0, uint64_t token = 0);
int Post(uint64_t id, int32_t kind, std::string&& bytes, uint64_t reply_to = 0,
         uint64_t token = 0);

// Live registered channels (for leak tests).
size_t Count();

}  // namespace channels

}  // namespace aionode

#endif  // AIONODE_THREADSAFE_CHANNEL_H_
