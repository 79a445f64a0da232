// Tests of the cross-thread channel core (threadsafe_channel.h): FIFO per
// sender under four concurrent posting threads, one wake-up per burst,
// closed and unknown ids, and a close racing posts. Runs inside
// core_test.cc's harness (its Run / Fail).
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../threadsafe_channel.h"
#include "check.h"

namespace aionode {

void RunChannelTests(void (*run)(const std::string&,
                                 const std::function<void()>&),
                     void (*fail)(const std::string&));

namespace {

struct WakeCounter {
  std::atomic<int> n{0};
};

void CountWake(void* arg) { static_cast<WakeCounter*>(arg)->n++; }

int PostInt(uint64_t id, int32_t kind, uint32_t v) {
  return channels::Post(id, kind, &v, sizeof v);
}

void TestFifoPerSender() {
  WakeCounter wc;
  auto ch = channels::Open(CountWake, &wc);
  constexpr int kThreads = 4, kPosts = 20000;
  std::vector<std::thread> ts;
  std::atomic<bool> done{false};
  std::vector<int> next(kThreads, 0);
  int bad = 0, got = 0;
  std::thread drainer([&] {
    std::vector<ChannelMessage> out;
    while (true) {
      bool was_done = done.load();
      out.clear();
      ch->Drain(&out);
      for (auto& m : out) {
        uint32_t v;
        std::memcpy(&v, m.bytes.data(), sizeof v);
        if (m.kind < 0 || m.kind >= kThreads ||
            static_cast<int>(v) != next[m.kind]) {
          bad++;
        } else {
          next[m.kind]++;
        }
        got++;
      }
      if (was_done && out.empty()) break;
      std::this_thread::yield();
    }
  });
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPosts; i++) {
        if (PostInt(ch->id(), t, static_cast<uint32_t>(i)) != 0) bad++;
      }
    });
  }
  for (auto& t : ts) t.join();
  done = true;
  drainer.join();
  TEST_CHECK_EQ(bad, 0);
  TEST_CHECK_EQ(got, kThreads * kPosts);
  for (int t = 0; t < kThreads; t++) TEST_CHECK_EQ(next[t], kPosts);
  // Wake-ups are coalesced: far fewer than posts.
  TEST_CHECK(wc.n.load() >= 1);
  TEST_CHECK(wc.n.load() <= got);
  channels::Remove(ch);
}

void TestOneWakePerBurst() {
  WakeCounter wc;
  auto ch = channels::Open(CountWake, &wc);
  for (int i = 0; i < 100; i++) TEST_CHECK_EQ(PostInt(ch->id(), 0, i), 0);
  TEST_CHECK_EQ(wc.n.load(), 1);
  std::vector<ChannelMessage> out;
  TEST_CHECK_EQ(ch->Drain(&out), static_cast<size_t>(100));
  TEST_CHECK_EQ(PostInt(ch->id(), 0, 1), 0);
  TEST_CHECK_EQ(wc.n.load(), 2);
  channels::Remove(ch);
}

void TestClosedAndUnknown() {
  WakeCounter wc;
  size_t before = channels::Count();
  auto ch = channels::Open(CountWake, &wc);
  uint64_t id = ch->id();
  TEST_CHECK_EQ(channels::Count(), before + 1);
  TEST_CHECK_EQ(PostInt(id, 0, 7), 0);
  // Closing drops what was queued and refuses more.
  TEST_CHECK_EQ(ch->Close(), static_cast<size_t>(1));
  TEST_CHECK_EQ(ch->Post(0, "x", 1), -EPIPE);
  TEST_CHECK_EQ(PostInt(id, 0, 7), -EPIPE);
  channels::Remove(ch);
  TEST_CHECK_EQ(channels::Count(), before);
  TEST_CHECK_EQ(PostInt(id, 0, 7), -ENOENT);
  TEST_CHECK_EQ(PostInt(0, 0, 7), -ENOENT);
  // Ids are never reused.
  auto ch2 = channels::Open(CountWake, &wc);
  TEST_CHECK(ch2->id() != id);
  channels::Remove(ch2);
}

void TestCloseRacesPosts() {
  // Posters hammer a channel while it is closed: each post either lands
  // before the close or fails with -EPIPE/-ENOENT, and no wake-up runs
  // after Close() returned.
  for (int round = 0; round < 20; round++) {
    WakeCounter wc;
    std::atomic<bool> closed{false};
    std::atomic<int> late_wakes{0};
    struct Ctx {
      WakeCounter* wc;
      std::atomic<bool>* closed;
      std::atomic<int>* late;
    } ctx{&wc, &closed, &late_wakes};
    auto wake = [](void* arg) {
      auto* c = static_cast<Ctx*>(arg);
      if (c->closed->load()) (*c->late)++;
      c->wc->n++;
    };
    auto ch = channels::Open(wake, &ctx);
    uint64_t id = ch->id();
    std::atomic<int> other{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; t++) {
      ts.emplace_back([&] {
        for (int i = 0; i < 2000; i++) {
          int rc = PostInt(id, 0, i);
          if (rc != 0 && rc != -EPIPE && rc != -ENOENT) other++;
          if (rc == 0 && (i & 63) == 0) {
            std::vector<ChannelMessage> out;
            ch->Drain(&out);
          }
        }
      });
    }
    std::this_thread::yield();
    channels::Remove(ch);
    closed = true;
    for (auto& t : ts) t.join();
    TEST_CHECK_EQ(other.load(), 0);
    TEST_CHECK_EQ(late_wakes.load(), 0);
    TEST_CHECK(ch->closed());
  }
}

}  // namespace

void RunChannelTests(void (*run)(const std::string&,
                                 const std::function<void()>&),
                     void (*fail)(const std::string&)) {
  test::g_fail = fail;
  run("channel: FIFO per sender, 4 threads x 20000 posts", TestFifoPerSender);
  run("channel: one wake-up per burst", TestOneWakePerBurst);
  run("channel: closed (-EPIPE) and unknown (-ENOENT) ids", TestClosedAndUnknown);
  run("channel: close racing posts, no wake-up after close", TestCloseRacesPosts);
}

}  // namespace aionode
