// Standalone test of the native core (selectors, timer heap, timer fd, errno
// table, clock, batch assembly, helper thread): no Node, no framework. Prints one "ok - name" or
// "not ok - name: detail" line per test, then exactly
// "core: N passed, M failed", and exits 0 iff M == 0.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "../batch.h"
#include "../clock.h"
#include "../errno_table.h"
#include "../selector.h"
#include "../timer_fd.h"
#include "../timer_heap.h"
#include "../wait_thread.h"

namespace aionode {
void RunSocketTests(void (*run)(const std::string&, const std::function<void()>&),
                    void (*fail)(const std::string&));  // socket_test.cc
void RunIoUringTests(void (*run)(const std::string&, const std::function<void()>&),
                     void (*fail)(const std::string&));  // io_uring_test.cc
void RunChannelTests(void (*run)(const std::string&, const std::function<void()>&),
                     void (*fail)(const std::string&));  // channel_test.cc
void RunSpawnTests(void (*run)(const std::string&, const std::function<void()>&),
                   void (*fail)(const std::string&));  // spawn_test.cc
namespace {

// ---- harness ---------------------------------------------------------------

int g_passed = 0;
int g_failed = 0;
std::string* g_failure = nullptr;  // first failure of the running test

void Fail(const std::string& detail) {
  if (g_failure != nullptr && g_failure->empty()) *g_failure = detail;
}

void Run(const std::string& name, const std::function<void()>& body) {
  std::string failure;
  g_failure = &failure;
  const int64_t t0 = MonotonicNs();
  body();
  if (std::getenv("AIO_TEST_TIMES") != nullptr) {
    std::printf("# %s: %.1f ms\n", name.c_str(),
                static_cast<double>(MonotonicNs() - t0) / 1e6);
  }
  g_failure = nullptr;
  if (failure.empty()) {
    ++g_passed;
    std::printf("ok - %s\n", name.c_str());
  } else {
    ++g_failed;
    std::printf("not ok - %s: %s\n", name.c_str(), failure.c_str());
  }
  std::fflush(stdout);
}

template <typename T>
std::string Str(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

#define AIO_CHECK(cond)                                                    \
  do {                                                                     \
    if (!(cond)) Fail(std::string(#cond) + " (line " + Str(__LINE__) + ")"); \
  } while (0)

#define AIO_CHECK_EQ(a, b)                                               \
  do {                                                                   \
    const auto aio_a = (a);                                              \
    const auto aio_b = (b);                                              \
    if (!(aio_a == aio_b)) {                                             \
      Fail(std::string(#a) + " == " + #b + ": got " + Str(aio_a) + " vs " + \
           Str(aio_b) + " (line " + Str(__LINE__) + ")");                \
    }                                                                    \
  } while (0)

// ---- helpers ---------------------------------------------------------------

struct SocketPair {
  int a = -1;
  int b = -1;
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                   fds) == 0) {
      a = fds[0];
      b = fds[1];
    }
  }
  ~SocketPair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
  void CloseA() {
    close(a);
    a = -1;
  }
  void CloseB() {
    close(b);
    b = -1;
  }
};

struct Pipe {
  int r = -1;
  int w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
};

// Events from one Select, as token -> events.
struct Result {
  int rc = 0;
  std::map<int32_t, int32_t> events;
};

Result SelectOnce(Selector* sel, int64_t timeout_ns, int capacity = 64) {
  std::vector<int32_t> buf(static_cast<size_t>(2 * capacity), -7);
  EventBuffer eb{buf.data(), capacity};
  Result r;
  r.rc = sel->Select(&eb, timeout_ns);
  for (int i = 0; i < r.rc && i < capacity; ++i) {
    r.events[buf[static_cast<size_t>(2 * i)]] =
        buf[static_cast<size_t>(2 * i + 1)];
  }
  return r;
}

std::unique_ptr<Selector> Make(const std::string& name) {
  std::unique_ptr<Selector> sel;
  int rc = CreateSelector(name.c_str(), &sel);
  if (rc != 0) Fail("CreateSelector(" + name + ") = " + Str(rc));
  return sel;
}

std::vector<std::string> Backends() {
  std::vector<std::string> names;
  std::string list = AvailableSelectors();
  size_t start = 0;
  while (start < list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    names.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return names;
}

constexpr int64_t kMs = 1000000;
constexpr uint32_t kRW = kReadable | kWritable;

// ---- selector tests --------------------------------------------------------

void TestErrors(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  SocketPair p;
  AIO_CHECK_EQ(sel->Register(p.a, 1, 0), -EINVAL);
  AIO_CHECK_EQ(sel->Register(p.a, 1, 4), -EINVAL);
  AIO_CHECK_EQ(sel->Register(p.a, 1, kReadable | 8), -EINVAL);
  AIO_CHECK_EQ(sel->Register(-1, 1, kReadable), -EBADF);
  AIO_CHECK_EQ(sel->Size(), 0);
  AIO_CHECK_EQ(sel->Register(p.a, 1, kReadable), 0);
  AIO_CHECK_EQ(sel->Register(p.a, 2, kWritable), -EEXIST);
  AIO_CHECK_EQ(sel->Size(), 1);
  AIO_CHECK_EQ(sel->Modify(p.b, 1, kReadable), -ENOENT);
  AIO_CHECK_EQ(sel->Modify(p.a, 1, 0), -EINVAL);
  AIO_CHECK_EQ(sel->Modify(p.a, 1, 16), -EINVAL);
  AIO_CHECK_EQ(sel->Modify(p.a, 3, kRW), 0);
  AIO_CHECK_EQ(sel->Unregister(p.b), -ENOENT);
  AIO_CHECK_EQ(sel->Unregister(-5), -ENOENT);
  AIO_CHECK_EQ(sel->Unregister(p.a), 0);
  AIO_CHECK_EQ(sel->Unregister(p.a), -ENOENT);
  AIO_CHECK_EQ(sel->Size(), 0);

  // A closed fd: EBADF on Register. Nothing else opens fds meanwhile.
  int closed = dup(p.a);
  close(closed);
  AIO_CHECK_EQ(sel->Register(closed, 1, kReadable), -EBADF);
  AIO_CHECK_EQ(sel->Size(), 0);

  // Unregister after close succeeds and forgets the registration; the fd
  // number can then be registered again for a new file.
  int fd = dup(p.a);
  AIO_CHECK_EQ(sel->Register(fd, 5, kReadable), 0);
  close(fd);
  AIO_CHECK_EQ(sel->Modify(fd, 5, kWritable), -EBADF);
  AIO_CHECK_EQ(sel->Unregister(fd), 0);
  AIO_CHECK_EQ(sel->Size(), 0);
  int again = dup(p.b);
  AIO_CHECK_EQ(again, fd);
  AIO_CHECK_EQ(sel->Register(again, 6, kReadable), 0);
  AIO_CHECK_EQ(sel->Size(), 1);
  close(again);
  AIO_CHECK_EQ(sel->Unregister(again), 0);
  AIO_CHECK_EQ(sel->Size(), 0);
  AIO_CHECK(std::string(sel->Name()) == name);
}

void TestReadiness(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  SocketPair p;
  AIO_CHECK_EQ(sel->Register(p.a, 10, kRW), 0);
  Result r = SelectOnce(sel.get(), 0);
  AIO_CHECK_EQ(r.rc, 1);
  AIO_CHECK_EQ(r.events[10], static_cast<int32_t>(kWritable));

  AIO_CHECK_EQ(write(p.b, "x", 1), 1);
  r = SelectOnce(sel.get(), 100 * kMs);
  AIO_CHECK_EQ(r.rc, 1);
  AIO_CHECK_EQ(r.events[10], static_cast<int32_t>(kRW));

  // Level-triggered: still readable until read.
  r = SelectOnce(sel.get(), 0);
  AIO_CHECK_EQ(r.events[10], static_cast<int32_t>(kRW));

  // Modify changes both token and interest.
  AIO_CHECK_EQ(sel->Modify(p.a, 11, kReadable), 0);
  r = SelectOnce(sel.get(), 0);
  AIO_CHECK_EQ(r.rc, 1);
  AIO_CHECK_EQ(r.events.count(10), 0u);
  AIO_CHECK_EQ(r.events[11], static_cast<int32_t>(kReadable));

  char c;
  AIO_CHECK_EQ(read(p.a, &c, 1), 1);
  r = SelectOnce(sel.get(), 0);
  AIO_CHECK_EQ(r.rc, 0);

  // Negative tokens pass through untouched (the binding's reserved range).
  AIO_CHECK_EQ(sel->Modify(p.a, -3, kWritable), 0);
  r = SelectOnce(sel.get(), 0);
  AIO_CHECK_EQ(r.rc, 1);
  AIO_CHECK_EQ(r.events[-3], static_cast<int32_t>(kWritable));
}

void TestMasking(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  SocketPair p;
  AIO_CHECK_EQ(write(p.b, "x", 1), 1);
  // Readable and writable, but registered for writing only.
  AIO_CHECK_EQ(sel->Register(p.a, 1, kWritable), 0);
  Result r = SelectOnce(sel.get(), 0);
  AIO_CHECK_EQ(r.rc, 1);
  AIO_CHECK_EQ(r.events[1], static_cast<int32_t>(kWritable));
  // Registered for reading on an fd with nothing to read: not reported.
  SocketPair q;
  AIO_CHECK_EQ(sel->Register(q.a, 2, kReadable), 0);
  r = SelectOnce(sel.get(), 0);
  AIO_CHECK_EQ(r.rc, 1);
  AIO_CHECK_EQ(r.events.count(2), 0u);
}

void TestHangup(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  // Socket whose peer closed: EOF shows as readable only for a reader.
  SocketPair p;
  AIO_CHECK_EQ(sel->Register(p.a, 1, kReadable), 0);
  p.CloseB();
  Result r = SelectOnce(sel.get(), 100 * kMs);
  AIO_CHECK_EQ(r.rc, 1);
  AIO_CHECK_EQ(r.events[1], static_cast<int32_t>(kReadable));

  // Pipe whose writer closed: poll(2) and epoll give POLLHUP without
  // POLLIN; it must still report as readable.
  Pipe hup;
  AIO_CHECK_EQ(sel->Register(hup.r, 2, kReadable), 0);
  close(hup.w);
  hup.w = -1;
  r = SelectOnce(sel.get(), 100 * kMs);
  AIO_CHECK_EQ(r.events[2], static_cast<int32_t>(kReadable));

  // Pipe whose reader closed: POLLERR; reported as writable to a writer.
  Pipe err;
  AIO_CHECK_EQ(sel->Register(err.w, 3, kWritable), 0);
  close(err.r);
  err.r = -1;
  r = SelectOnce(sel.get(), 100 * kMs);
  AIO_CHECK_EQ(r.events[3], static_cast<int32_t>(kWritable));
  AIO_CHECK_EQ(r.rc, 3);
}

void TestWakeup(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  SocketPair p;
  AIO_CHECK_EQ(sel->Register(p.a, 1, kReadable), 0);  // never ready
  // Pending wake-up: the next Select returns at once, reporting nothing.
  AIO_CHECK_EQ(sel->Wakeup(), 0);
  AIO_CHECK_EQ(sel->Wakeup(), 0);
  Result r = SelectOnce(sel.get(), -1);
  AIO_CHECK_EQ(r.rc, 0);
  // Drained: a second Select times out instead of waking again.
  r = SelectOnce(sel.get(), 0);
  AIO_CHECK_EQ(r.rc, 0);

  // From another thread while blocked forever.
  std::atomic<bool> woke{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    woke = true;
    sel->Wakeup();
  });
  const int64_t t0 = MonotonicNs();
  r = SelectOnce(sel.get(), -1);
  const int64_t elapsed = MonotonicNs() - t0;
  t.join();
  AIO_CHECK_EQ(r.rc, 0);
  AIO_CHECK(woke.load());
  AIO_CHECK(elapsed < 2000 * kMs);
}

Selector* g_signal_selector = nullptr;
void OnSignal(int) {
  if (g_signal_selector != nullptr) g_signal_selector->Wakeup();
}

// A signal interrupts the wait (EINTR) without cutting the timeout short,
// and Wakeup() works from a signal handler.
void TestSignals(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  struct sigaction sa = {};
  struct sigaction old_sa;
  sa.sa_handler = [](int) {};  // no SA_RESTART: the wait fails with EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, &old_sa);
  const pthread_t self = pthread_self();
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    pthread_kill(self, SIGUSR1);
  });
  int64_t t0 = MonotonicNs();
  Result r = SelectOnce(sel.get(), 40 * kMs);
  int64_t elapsed = MonotonicNs() - t0;
  t.join();
  AIO_CHECK_EQ(r.rc, 0);
  if (elapsed < 40 * kMs) {
    Fail("EINTR cut the timeout to " + Str(elapsed) + " ns");
  }

  g_signal_selector = sel.get();
  sa.sa_handler = OnSignal;
  sigaction(SIGUSR1, &sa, nullptr);
  std::thread u([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    pthread_kill(self, SIGUSR1);
  });
  t0 = MonotonicNs();
  r = SelectOnce(sel.get(), -1);
  elapsed = MonotonicNs() - t0;
  u.join();
  AIO_CHECK_EQ(r.rc, 0);
  AIO_CHECK(elapsed < 2000 * kMs);
  g_signal_selector = nullptr;
  sigaction(SIGUSR1, &old_sa, nullptr);
}

void TestTimeoutRoundsUp(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  const int64_t timeouts[] = {1500000, 1, 999999, 1000001, 2500000};
  for (int rep = 0; rep < 4; ++rep) {
    for (int64_t timeout : timeouts) {
      const int64_t t0 = MonotonicNs();
      Result r = SelectOnce(sel.get(), timeout);
      const int64_t t1 = MonotonicNs();
      AIO_CHECK_EQ(r.rc, 0);
      if (t1 - t0 < timeout) {
        Fail("Select(" + Str(timeout) + " ns) returned after " +
             Str(t1 - t0) + " ns");
      }
    }
  }
  // Zero does not block.
  const int64_t t0 = MonotonicNs();
  AIO_CHECK_EQ(SelectOnce(sel.get(), 0).rc, 0);
  AIO_CHECK(MonotonicNs() - t0 < 50 * kMs);
}

void TestChangeWhileBlocked(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  SocketPair idle;
  AIO_CHECK_EQ(sel->Register(idle.a, 1, kReadable), 0);
  // Register from another thread a socket that is ready (writable): the
  // blocked Select must notice promptly (poll/select via the internal
  // wake-up, epoll by itself) and then report it.
  SocketPair ready;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    sel->Register(ready.a, 2, kWritable);
  });
  const int64_t t0 = MonotonicNs();
  Result r = SelectOnce(sel.get(), 3000 * kMs);
  const int64_t elapsed = MonotonicNs() - t0;
  // poll and select only see the change through their internal Wakeup();
  // without it this Select would sleep the full 3 s.
  t.join();
  AIO_CHECK(r.rc >= 0);
  AIO_CHECK(elapsed < 1000 * kMs);
  if (r.rc == 0) r = SelectOnce(sel.get(), 1000 * kMs);
  AIO_CHECK_EQ(r.events[2], static_cast<int32_t>(kWritable));

  // Unregister from another thread, then make the old fd ready while the
  // Select is waking up: whatever the interleaving, a token unregistered
  // before the Select reports must never be reported. (Racy by nature: many
  // rounds give the bad interleaving a chance; it cannot report falsely.)
  AIO_CHECK_EQ(sel->Unregister(ready.a), 0);
  for (int rep = 0; rep < 300; ++rep) {
    SocketPair s;
    const int32_t token = 100 + rep;
    AIO_CHECK_EQ(sel->Register(s.a, token, kReadable), 0);
    std::thread u([&] {
      if (rep % 3 != 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(rep % 7 * 20));
      }
      sel->Unregister(s.a);
      (void)!write(s.b, "x", 1);
      sel->Wakeup();  // epoll has no internal wake-up on Unregister
    });
    Result got = SelectOnce(sel.get(), 200 * kMs);
    u.join();
    Result after = SelectOnce(sel.get(), 0);
    // Nothing else is ready, so any event at all is a stale report.
    if (got.rc != 0 || after.rc != 0) {
      Fail("round " + Str(rep) + ": Select reported " + Str(got.rc) + "+" +
           Str(after.rc) + " events after Unregister of token " + Str(token));
      break;
    }
  }
  AIO_CHECK_EQ(sel->Size(), 1);
}

void TestCapacity(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  for (int i = 0; i < 8; ++i) {
    pairs.emplace_back(new SocketPair());
    AIO_CHECK_EQ(sel->Register(pairs.back()->a, i, kWritable), 0);
  }
  std::vector<int32_t> buf(64, -7);
  EventBuffer eb{buf.data(), 3};
  std::set<int32_t> seen;
  for (int round = 0; round < 4; ++round) {
    int n = sel->Select(&eb, 0);
    AIO_CHECK_EQ(n, 3);
    for (size_t i = 6; i < buf.size(); ++i) {
      if (buf[i] != -7) {
        Fail("Select wrote past capacity at int " + Str(i));
        break;
      }
    }
    for (int i = 0; i < n; ++i) seen.insert(buf[static_cast<size_t>(2 * i)]);
  }
  AIO_CHECK(seen.size() >= 3u);
  EventBuffer empty{buf.data(), 0};
  AIO_CHECK_EQ(sel->Select(&empty, 0), -EINVAL);
  AIO_CHECK_EQ(sel->Select(nullptr, 0), -EINVAL);
}

// Every fd the selector opened is close-on-exec (reliability F16).
void TestCloexec(const std::string& name) {
  std::vector<bool> before(4096);
  for (int fd = 0; fd < 4096; ++fd) before[fd] = fcntl(fd, F_GETFD) >= 0;
  auto sel = Make(name);
  if (!sel) return;
  int created = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (before[fd]) continue;
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) continue;
    ++created;
    if (!(flags & FD_CLOEXEC)) Fail("fd " + Str(fd) + " lacks FD_CLOEXEC");
  }
  AIO_CHECK(created >= 1);
  if (name == "epoll") {
    AIO_CHECK(sel->BackendFd() >= 0);
  } else {
    AIO_CHECK_EQ(sel->BackendFd(), -1);
  }
}

// Raises RLIMIT_NOFILE so that fd `want` can exist; false if not allowed.
bool AllowFd(int want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur > static_cast<rlim_t>(want)) return true;
  if (rl.rlim_max != RLIM_INFINITY &&
      rl.rlim_max <= static_cast<rlim_t>(want)) {
    return false;
  }
  rl.rlim_cur = static_cast<rlim_t>(want) + 1;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

void TestHighFd(const std::string& name) {
  auto sel = Make(name);
  if (!sel) return;
  const int high = FD_SETSIZE + 5;
  if (!AllowFd(high)) {
    std::printf("# %s: RLIMIT_NOFILE too low for fd %d, check skipped\n",
                name.c_str(), high);
    return;
  }
  SocketPair p;
  if (fcntl(high, F_GETFD) >= 0) {
    std::printf("# %s: fd %d already in use, high-fd check skipped\n",
                name.c_str(), high);
    return;
  }
  if (dup2(p.a, high) != high) {
    Fail("dup2 to " + Str(high) + ": " + std::strerror(errno));
    return;
  }
  if (name == "select") {
    AIO_CHECK_EQ(sel->Register(high, 1, kWritable), -ERANGE);
    AIO_CHECK_EQ(sel->Modify(high, 1, kWritable), -ENOENT);
    AIO_CHECK_EQ(sel->Unregister(high), -ENOENT);
  } else {
    AIO_CHECK_EQ(sel->Register(high, 1, kWritable), 0);
    Result r = SelectOnce(sel.get(), 0);
    AIO_CHECK_EQ(r.events[1], static_cast<int32_t>(kWritable));
    AIO_CHECK_EQ(sel->Unregister(high), 0);
  }
  close(high);
}

void TestCreateSelector() {
  std::vector<std::string> names = Backends();
  AIO_CHECK(!names.empty());
  std::unique_ptr<Selector> sel;
  AIO_CHECK_EQ(CreateSelector("default", &sel), 0);
  if (sel && !names.empty()) AIO_CHECK(names[0] == sel->Name());
  AIO_CHECK_EQ(CreateSelector("nope", &sel), -EINVAL);
  AIO_CHECK_EQ(CreateSelector("", &sel), -EINVAL);
  AIO_CHECK_EQ(CreateSelector(nullptr, &sel), -EINVAL);
  if (std::find(names.begin(), names.end(), "kqueue") == names.end()) {
    AIO_CHECK_EQ(CreateSelector("kqueue", &sel), -ENOSYS);
  }
#if defined(__linux__)
  AIO_CHECK_EQ(std::string(AvailableSelectors()),
               std::string("epoll,poll,select"));
#endif
}

// ---- timer heap ------------------------------------------------------------

void TestHeapOrder() {
  TimerHeap h;
  // Ties on `when` come out in insertion order.
  const int64_t whens[] = {50, 10, 50, 10, 30, 50, 10, 0};
  std::vector<std::pair<int64_t, int>> expect;
  for (int i = 0; i < 8; ++i) {
    AIO_CHECK_EQ(h.Add(i, whens[i]), 0);
    expect.emplace_back(whens[i], i);
  }
  std::stable_sort(
      expect.begin(), expect.end(),
      [](const auto& a, const auto& b) { return a.first < b.first; });
  AIO_CHECK_EQ(h.PeekWhen(), 0);
  int32_t out[16];
  AIO_CHECK_EQ(h.PopDue(INT64_MAX, out, 16), 8);
  for (size_t i = 0; i < 8; ++i) AIO_CHECK_EQ(out[i], expect[i].second);
  AIO_CHECK(h.Empty());
  AIO_CHECK_EQ(h.PeekWhen(), INT64_MAX);
}

void TestHeapErrors() {
  TimerHeap h;
  AIO_CHECK_EQ(h.Add(-1, 5), -EINVAL);
  AIO_CHECK_EQ(h.Add(TimerHeap::kMaxId, 5), -EINVAL);
  AIO_CHECK_EQ(h.Add(3, 5), 0);
  AIO_CHECK_EQ(h.Add(3, 6), -EEXIST);
  AIO_CHECK(h.Contains(3));
  AIO_CHECK(!h.Contains(4));
  AIO_CHECK(!h.Contains(-1));
  AIO_CHECK_EQ(h.Remove(4), -ENOENT);
  AIO_CHECK_EQ(h.Remove(-2), -ENOENT);
  AIO_CHECK_EQ(h.Remove(1 << 29), -ENOENT);
  AIO_CHECK_EQ(h.Remove(3), 0);
  AIO_CHECK_EQ(h.Remove(3), -ENOENT);
  AIO_CHECK(h.Empty());
}

void TestHeapPopDueMax() {
  TimerHeap h;
  for (int i = 0; i < 10; ++i) AIO_CHECK_EQ(h.Add(i, 100 + i), 0);
  AIO_CHECK_EQ(h.Add(10, 1000), 0);
  int32_t out[16];
  AIO_CHECK_EQ(h.PopDue(50, out, 16), 0);       // nothing due yet
  AIO_CHECK_EQ(h.PopDue(500, out, 0), 0);       // max 0
  AIO_CHECK_EQ(h.PopDue(500, out, 3), 3);
  AIO_CHECK(out[0] == 0 && out[1] == 1 && out[2] == 2);
  AIO_CHECK_EQ(h.PopDue(105, out, 16), 3);      // when <= now, inclusive
  AIO_CHECK(out[0] == 3 && out[1] == 4 && out[2] == 5);
  AIO_CHECK_EQ(h.PopDue(500, out, 16), 4);
  AIO_CHECK_EQ(h.Size(), 1u);
  AIO_CHECK_EQ(h.PeekWhen(), 1000);
}

void TestHeapClear() {
  TimerHeap h;
  for (int i = 0; i < 100; ++i) AIO_CHECK_EQ(h.Add(i, i % 7), 0);
  h.Clear();
  AIO_CHECK(h.Empty());
  AIO_CHECK_EQ(h.Size(), 0u);
  AIO_CHECK_EQ(h.PeekWhen(), INT64_MAX);
  AIO_CHECK(!h.Contains(5));
  AIO_CHECK_EQ(h.Remove(5), -ENOENT);
  AIO_CHECK_EQ(h.Add(5, 1), 0);
  int32_t out[4];
  AIO_CHECK_EQ(h.PopDue(1, out, 4), 1);
  AIO_CHECK_EQ(out[0], 5);
}

// 100k random Add / Remove / PopDue against an ordered-set model.
void TestHeapRandomized() {
  const uint32_t seed = 20240611;
  std::printf("# timer heap randomized: seed %u\n", seed);
  std::mt19937 rng(seed);
  TimerHeap h;
  // Model: (when, seq, id); seq mirrors the heap's insertion counter.
  std::set<std::tuple<int64_t, uint64_t, int32_t>> model;
  std::map<int32_t, std::pair<int64_t, uint64_t>> by_id;
  uint64_t seq = 0;
  const int32_t kIds = 3000;
  int64_t now = 0;
  int32_t out[16];
  for (int op = 0; op < 100000; ++op) {
    const uint32_t kind = rng() % 10;
    if (kind < 5) {
      const int32_t id = static_cast<int32_t>(rng() % kIds);
      // Few distinct deadlines, so ties are common.
      const int64_t when = now + static_cast<int64_t>(rng() % 64);
      const int rc = h.Add(id, when);
      if (by_id.count(id)) {
        if (rc != -EEXIST) return Fail("Add dup " + Str(id) + " = " + Str(rc));
      } else {
        if (rc != 0) return Fail("Add " + Str(id) + " = " + Str(rc));
        model.emplace(when, seq, id);
        by_id[id] = {when, seq};
        ++seq;
      }
    } else if (kind < 8) {
      const int32_t id = static_cast<int32_t>(rng() % kIds);
      const int rc = h.Remove(id);
      auto it = by_id.find(id);
      if (it == by_id.end()) {
        if (rc != -ENOENT) return Fail("Remove " + Str(id) + " = " + Str(rc));
      } else {
        if (rc != 0) return Fail("Remove " + Str(id) + " = " + Str(rc));
        model.erase(std::make_tuple(it->second.first, it->second.second, id));
        by_id.erase(it);
      }
    } else {
      now += static_cast<int64_t>(rng() % 8);
      const int max = static_cast<int>(rng() % 9);  // 0..8
      const int n = h.PopDue(now, out, max);
      int expect = 0;
      for (auto it = model.begin(); it != model.end() && expect < max;) {
        if (std::get<0>(*it) > now) break;
        if (expect >= n || out[expect] != std::get<2>(*it)) {
          Fail("op " + Str(op) + ": PopDue #" + Str(expect) + " got " +
               (expect < n ? Str(out[expect]) : std::string("nothing")) +
               ", model " + Str(std::get<2>(*it)));
          return;
        }
        by_id.erase(std::get<2>(*it));
        it = model.erase(it);
        ++expect;
      }
      if (n != expect) {
        return Fail("op " + Str(op) + ": PopDue count " + Str(n) + " vs " +
                    Str(expect));
      }
    }
    if (h.Size() != model.size()) {
      return Fail("op " + Str(op) + ": size " + Str(h.Size()) + " vs " +
                  Str(model.size()));
    }
    const int64_t peek =
        model.empty() ? INT64_MAX : std::get<0>(*model.begin());
    if (h.PeekWhen() != peek) {
      return Fail("op " + Str(op) + ": PeekWhen " + Str(h.PeekWhen()) +
                  " vs " + Str(peek));
    }
  }
  // Drain what is left, in order.
  while (!model.empty()) {
    const int n = h.PopDue(INT64_MAX, out, 16);
    for (int i = 0; i < n; ++i) {
      if (out[i] != std::get<2>(*model.begin())) {
        return Fail("final drain order");
      }
      model.erase(model.begin());
    }
    if (n == 0) return Fail("final drain stalled");
  }
  AIO_CHECK(h.Empty());
}

// Storage comes back after a flood (T13): 100k timers added and removed
// leave no more than the minimum; the index shrinks down to the largest id
// still in use, and order survives every shrink.
void TestHeapShrinks() {
  TimerHeap h;
  const size_t kEntry = 24;  // sizeof(Entry): int64 when, uint64 seq, id
  for (int i = 0; i < 100000; ++i) AIO_CHECK_EQ(h.Add(i, 1000 + i), 0);
  AIO_CHECK(h.HeapBytes() >= 100000 * kEntry);
  AIO_CHECK(h.IndexBytes() >= 100000 * sizeof(int32_t));
  // Remove all but ids 0..9, not in heap order (as cancellation does); the
  // high ids go first, as they do when the id table hands out low ids first.
  for (int i = 99999; i >= 10; i -= 2) AIO_CHECK_EQ(h.Remove(i), 0);
  for (int i = 99998; i >= 10; i -= 2) AIO_CHECK_EQ(h.Remove(i), 0);
  AIO_CHECK_EQ(h.Size(), 10u);
  AIO_CHECK(h.HeapBytes() <= 2048 * kEntry);
  AIO_CHECK(h.IndexBytes() <= 2048 * sizeof(int32_t));
  for (int i = 0; i < 10; ++i) AIO_CHECK(h.Contains(i));
  AIO_CHECK(!h.Contains(10));
  AIO_CHECK(!h.Contains(99999));
  // Ids beyond the shrunk index work again.
  AIO_CHECK_EQ(h.Add(50000, 5), 0);
  AIO_CHECK_EQ(h.PeekWhen(), 5);
  int32_t out[16];
  AIO_CHECK_EQ(h.PopDue(INT64_MAX, out, 16), 11);
  AIO_CHECK_EQ(out[0], 50000);
  for (int i = 1; i < 11; ++i) AIO_CHECK_EQ(out[i], i - 1);

  // A live high id keeps the index (it is needed), not the heap array.
  for (int i = 0; i < 20000; ++i) AIO_CHECK_EQ(h.Add(i, i), 0);
  AIO_CHECK_EQ(h.Add(30000, 1 << 30), 0);
  std::vector<int32_t> big(20000);
  AIO_CHECK_EQ(h.PopDue(INT64_MAX - 1, big.data(), 20000), 20000);
  AIO_CHECK_EQ(h.Size(), 1u);
  AIO_CHECK(h.HeapBytes() <= 2048 * kEntry);
  AIO_CHECK(h.Contains(30000));
  AIO_CHECK_EQ(h.Remove(30000), 0);
  h.Clear();
  AIO_CHECK_EQ(h.HeapBytes(), 0u);
  AIO_CHECK_EQ(h.IndexBytes(), 0u);
}

// ---- batch assembly (what RunBatch does between select and JS) -------------

std::vector<std::pair<int32_t, int32_t>> Pairs(const int32_t* buf, int n) {
  std::vector<std::pair<int32_t, int32_t>> v;
  for (int i = 0; i < n; ++i) v.emplace_back(buf[2 * i], buf[2 * i + 1]);
  return v;
}

void TestBatchDropToken() {
  int32_t buf[] = {-2, 1, 3, 1, -2, 1, 4, 2};
  bool seen = false;
  int n = DropToken(buf, 4, -2, &seen);
  AIO_CHECK_EQ(n, 2);
  AIO_CHECK(seen);
  AIO_CHECK(Pairs(buf, n) ==
            (std::vector<std::pair<int32_t, int32_t>>{{3, 1}, {4, 2}}));
  n = DropToken(buf, n, -2, &seen);
  AIO_CHECK_EQ(n, 2);
  AIO_CHECK(!seen);
  AIO_CHECK_EQ(DropToken(buf, 0, -2, &seen), 0);
}

// Due timers follow the I/O pairs as (-1, id) in (when, seq) order; a timer
// due exactly at `now` is due, one a nanosecond later is not.
void TestBatchDueOrder() {
  TimerHeap h;
  AIO_CHECK_EQ(h.Add(1, 10), 0);
  AIO_CHECK_EQ(h.Add(2, 10), 0);   // same deadline, added later: after 1
  AIO_CHECK_EQ(h.Add(3, 5), 0);
  AIO_CHECK_EQ(h.Add(4, 11), 0);   // 1 ns in the future
  AIO_CHECK_EQ(h.Add(5, 0), 0);    // callAt(0)
  int32_t buf[16] = {7, 1, 9, 2};  // two I/O pairs first
  bool more = true;
  int n = AppendDueTimers(&h, 10, buf, 2, 8, &more);
  AIO_CHECK_EQ(n, 6);
  AIO_CHECK(!more);
  AIO_CHECK(Pairs(buf, n) == (std::vector<std::pair<int32_t, int32_t>>{
                                 {7, 1}, {9, 2}, {-1, 5}, {-1, 3}, {-1, 1},
                                 {-1, 2}}));
  AIO_CHECK_EQ(h.Size(), 1u);
  AIO_CHECK_EQ(h.PeekWhen(), 11);
  // Nothing due: the batch is the I/O alone.
  n = AppendDueTimers(&h, 10, buf, 0, 8, &more);
  AIO_CHECK_EQ(n, 0);
  AIO_CHECK(!more);
  n = AppendDueTimers(&h, 11, buf, 0, 8, &more);
  AIO_CHECK_EQ(n, 1);
  AIO_CHECK(buf[0] == -1 && buf[1] == 4);
}

// A full buffer leaves the rest due in the heap, in order, and says so.
void TestBatchCapacity() {
  TimerHeap h;
  for (int i = 0; i < 7; ++i) AIO_CHECK_EQ(h.Add(i, 100 - i % 2), 0);
  AIO_CHECK_EQ(h.Add(7, 200), 0);
  int32_t buf[8] = {42, 1};
  bool more = false;
  int n = AppendDueTimers(&h, 150, buf, 1, 4, &more);  // room for 3
  AIO_CHECK_EQ(n, 4);
  AIO_CHECK(more);
  AIO_CHECK(Pairs(buf, n) == (std::vector<std::pair<int32_t, int32_t>>{
                                 {42, 1}, {-1, 1}, {-1, 3}, {-1, 5}}));
  // No room at all.
  n = AppendDueTimers(&h, 150, buf, 4, 4, &more);
  AIO_CHECK_EQ(n, 4);
  AIO_CHECK(more);
  AIO_CHECK_EQ(h.Size(), 5u);
  n = AppendDueTimers(&h, 150, buf, 0, 4, &more);
  AIO_CHECK_EQ(n, 4);
  AIO_CHECK(!more);  // exactly filled, and nothing else is due
  AIO_CHECK(Pairs(buf, n) == (std::vector<std::pair<int32_t, int32_t>>{
                                 {-1, 0}, {-1, 2}, {-1, 4}, {-1, 6}}));
  AIO_CHECK_EQ(h.PeekWhen(), 200);
}

// Random batches against a sorted model: random I/O prefixes, capacities
// and clocks; every due timer comes out once, in order, none early.
void TestBatchRandomized() {
  const uint32_t seed = 20261202;
  std::printf("# batch randomized: seed %u\n", seed);
  std::mt19937 rng(seed);
  TimerHeap h;
  std::set<std::tuple<int64_t, uint64_t, int32_t>> model;
  uint64_t seq = 0;
  int32_t next_id = 0;
  int64_t now = 0;
  std::vector<int32_t> buf(2 * 64);
  for (int round = 0; round < 3000; ++round) {
    const int adds = static_cast<int>(rng() % 20);
    for (int i = 0; i < adds; ++i) {
      const int64_t when = now + static_cast<int64_t>(rng() % 40) - 5;
      AIO_CHECK_EQ(h.Add(next_id, when), 0);
      model.emplace(when, seq++, next_id++);
    }
    now += static_cast<int64_t>(rng() % 10);
    const int cap = 1 + static_cast<int>(rng() % 64);
    const int io = static_cast<int>(rng() % (cap + 1));
    for (int i = 0; i < io; ++i) {
      buf[2 * i] = 1000 + i;
      buf[2 * i + 1] = 1;
    }
    bool more = false;
    const int n = AppendDueTimers(&h, now, buf.data(), io, cap, &more);
    for (int i = 0; i < io; ++i) {
      if (buf[2 * i] != 1000 + i) return Fail("I/O pair overwritten");
    }
    for (int i = io; i < n; ++i) {
      if (model.empty() || std::get<0>(*model.begin()) > now) {
        return Fail("round " + Str(round) + ": popped a timer not due");
      }
      if (buf[2 * i] != -1 || buf[2 * i + 1] != std::get<2>(*model.begin())) {
        return Fail("round " + Str(round) + ": pair " + Str(i) + " is (" +
                    Str(buf[2 * i]) + ", " + Str(buf[2 * i + 1]) +
                    "), model id " + Str(std::get<2>(*model.begin())));
      }
      model.erase(model.begin());
    }
    const bool due_left =
        !model.empty() && std::get<0>(*model.begin()) <= now;
    if (more != due_left) return Fail("round " + Str(round) + ": more flag");
    if (n < cap && due_left) return Fail("round " + Str(round) + ": room left");
  }
}

void TestNextWakeup() {
  TimerHeap h;
  AIO_CHECK_EQ(NextWakeup(h, true), kNeverNs);
  AIO_CHECK_EQ(h.Add(1, kNeverNs), 0);  // callLater(Infinity)
  AIO_CHECK_EQ(NextWakeup(h, true), kNeverNs);
  AIO_CHECK_EQ(h.Add(2, 0), 0);  // callAt(0): armed as 0, not "never"
  AIO_CHECK_EQ(NextWakeup(h, true), 0);
  AIO_CHECK_EQ(NextWakeup(h, false), kNeverNs);  // a stopped loop sleeps
}

// ---- helper thread ---------------------------------------------------------

// Counts notifications; the loop thread waits on it as uv_async would.
struct Notifier {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  static void Notify(void* arg) {
    auto* n = static_cast<Notifier*>(arg);
    std::lock_guard<std::mutex> lock(n->mu);
    n->count++;
    n->cv.notify_all();
  }
  // Waits until count > seen, up to timeout_ms. Returns the count.
  int WaitPast(int seen, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                [&] { return count > seen; });
    return count;
  }
};

// Arm -> the thread selects -> notify -> Take hands over the ready set,
// once; nothing more is handed over until the next Arm, even while the fd
// stays readable; changes and Wakeup while it blocks; Stop while blocked.
void TestWaitThread(const std::string& name) {
  std::unique_ptr<Selector> owned = Make(name);
  if (!owned) return;
  std::shared_ptr<Selector> sel(std::move(owned));
  SocketPair p;
  Notifier note;
  int32_t out[2 * 8];
  {
    WaitThread wt(sel, 8, Notifier::Notify, &note);
    AIO_CHECK_EQ(wt.Take(out, 8), 0);  // nothing before the first Arm
    AIO_CHECK_EQ(wt.Start(), 0);
    AIO_CHECK_EQ(sel->Register(p.a, 7, kReadable), 0);
    AIO_CHECK_EQ(write(p.b, "x", 1), 1);
    // Parked until armed: readable, but no hand-off.
    AIO_CHECK_EQ(note.WaitPast(0, 50), 0);
    wt.Arm();
    if (note.WaitPast(0, 2000) != 1) return Fail("no notify after Arm");
    AIO_CHECK_EQ(wt.Take(out, 8), 1);
    AIO_CHECK(out[0] == 7 && out[1] == static_cast<int32_t>(kReadable));
    AIO_CHECK_EQ(wt.Take(out, 8), 0);  // handed over once
    // Level-triggered and not re-armed: no second notify.
    AIO_CHECK_EQ(note.WaitPast(1, 50), 1);
    wt.Arm();
    if (note.WaitPast(1, 2000) != 2) return Fail("no notify after re-Arm");
    AIO_CHECK_EQ(wt.Take(out, 1), 1);  // capacity of the taker respected

    // Drained: armed, the thread blocks; a registration made meanwhile plus
    // Wakeup makes it select again with the new set.
    char c;
    AIO_CHECK_EQ(read(p.a, &c, 1), 1);
    wt.Arm();
    AIO_CHECK_EQ(note.WaitPast(2, 50), 2);  // nothing ready: blocked
    AIO_CHECK_EQ(sel->Register(p.b, 9, kWritable), 0);
    AIO_CHECK_EQ(sel->Wakeup(), 0);
    if (note.WaitPast(2, 2000) != 3) return Fail("no notify after Wakeup");
    AIO_CHECK_EQ(wt.Take(out, 8), 1);
    AIO_CHECK(out[0] == 9 && out[1] == static_cast<int32_t>(kWritable));
    AIO_CHECK_EQ(sel->Unregister(p.b), 0);

    // Stop while blocked in Select(-1): returns promptly, idempotent.
    wt.Arm();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const int64_t t0 = MonotonicNs();
    wt.Stop();
    AIO_CHECK(MonotonicNs() - t0 < 1000 * kMs);
    wt.Stop();
    AIO_CHECK_EQ(note.WaitPast(3, 20), 3);
  }
  {
    // Stop while parked (never armed), then destroy: no notify, no hang.
    WaitThread wt(sel, 8, Notifier::Notify, &note);
    AIO_CHECK_EQ(wt.Start(), 0);
    wt.Stop();
  }
  // Destroyed without Stop: the destructor stops it.
  {
    WaitThread wt(sel, 8, Notifier::Notify, &note);
    AIO_CHECK_EQ(wt.Start(), 0);
    wt.Arm();
  }
  AIO_CHECK_EQ(sel->Unregister(p.a), 0);
}

// ---- timer fd --------------------------------------------------------------

bool Readable(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

void TestTimerFd() {
  const int fd = TimerFdCreate();
#if !defined(__linux__)
  AIO_CHECK_EQ(fd, -ENOSYS);
  return;
#endif
  if (fd < 0) { Fail("TimerFdCreate = " + Str(fd)); return; }
  AIO_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  AIO_CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
  AIO_CHECK_EQ(TimerFdDrain(fd), 0);  // not fired yet: still 0

  // Fires at or after the absolute deadline, never before.
  for (int rep = 0; rep < 5; ++rep) {
    const int64_t deadline = MonotonicNs() + 3 * kMs + rep * 100000;
    AIO_CHECK_EQ(TimerFdArm(fd, deadline), 0);
    AIO_CHECK(Readable(fd, 1000));
    const int64_t now = MonotonicNs();
    if (now < deadline) {
      Fail("timer fd fired " + Str(deadline - now) + " ns early");
    }
    AIO_CHECK_EQ(TimerFdDrain(fd), 0);
    AIO_CHECK(!Readable(fd, 0));
  }

  // A deadline in the past (even 1 ns after boot) fires at once.
  const int64_t past[] = {1, MonotonicNs() - 5 * kMs};
  for (int64_t when : past) {
    AIO_CHECK_EQ(TimerFdArm(fd, when), 0);
    const int64_t t0 = MonotonicNs();
    AIO_CHECK(Readable(fd, 1000));
    AIO_CHECK(MonotonicNs() - t0 < 100 * kMs);
    AIO_CHECK_EQ(TimerFdDrain(fd), 0);
  }

  // Zero and negative deadlines (callAt(0), callAt(-1)) are past ones and
  // fire at once; a zero it_value used to disarm instead (issue 8 item 4).
  for (int64_t when : {int64_t{0}, int64_t{-1}, INT64_MIN}) {
    AIO_CHECK_EQ(TimerFdArm(fd, MonotonicNs() + 10000 * kMs), 0);
    AIO_CHECK_EQ(TimerFdArm(fd, when), 0);
    if (!Readable(fd, 1000)) Fail("TimerFdArm(" + Str(when) + ") never fired");
    AIO_CHECK_EQ(TimerFdDrain(fd), 0);
  }

  // Disarm cancels a pending deadline.
  AIO_CHECK_EQ(TimerFdArm(fd, MonotonicNs() + 5 * kMs), 0);
  AIO_CHECK_EQ(TimerFdDisarm(fd), 0);
  AIO_CHECK(!Readable(fd, 15));

  // Re-arming replaces the deadline.
  AIO_CHECK_EQ(TimerFdArm(fd, MonotonicNs() + 10000 * kMs), 0);
  AIO_CHECK_EQ(TimerFdArm(fd, MonotonicNs() + 1 * kMs), 0);
  AIO_CHECK(Readable(fd, 1000));
  AIO_CHECK_EQ(TimerFdDrain(fd), 0);
  close(fd);
  AIO_CHECK_EQ(TimerFdDrain(fd), -EBADF);
  AIO_CHECK_EQ(TimerFdArm(fd, 5), -EBADF);
  AIO_CHECK_EQ(TimerFdDisarm(fd), -EBADF);
}

// ---- errno table, clock ----------------------------------------------------

void TestErrnoTable() {
  const int codes[] = {
      EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, EBADF, ECHILD, EAGAIN,
      ENOMEM, EACCES, EFAULT, EEXIST, ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE,
      ENOSPC, EROFS, EPIPE, ERANGE, ENOSYS, ENOTEMPTY, EINPROGRESS, EALREADY,
      ENOTSOCK, EDESTADDRREQ, EMSGSIZE, EPROTONOSUPPORT, ENOTSUP,
      EAFNOSUPPORT, EADDRINUSE, EADDRNOTAVAIL, ENETUNREACH, ECONNABORTED,
      ECONNRESET, ENOBUFS, EISCONN, ENOTCONN, ESHUTDOWN, ETIMEDOUT,
      ECONNREFUSED, EHOSTUNREACH, ECANCELED};
  for (int code : codes) {
    const char* name = ErrnoName(code);
    if (std::strcmp(name, "UNKNOWN") == 0) {
      Fail("no name for errno " + Str(code));
      continue;
    }
    if (ErrnoFromName(name) != code) Fail(std::string("round trip ") + name);
    const char* msg = ErrnoMessage(code);
    if (msg == nullptr || msg[0] == '\0') {
      Fail(std::string("no message ") + name);
    }
  }
  AIO_CHECK_EQ(std::string(ErrnoName(ECONNREFUSED)),
               std::string("ECONNREFUSED"));
  AIO_CHECK_EQ(std::string(ErrnoName(EAGAIN)), std::string("EAGAIN"));
  AIO_CHECK_EQ(ErrnoFromName("EWOULDBLOCK"), EWOULDBLOCK);
  AIO_CHECK_EQ(ErrnoFromName("EOPNOTSUPP"), EOPNOTSUPP);
  AIO_CHECK_EQ(std::string(ErrnoName(ENOTSUP)), std::string("ENOTSUP"));
  AIO_CHECK_EQ(std::string(ErrnoName(0)), std::string("UNKNOWN"));
  AIO_CHECK_EQ(std::string(ErrnoName(99999)), std::string("UNKNOWN"));
  AIO_CHECK_EQ(ErrnoFromName("ENOPE"), 0);
  AIO_CHECK_EQ(ErrnoFromName(nullptr), 0);
  AIO_CHECK(std::strlen(ErrnoMessage(99999)) > 0);

  // Same text from several threads at once (thread-safe strerror).
  const std::string expect = ErrnoMessage(ECONNRESET);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (expect != ErrnoMessage(ECONNRESET)) ++mismatches;
        ErrnoMessage(EPIPE);
        ErrnoMessage(100000 + i);
      }
    });
  }
  for (auto& t : threads) t.join();
  AIO_CHECK_EQ(mismatches.load(), 0);
}

void TestClock() {
  int64_t prev = MonotonicNs();
  AIO_CHECK(prev > 0);
  for (int i = 0; i < 10000; ++i) {
    const int64_t now = MonotonicNs();
    if (now < prev) { Fail("clock went backwards"); return; }
    prev = now;
  }
  const int64_t t0 = MonotonicNs();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  AIO_CHECK(MonotonicNs() - t0 >= 5 * kMs);
}

}  // namespace
}  // namespace aionode

int main() {
  using namespace aionode;
  const int64_t start = MonotonicNs();
  Run("clock monotonic", TestClock);
  Run("errno table", TestErrnoTable);
  Run("CreateSelector names", TestCreateSelector);
  for (const std::string& b : Backends()) {
    Run(b + ": register/modify/unregister errors", [&] { TestErrors(b); });
    Run(b + ": readiness on a socketpair", [&] { TestReadiness(b); });
    Run(b + ": events masked by interest", [&] { TestMasking(b); });
    Run(b + ": hang-up and error reported", [&] { TestHangup(b); });
    Run(b + ": Wakeup from another thread", [&] { TestWakeup(b); });
    Run(b + ": timeout rounds up", [&] { TestTimeoutRoundsUp(b); });
    Run(b + ": EINTR retried, Wakeup in a signal handler",
        [&] { TestSignals(b); });
    Run(b + ": changes while Select blocks",
        [&] { TestChangeWhileBlocked(b); });
    Run(b + ": capacity respected", [&] { TestCapacity(b); });
    Run(b + ": fds are close-on-exec", [&] { TestCloexec(b); });
    Run(b + ": fd above FD_SETSIZE", [&] { TestHighFd(b); });
  }
  Run("timer heap: (when, seq) order with ties", TestHeapOrder);
  Run("timer heap: EINVAL / EEXIST / ENOENT", TestHeapErrors);
  Run("timer heap: PopDue max", TestHeapPopDueMax);
  Run("timer heap: Clear", TestHeapClear);
  Run("timer heap: randomized vs model", TestHeapRandomized);
  Run("timer heap: storage shrinks after a flood (T13)", TestHeapShrinks);
  Run("batch: timer fd pair dropped", TestBatchDropToken);
  Run("batch: due timers in (when, seq) order, at-now due",
      TestBatchDueOrder);
  Run("batch: capacity-limited pops leave the rest", TestBatchCapacity);
  Run("batch: randomized vs model", TestBatchRandomized);
  Run("batch: next wake-up (zero deadline armed, never not)", TestNextWakeup);
  for (const std::string& b : Backends()) {
    Run(b + ": helper thread Arm/notify/Take, Wakeup, Stop",
        [&] { TestWaitThread(b); });
  }
  Run("timer fd: arm, fire, disarm, drain", TestTimerFd);
  RunSocketTests(Run, Fail);
  RunIoUringTests(Run, Fail);
  RunChannelTests(Run, Fail);
  RunSpawnTests(Run, Fail);
  std::printf("# %.0f ms\n", static_cast<double>(MonotonicNs() - start) / 1e6);
  std::printf("core: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
