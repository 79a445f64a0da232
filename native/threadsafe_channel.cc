#include "threadsafe_channel.h"

#include <atomic>
#include <cerrno>
#include <unordered_map>

namespace aionode {

int Channel::Post(int32_t kind, const void* data, size_t len) {
  // Copied before taking the lock: the critical section is a push.
  std::string bytes;
  if (len > 0) bytes.assign(static_cast<const char*>(data), len);
  return Post(kind, std::move(bytes));
}

int Channel::Post(int32_t kind, std::string&& bytes) {
  ChannelMessage m;
  m.kind = kind;
  m.bytes = std::move(bytes);
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

size_t Channel::Drain(std::vector<ChannelMessage>* out) {
  std::deque<ChannelMessage> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    signalled_ = false;
    if (closed_) return 0;
    taken.swap(q_);
  }
  size_t n = taken.size();
  out->reserve(out->size() + n);
  for (auto& m : taken) out->push_back(std::move(m));
  return n;
}

size_t Channel::Close() {
  std::deque<ChannelMessage> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  wake_ = nullptr;
  arg_ = nullptr;
  dropped.swap(q_);
  return dropped.size();
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

int Post(uint64_t id, int32_t kind, const void* data, size_t len) {
  std::shared_ptr<Channel> ch = Find(id);
  if (!ch) return -ENOENT;
  return ch->Post(kind, data, len);
}

int Post(uint64_t id, int32_t kind, std::string&& bytes) {
  std::shared_ptr<Channel> ch = Find(id);
  if (!ch) return -ENOENT;
  return ch->Post(kind, std::move(bytes));
}

size_t Count() {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.map.size();
}

}  // namespace channels
}  // namespace aionode
