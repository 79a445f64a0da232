#include "threadsafe_channel.h"

#include <atomic>
#include <cerrno>
#include <deque>
#include <unordered_map>

namespace aionode {

namespace {

// Answers a call that can no longer be served. Called with no channel
// mutex held: the caller's channel takes its own (and it may be this one).
void PostAbandoned(uint64_t reply_to, uint64_t token, AbandonReason reason) {
  char b[9];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>((token >> (8 * i)) & 0xff);
  b[8] = static_cast<char>(reason);
  // A caller that has gone needs no answer: -ENOENT / -EPIPE are fine.
  channels::Post(reply_to, kAbandonedKind, b, sizeof b);
}

}  // namespace

int Channel::Post(int32_t kind, const void* data, size_t len,
                  uint64_t reply_to, uint64_t token) {
  // Copied before taking the lock: the critical section is a push.
  std::string bytes;
  if (len > 0) bytes.assign(static_cast<const char*>(data), len);
  return Post(kind, std::move(bytes), reply_to, token);
}

int Channel::Post(int32_t kind, std::string&& bytes, uint64_t reply_to,
                  uint64_t token) {
  ChannelMessage m;
  m.kind = kind;
  m.bytes = std::move(bytes);
  m.reply_to = reply_to;
  m.token = token;
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return -EPIPE;
  q_.push_back(std::move(m));
  if (!signalled_) {
    signalled_ = true;
    wakes_++;
    // Under the lock: Close() cannot free the target's wake-up between the
    // check above and this call.
    if (wake_ != nullptr) wake_(arg_);
  }
  return 0;
}

size_t Channel::Drain(std::vector<ChannelMessage>* out, size_t max_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  signalled_ = false;
  if (closed_) return 0;
  size_t n = 0, bytes = 0;
  while (!q_.empty()) {
    ChannelMessage& m = q_.front();
    if (n > 0 && m.bytes.size() > max_bytes - bytes) break;
    bytes += m.bytes.size();
    if (m.reply_to != 0) open_.emplace(m.reply_to, m.token);
    out->push_back(std::move(m));
    q_.pop_front();
    n++;
    if (bytes >= max_bytes) break;
  }
  if (!q_.empty()) {
    // The rest gets a turn of its own.
    signalled_ = true;
    wakes_++;
    if (wake_ != nullptr) wake_(arg_);
  }
  return n;
}

bool Channel::Settle(uint64_t reply_to, uint64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  return open_.erase({reply_to, token}) > 0;
}

size_t Channel::Abandon(const std::vector<ChannelMessage>& msgs,
                        AbandonReason reason) {
  std::vector<std::pair<uint64_t, uint64_t>> owed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& m : msgs) {
      if (m.reply_to != 0 && open_.erase({m.reply_to, m.token}) > 0) {
        owed.emplace_back(m.reply_to, m.token);
      }
    }
  }
  for (const auto& c : owed) PostAbandoned(c.first, c.second, reason);
  return owed.size();
}

size_t Channel::Close() {
  std::deque<ChannelMessage> dropped;
  std::set<std::pair<uint64_t, uint64_t>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    wake_ = nullptr;
    arg_ = nullptr;
    dropped.swap(q_);
    open.swap(open_);
  }
  // Answered in the order they reached this channel: the drained ones first.
  for (const auto& c : open) PostAbandoned(c.first, c.second, kAbandonClosed);
  for (const auto& m : dropped) {
    if (m.reply_to != 0) PostAbandoned(m.reply_to, m.token, kAbandonClosed);
  }
  return dropped.size();
}

size_t Channel::open_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_.size();
}

bool Channel::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

size_t Channel::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return q_.size();
}

uint64_t Channel::wakes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wakes_;
}

namespace channels {
namespace {

struct Registry {
  std::mutex mu;
  std::unordered_map<uint64_t, std::shared_ptr<Channel>> map;
  uint64_t next = 1;
};

// Leaked on purpose: worker threads may still post while the process runs
// its static destructors at exit.
Registry& Reg() {
  static Registry* r = new Registry();
  return *r;
}

}  // namespace

std::shared_ptr<Channel> Open(Channel::Wake wake, void* arg) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  uint64_t id = r.next++;
  auto ch = std::make_shared<Channel>(id, wake, arg);
  r.map.emplace(id, ch);
  return ch;
}

std::shared_ptr<Channel> Find(uint64_t id) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.map.find(id);
  if (it == r.map.end()) return nullptr;
  return it->second;
}

void Remove(const std::shared_ptr<Channel>& ch) {
  if (!ch) return;
  ch->Close();
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.map.find(ch->id());
  if (it != r.map.end() && it->second == ch) r.map.erase(it);
}

int Post(uint64_t id, int32_t kind, const void* data, size_t len,
         uint64_t reply_to, uint64_t token) {
  std::shared_ptr<Channel> ch = Find(id);
  if (!ch) return -ENOENT;
  return ch->Post(kind, data, len, reply_to, token);
}

int Post(uint64_t id, int32_t kind, std::string&& bytes, uint64_t reply_to,
         uint64_t token) {
  std::shared_ptr<Channel> ch = Find(id);
  if (!ch) return -ENOENT;
  return ch->Post(kind, std::move(bytes), reply_to, token);
}

size_t Count() {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.map.size();
}

}  // namespace channels
}  // namespace aionode
