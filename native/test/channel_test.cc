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

// Reads an abandonment: token and reason.
bool ReadAbandoned(const ChannelMessage& m, uint64_t* token, int* reason) {
  if (m.kind != kAbandonedKind || m.bytes.size() != 9) return false;
  uint64_t t = 0;
  for (int i = 0; i < 8; i++) {
    t |= static_cast<uint64_t>(static_cast<uint8_t>(m.bytes[i])) << (8 * i);
  }
  *token = t;
  *reason = static_cast<uint8_t>(m.bytes[8]);
  return true;
}

void TestCallsAnsweredOnClose() {
  WakeCounter rw, tw;
  auto caller = channels::Open(CountWake, &rw);
  auto target = channels::Open(CountWake, &tw);
  const uint64_t r = caller->id();
  const uint64_t big = (uint64_t{1} << 53) - 1;  // the largest token JavaScript sends
  TEST_CHECK_EQ(channels::Post(target->id(), 1, "a", 1, r, 1), 0);
  TEST_CHECK_EQ(channels::Post(target->id(), 1, "b", 1, r, big), 0);
  std::vector<ChannelMessage> out;
  TEST_CHECK_EQ(target->Drain(&out), static_cast<size_t>(2));
  TEST_CHECK_EQ(target->open_calls(), static_cast<size_t>(2));
  // Call 1 is answered by the target; call `big` is still running.
  TEST_CHECK(target->Settle(r, 1));
  TEST_CHECK(!target->Settle(r, 1));
  TEST_CHECK(!target->Settle(r, 99));
  // Queued, never drained: call 3 and a plain message (owed nothing).
  TEST_CHECK_EQ(channels::Post(target->id(), 1, "c", 1, r, 3), 0);
  TEST_CHECK_EQ(channels::Post(target->id(), 0, "d", 1), 0);
  channels::Remove(target);
  TEST_CHECK(!target->Settle(r, big));
  TEST_CHECK_EQ(target->open_calls(), static_cast<size_t>(0));
  std::vector<ChannelMessage> answers;
  TEST_CHECK_EQ(caller->Drain(&answers), static_cast<size_t>(2));
  uint64_t token = 0;
  int reason = -1;
  TEST_CHECK(ReadAbandoned(answers[0], &token, &reason));
  TEST_CHECK_EQ(token, big);
  TEST_CHECK_EQ(reason, static_cast<int>(kAbandonClosed));
  TEST_CHECK(ReadAbandoned(answers[1], &token, &reason));
  TEST_CHECK_EQ(token, static_cast<uint64_t>(3));
  TEST_CHECK_EQ(rw.n.load(), 1);
  // A caller that has gone is simply not answered.
  auto target2 = channels::Open(CountWake, &tw);
  TEST_CHECK_EQ(channels::Post(target2->id(), 1, "e", 1, r, 4), 0);
  channels::Remove(caller);
  channels::Remove(target2);
}

void TestAbandonUndeliverable() {
  WakeCounter rw, tw;
  auto caller = channels::Open(CountWake, &rw);
  auto target = channels::Open(CountWake, &tw);
  TEST_CHECK_EQ(channels::Post(target->id(), 0, "m", 1), 0);
  TEST_CHECK_EQ(channels::Post(target->id(), 1, "c", 1, caller->id(), 7), 0);
  std::vector<ChannelMessage> out;
  TEST_CHECK_EQ(target->Drain(&out), static_cast<size_t>(2));
  TEST_CHECK_EQ(target->Abandon(out, kAbandonUndeliverable), static_cast<size_t>(1));
  TEST_CHECK_EQ(target->Abandon(out, kAbandonUndeliverable), static_cast<size_t>(0));
  TEST_CHECK(!target->Settle(caller->id(), 7));
  channels::Remove(target);
  std::vector<ChannelMessage> answers;
  TEST_CHECK_EQ(caller->Drain(&answers), static_cast<size_t>(1));
  uint64_t token = 0;
  int reason = -1;
  TEST_CHECK(ReadAbandoned(answers[0], &token, &reason));
  TEST_CHECK_EQ(token, static_cast<uint64_t>(7));
  TEST_CHECK_EQ(reason, static_cast<int>(kAbandonUndeliverable));
  channels::Remove(caller);
}

void TestDrainCap() {
  WakeCounter wc;
  auto ch = channels::Open(CountWake, &wc);
  std::string hundred(100, 'x');
  for (int i = 0; i < 10; i++) {
    hundred[0] = static_cast<char>('0' + i);
    TEST_CHECK_EQ(ch->Post(0, hundred.data(), hundred.size()), 0);
  }
  std::string big(1000, 'B');
  TEST_CHECK_EQ(ch->Post(0, big.data(), big.size()), 0);
  TEST_CHECK_EQ(wc.n.load(), 1);
  std::vector<ChannelMessage> all;
  int turns = 0;
  for (;;) {
    std::vector<ChannelMessage> out;
    size_t n = ch->Drain(&out, 250);
    if (n == 0) break;
    turns++;
    size_t bytes = 0;
    for (auto& m : out) bytes += m.bytes.size();
    // Within the cap, or one message bigger than it on its own.
    TEST_CHECK(bytes <= 250 || n == 1);
    for (auto& m : out) all.push_back(std::move(m));
    // Each partial drain asked for another turn; the last one did not.
    TEST_CHECK_EQ(wc.n.load(), ch->queued() > 0 ? 1 + turns : turns);
  }
  TEST_CHECK_EQ(all.size(), static_cast<size_t>(11));
  for (int i = 0; i < 10; i++) TEST_CHECK_EQ(all[i].bytes[0], static_cast<char>('0' + i));
  TEST_CHECK_EQ(all[10].bytes.size(), static_cast<size_t>(1000));
  TEST_CHECK_EQ(turns, 6);  // 2+2+2+2+2 hundreds, then the big one
  channels::Remove(ch);
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
  run("channel: calls still owed are answered on close", TestCallsAnsweredOnClose);
  run("channel: calls lost by the target are answered as undeliverable", TestAbandonUndeliverable);
  run("channel: Drain takes at most max_bytes and asks for another turn", TestDrainCap);
}

}  // namespace aionode
