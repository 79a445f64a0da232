// Tests of the io_uring proactor (core, no Node) and of every event source's
// own timer (ArmTimer): probe and refusal, each op over a socketpair or
// loopback, cancel and its -ENOENT after the end, full-queue and
// capacity edges, Drain with ops in flight. Runs inside core_test.cc's
// harness (its Run / Fail). Bounded: every Wait has a 2 s timeout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../clock.h"
#include "../proactor.h"
#include "../selector.h"
#include "check.h"

namespace aionode {

void RunIoUringTests(void (*run)(const std::string&,
                                 const std::function<void()>&),
                     void (*fail)(const std::string&));

namespace {

using test::Fail;
using test::Str;

constexpr int64_t kMs = 1000000;

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   fds) == 0) {
      a = fds[0];
      b = fds[1];
    }
  }
  ~Pair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

std::unique_ptr<Proactor> Make(unsigned entries = 64) {
  std::unique_ptr<Proactor> p;
  std::string why;
  int rc = CreateIoUringProactor(entries, &p, &why);
  if (rc < 0) Fail("CreateIoUringProactor: " + Str(rc) + " " + why);
  return p;
}

// Waits (2 s at most) until `token` has completed; returns its results in
// order (several for accept-many). Other tokens' pairs go to `others`.
std::vector<int32_t> WaitFor(Proactor* p, Token token, size_t count = 1,
                             std::map<Token, std::vector<int32_t>>* others =
                                 nullptr) {
  std::vector<int32_t> got;
  int32_t buf[2 * 16];
  EventBuffer eb{buf, 16};
  const int64_t end = MonotonicNs() + 2000 * kMs;
  while (got.size() < count && MonotonicNs() < end) {
    int n = p->Wait(&eb, 100 * kMs);
    if (n < 0) {
      Fail("Wait = " + Str(n));
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (buf[2 * i] == token) {
        got.push_back(buf[2 * i + 1]);
      } else if (others != nullptr) {
        (*others)[buf[2 * i]].push_back(buf[2 * i + 1]);
      }
    }
  }
  if (got.size() < count) Fail("token " + Str(token) + " never completed");
  return got;
}

SockAddr Loopback(int port) {
  SockAddr a;
  MakeInetAddress(AF_INET, "127.0.0.1", port, 0, 0, &a);
  return a;
}

int Listener(SockAddr* where) {
  int l = Socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  Bind(l, Loopback(0));
  Listen(l, 16);
  GetSockName(l, where);
  return l;
}

// ---- tests -------------------------------------------------------------------

void TestProbe() {
  auto p = Make();
  if (!p) return;
  TEST_CHECK(p->BackendFd() >= 0);
  TEST_CHECK(std::strcmp(p->Name(), "io_uring") == 0);
  TEST_CHECK((fcntl(p->BackendFd(), F_GETFD) & FD_CLOEXEC) != 0);
  const ProactorFeatures* f = IoUringFeatures(p.get());
  TEST_CHECK(f != nullptr);
  // This machine's kernel (6.x) has everything the probe names.
  if (f != nullptr) {
    TEST_CHECK(f->multishot_accept);
    TEST_CHECK(f->cancel_fd_all);
    TEST_CHECK(f->poll_multishot);
  }
  TEST_CHECK(std::strcmp(AvailableProactors(), "io_uring") == 0);
  TEST_CHECK_EQ(p->Pending(), 0);
}

void TestRefusal() {
  TEST_CHECK_EQ(IoUringRefusal(ENOSYS),
                 std::string("io_uring not supported by this kernel"));
  std::string eperm = IoUringRefusal(EPERM);
  TEST_CHECK(eperm.find("io_uring denied (seccomp or "
                         "kernel.io_uring_disabled=") == 0);
  TEST_CHECK(eperm.find("/proc/sys/kernel/io_uring_disabled") !=
              std::string::npos);
  // The test hook makes the kernel "refuse" through the real path.
  std::unique_ptr<Proactor> p;
  std::string why;
  setenv("AIONODE_TEST_IO_URING", "enosys", 1);
  TEST_CHECK_EQ(CreateIoUringProactor(8, &p, &why), -ENOSYS);
  TEST_CHECK_EQ(why, IoUringRefusal(ENOSYS));
  setenv("AIONODE_TEST_IO_URING", "eperm", 1);
  TEST_CHECK_EQ(CreateIoUringProactor(8, &p, &why), -EPERM);
  TEST_CHECK(why.find("io_uring denied") == 0);
  setenv("AIONODE_TEST_IO_URING", "noop:27", 1);  // IORING_OP_RECV
  TEST_CHECK_EQ(CreateIoUringProactor(8, &p, &why), -EOPNOTSUPP);
  TEST_CHECK(why.find("IORING_OP_RECV") != std::string::npos);
  unsetenv("AIONODE_TEST_IO_URING");
  TEST_CHECK(!p);
  TEST_CHECK_EQ(CreateIoUringProactor(8, &p, &why), 0);
}

void TestRecvSend() {
  auto p = Make();
  Pair sp;
  if (!p) return;
  char in[16] = {0};
  TEST_CHECK_EQ(p->SubmitRecv(1, sp.a, in, sizeof(in)), 0);
  TEST_CHECK_EQ(p->SubmitRecv(1, sp.a, in, sizeof(in)), -EEXIST);
  TEST_CHECK_EQ(p->SubmitRecv(-1, sp.a, in, sizeof(in)), -EINVAL);
  TEST_CHECK_EQ(p->Pending(), 1);
  TEST_CHECK_EQ(p->OpsOnFd(sp.a), 1);
  OpKind k;
  TEST_CHECK_EQ(p->KindOf(1, &k), 0);
  TEST_CHECK(k == OpKind::kRecv);
  const char msg[] = "hello";
  TEST_CHECK_EQ(p->SubmitSend(2, sp.b, msg, 5), 0);
  std::map<Token, std::vector<int32_t>> others;
  auto r = WaitFor(p.get(), 1, 1, &others);
  if (others[2].empty()) others[2] = WaitFor(p.get(), 2);
  TEST_CHECK(r.size() == 1 && r[0] == 5);
  TEST_CHECK(others[2].size() == 1 && others[2][0] == 5);
  TEST_CHECK(std::memcmp(in, "hello", 5) == 0);
  TEST_CHECK_EQ(p->Pending(), 0);
  TEST_CHECK_EQ(p->OpsOnFd(sp.a), 0);
  // Gathering send, then EOF.
  struct iovec iov[3] = {{const_cast<char*>("ab"), 2},
                         {const_cast<char*>(""), 0},
                         {const_cast<char*>("cde"), 3}};
  TEST_CHECK_EQ(p->SubmitSendMsg(3, sp.b, iov, 3, nullptr), 0);
  TEST_CHECK(WaitFor(p.get(), 3) == std::vector<int32_t>{5});
  char out[8] = {0};
  TEST_CHECK_EQ(recv(sp.a, out, sizeof(out), 0), 5);
  TEST_CHECK(std::memcmp(out, "abcde", 5) == 0);
  close(sp.b);
  sp.b = -1;
  TEST_CHECK_EQ(p->SubmitRecv(4, sp.a, in, sizeof(in)), 0);
  TEST_CHECK(WaitFor(p.get(), 4) == std::vector<int32_t>{0});
  // A bad fd is the op's completion, not the submit's error.
  TEST_CHECK_EQ(p->SubmitRecv(5, 100000, in, sizeof(in)), 0);
  TEST_CHECK(WaitFor(p.get(), 5) == std::vector<int32_t>{-EBADF});
}

void TestDatagram() {
  auto p = Make();
  if (!p) return;
  int rx = Socket(AF_INET, SOCK_DGRAM, 0), tx = Socket(AF_INET, SOCK_DGRAM, 0);
  Bind(rx, Loopback(0));
  Bind(tx, Loopback(0));
  SockAddr rxa, txa, got;
  GetSockName(rx, &rxa);
  GetSockName(tx, &txa);
  char in[32] = {0};
  TEST_CHECK_EQ(p->SubmitRecvFrom(1, rx, in, sizeof(in)), 0);
  struct iovec iov = {const_cast<char*>("datagram"), 8};
  TEST_CHECK_EQ(p->SubmitSendMsg(2, tx, &iov, 1, &rxa), 0);
  std::map<Token, std::vector<int32_t>> others;
  TEST_CHECK(WaitFor(p.get(), 1, 1, &others) == std::vector<int32_t>{8});
  TEST_CHECK(std::memcmp(in, "datagram", 8) == 0);
  TEST_CHECK_EQ(p->Address(1, &got), 0);
  TEST_CHECK_EQ(got.len, txa.len);
  TEST_CHECK(std::memcmp(&got.storage, &txa.storage, txa.len) == 0);
  p->BeginBatch();  // a new batch: the address is gone
  TEST_CHECK_EQ(p->Address(1, &got), -ENOENT);
  close(rx);
  close(tx);
}

void TestAcceptConnect() {
  auto p = Make();
  if (!p) return;
  SockAddr la;
  int l = Listener(&la);
  int c = Socket(AF_INET, SOCK_STREAM, 0);
  TEST_CHECK_EQ(p->SubmitAccept(1, l), 0);
  TEST_CHECK_EQ(p->SubmitConnect(2, c, la), 0);
  std::map<Token, std::vector<int32_t>> others;
  auto r = WaitFor(p.get(), 1, 1, &others);
  if (others[2].empty()) others[2] = WaitFor(p.get(), 2);
  TEST_CHECK(others[2] == std::vector<int32_t>{0});
  int fd = r.empty() ? -1 : r[0];
  TEST_CHECK(fd >= 0);
  if (fd >= 0) {
    TEST_CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    TEST_CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    SockAddr peer, mine;
    TEST_CHECK_EQ(p->Address(1, &peer), 0);
    GetSockName(c, &mine);
    TEST_CHECK_EQ(peer.len, mine.len);
    TEST_CHECK(std::memcmp(&peer.storage, &mine.storage, mine.len) == 0);
    close(fd);
  }
  close(c);
  // Refused.
  close(l);
  c = Socket(AF_INET, SOCK_STREAM, 0);
  TEST_CHECK_EQ(p->SubmitConnect(3, c, la), 0);
  TEST_CHECK(WaitFor(p.get(), 3) == std::vector<int32_t>{-ECONNREFUSED});
  close(c);
}

void TestAcceptMany() {
  auto p = Make();
  if (!p) return;
  SockAddr la;
  int l = Listener(&la);
  TEST_CHECK_EQ(p->SubmitAcceptMany(9, l), 0);
  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) {
    int c = Socket(AF_INET, SOCK_STREAM, 0);
    Connect(c, la);
    clients.push_back(c);
  }
  auto fds = WaitFor(p.get(), 9, 5);
  TEST_CHECK_EQ(fds.size(), 5u);
  for (int32_t fd : fds) {
    TEST_CHECK(fd >= 0);
    if (fd >= 0) close(fd);
  }
  TEST_CHECK_EQ(p->Pending(), 1);  // still live after five
  TEST_CHECK_EQ(p->Cancel(9), 0);
  TEST_CHECK(WaitFor(p.get(), 9) == std::vector<int32_t>{-ECANCELED});
  TEST_CHECK_EQ(p->Cancel(9), -ENOENT);
  TEST_CHECK_EQ(p->Pending(), 0);
  for (int c : clients) close(c);
  close(l);
}

void TestPoll() {
  auto p = Make();
  Pair sp;
  if (!p) return;
  TEST_CHECK_EQ(p->SubmitPoll(1, sp.a, kWritable), 0);
  TEST_CHECK(WaitFor(p.get(), 1) == std::vector<int32_t>{kWritable});
  TEST_CHECK_EQ(p->SubmitPoll(2, sp.a, kReadable), 0);
  int32_t buf[4];
  EventBuffer eb{buf, 2};
  TEST_CHECK_EQ(p->Wait(&eb, 20 * kMs), 0);  // nothing to read yet
  TEST_CHECK_EQ(write(sp.b, "x", 1), 1);
  TEST_CHECK(WaitFor(p.get(), 2) == std::vector<int32_t>{kReadable});
  TEST_CHECK_EQ(p->SubmitPoll(3, sp.a, 0), -EINVAL);
  close(sp.b);
  sp.b = -1;
  char c;
  TEST_CHECK_EQ(read(sp.a, &c, 1), 1);
  // Hang-up: every requested direction.
  TEST_CHECK_EQ(p->SubmitPoll(4, sp.a, kReadable | kWritable), 0);
  TEST_CHECK(WaitFor(p.get(), 4) ==
              std::vector<int32_t>{kReadable | kWritable});
}

void TestCancel() {
  auto p = Make();
  Pair sp;
  if (!p) return;
  char in[8];
  TEST_CHECK_EQ(p->Cancel(1), -ENOENT);
  TEST_CHECK_EQ(p->SubmitRecv(1, sp.a, in, sizeof(in)), 0);
  TEST_CHECK_EQ(p->Cancel(1), 0);
  TEST_CHECK(WaitFor(p.get(), 1) == std::vector<int32_t>{-ECANCELED});
  TEST_CHECK_EQ(p->Cancel(1), -ENOENT);  // after the end
  // Finished before the cancel could matter: -ENOENT too.
  TEST_CHECK_EQ(p->SubmitPoll(2, sp.a, kWritable), 0);
  TEST_CHECK(WaitFor(p.get(), 2) == std::vector<int32_t>{kWritable});
  TEST_CHECK_EQ(p->Cancel(2), -ENOENT);
  // CancelFd: both ops on a, not the one on b.
  TEST_CHECK_EQ(p->SubmitRecv(3, sp.a, in, sizeof(in)), 0);
  TEST_CHECK_EQ(p->SubmitPoll(4, sp.a, kReadable), 0);
  TEST_CHECK_EQ(p->SubmitRecv(5, sp.b, in, sizeof(in)), 0);
  TEST_CHECK_EQ(p->CancelFd(sp.a), 2);
  std::map<Token, std::vector<int32_t>> others;
  TEST_CHECK(WaitFor(p.get(), 3, 1, &others) ==
              std::vector<int32_t>{-ECANCELED});
  if (others[4].empty()) others[4] = WaitFor(p.get(), 4);
  TEST_CHECK(others[4] == std::vector<int32_t>{-ECANCELED});
  TEST_CHECK_EQ(p->OpsOnFd(sp.a), 0);
  TEST_CHECK_EQ(p->OpsOnFd(sp.b), 1);
  TEST_CHECK_EQ(p->CancelFd(sp.a), 0);
}

void TestBatchedFlush() {
  // Auto-flush off: nothing reaches the kernel before Flush.
  auto p = Make();
  Pair sp;
  if (!p) return;
  p->SetAutoFlush(false);
  TEST_CHECK_EQ(p->SubmitPoll(1, sp.a, kWritable), 0);
  int32_t buf[4];
  EventBuffer eb{buf, 2};
  TEST_CHECK_EQ(p->Wait(&eb, 0), 0);
  struct pollfd pfd = {p->BackendFd(), POLLIN, 0};
  TEST_CHECK_EQ(poll(&pfd, 1, 20), 0);  // the ring fd is quiet
  TEST_CHECK_EQ(p->Flush(), 1);
  TEST_CHECK_EQ(poll(&pfd, 1, 2000), 1);  // readable: a CQE is there
  TEST_CHECK_EQ(p->Wait(&eb, 0), 1);
  TEST_CHECK(buf[0] == 1 && buf[1] == kWritable);
}

void TestFullQueueAndCapacity() {
  // 8 SQ slots, 40 submits: full queues flush inline; a 3-pair buffer
  // takes them over many Waits, none lost.
  auto p = Make(8);
  Pair sp;
  if (!p) return;
  p->SetAutoFlush(false);
  for (int i = 0; i < 40; ++i) {
    int rc = p->SubmitPoll(i, sp.a, kWritable);
    if (rc != 0) Fail("submit " + Str(i) + " = " + Str(rc));
  }
  p->Flush();
  std::vector<int> seen(40, 0);
  int32_t buf[6];
  EventBuffer eb{buf, 3};
  int total = 0;
  const int64_t end = MonotonicNs() + 2000 * kMs;
  while (total < 40 && MonotonicNs() < end) {
    int n = p->Wait(&eb, 100 * kMs);
    TEST_CHECK(n >= 0 && n <= 3);
    for (int i = 0; i < n; ++i) {
      if (buf[2 * i] >= 0 && buf[2 * i] < 40) seen[buf[2 * i]]++;
      total++;
    }
  }
  TEST_CHECK_EQ(total, 40);
  for (int i = 0; i < 40; ++i) TEST_CHECK_EQ(seen[i], 1);
}

void TestDrain() {
  auto p = Make();
  Pair sp;
  if (!p) return;
  SockAddr la;
  int l = Listener(&la);
  std::vector<char> bufs(4 * 4096);
  for (int i = 0; i < 4; ++i) {
    TEST_CHECK_EQ(p->SubmitRecv(i, i % 2 ? sp.a : sp.b, &bufs[i * 4096], 4096), 0);
  }
  TEST_CHECK_EQ(p->SubmitAcceptMany(10, l), 0);
  TEST_CHECK_EQ(p->ArmTimer(MonotonicNs() + 3600 * 1000 * kMs), 0);
  TEST_CHECK_EQ(p->Pending(), 5);
  const int64_t t0 = MonotonicNs();
  TEST_CHECK_EQ(p->Drain(2000 * kMs), 0);
  TEST_CHECK(MonotonicNs() - t0 < 1000 * kMs);
  TEST_CHECK_EQ(p->Pending(), 0);
  char in[4];
  TEST_CHECK_EQ(p->SubmitRecv(20, sp.a, in, 4), -EBADF);
  int32_t buf[4];
  EventBuffer eb{buf, 2};
  TEST_CHECK_EQ(p->Wait(&eb, 0), 0);
  // The kernel no longer writes there: data sent now stays in the socket.
  TEST_CHECK_EQ(write(sp.b, "z", 1), 1);
  char c;
  TEST_CHECK_EQ(read(sp.a, &c, 1), 1);
  close(l);
}

void TestProactorTimer() {
  auto p = Make();
  if (!p) return;
  int32_t buf[8];
  EventBuffer eb{buf, 4};
  for (int64_t when : {int64_t{0}, int64_t{-5}, MonotonicNs() - 1000 * kMs,
                       MonotonicNs() + 20 * kMs}) {
    const int64_t t0 = MonotonicNs();
    TEST_CHECK_EQ(p->ArmTimer(when), 0);
    int n = p->Wait(&eb, 2000 * kMs);
    TEST_CHECK_EQ(n, 1);
    TEST_CHECK(n == 1 && buf[0] == kTimerToken);
    if (when > t0) TEST_CHECK(MonotonicNs() >= when);
    // Consumed inside Wait: no second report.
    TEST_CHECK_EQ(p->Wait(&eb, 0), 0);
  }
  // Disarmed: nothing.
  TEST_CHECK_EQ(p->ArmTimer(MonotonicNs() + 10 * kMs), 0);
  TEST_CHECK_EQ(p->ArmTimer(INT64_MAX), 0);
  TEST_CHECK_EQ(p->Wait(&eb, 40 * kMs), 0);
  // Moved earlier.
  TEST_CHECK_EQ(p->ArmTimer(MonotonicNs() + 3600 * 1000 * kMs), 0);
  TEST_CHECK_EQ(p->ArmTimer(MonotonicNs() + 5 * kMs), 0);
  TEST_CHECK_EQ(p->Wait(&eb, 2000 * kMs), 1);
}

void TestProactorWakeup() {
  auto p = Make();
  if (!p) return;
  int32_t buf[4];
  EventBuffer eb{buf, 2};
  const int64_t t0 = MonotonicNs();
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p->Wakeup();
  });
  TEST_CHECK_EQ(p->Wait(&eb, 3000 * kMs), 0);
  t.join();
  TEST_CHECK(MonotonicNs() - t0 < 1500 * kMs);
  // Timeout with nothing: returns 0 after the time.
  const int64_t t1 = MonotonicNs();
  TEST_CHECK_EQ(p->Wait(&eb, 30 * kMs), 0);
  TEST_CHECK(MonotonicNs() - t1 >= 30 * kMs);
}

void TestSelectorTimer(const std::string& name) {
  std::unique_ptr<Selector> sel;
  if (CreateSelector(name.c_str(), &sel) < 0) {
    Fail("CreateSelector " + name);
    return;
  }
  int32_t buf[8];
  EventBuffer eb{buf, 4};
  const int size0 = sel->Size();
  for (int64_t when : {int64_t{0}, int64_t{-1}, MonotonicNs() - 1000 * kMs,
                       MonotonicNs() + 10 * kMs}) {
    TEST_CHECK_EQ(sel->ArmTimer(when), 0);
    int n = sel->Wait(&eb, 2000 * kMs);
    TEST_CHECK(n == 1 && buf[0] == kTimerToken);
    TEST_CHECK_EQ(sel->Wait(&eb, 0), 0);  // drained inside Wait
  }
  TEST_CHECK(sel->HasTimer());
  TEST_CHECK_EQ(sel->Size(), size0 + 1);
  TEST_CHECK_EQ(sel->ArmTimer(MonotonicNs() + 5 * kMs), 0);
  TEST_CHECK_EQ(sel->ArmTimer(INT64_MAX), 0);
  TEST_CHECK_EQ(sel->Wait(&eb, 30 * kMs), 0);
  sel->DropTimer();
  TEST_CHECK(!sel->HasTimer());
  TEST_CHECK_EQ(sel->Size(), size0);
}

// ---- recv-many over a provided-buffer pool ------------------------------------

// A pool of `count` buffers of `size` bytes, page-backed like the JS one.
struct Pool {
  std::vector<char> mem;
  uint32_t size, count;
  Pool(uint32_t sz, uint32_t n) : mem(size_t{sz} * n), size(sz), count(n) {}
  std::string Chunk(int32_t v) const {
    return std::string(mem.data() + size_t{RecvChunkBid(v)} * size,
                       RecvChunkLen(v));
  }
};

bool HasRecvMany(Proactor* p) {
  const ProactorFeatures* f = IoUringFeatures(p);
  return f != nullptr && f->multishot_recv && f->provided_buffer_ring;
}

// One Wait pass as the host runs it: BeginBatch, then Wait, pairs of
// `token` appended to `got` (the chunks read out before the next pass).
void Pass(Proactor* p, Token token, Pool* pool, std::vector<int32_t>* got,
          std::string* bytes, int64_t timeout_ns = 100 * kMs,
          int cap = 16) {
  p->BeginBatch();
  int32_t buf[2 * 64];
  EventBuffer eb{buf, cap};
  int n = p->Wait(&eb, timeout_ns);
  if (n < 0) Fail("Wait = " + Str(n));
  for (int i = 0; i < n; ++i) {
    if (buf[2 * i] != token) continue;
    got->push_back(buf[2 * i + 1]);
    if (buf[2 * i + 1] > 0) *bytes += pool->Chunk(buf[2 * i + 1]);
  }
}

void TestRecvManyPoolArgs() {
  auto p = Make();
  if (!p || !HasRecvMany(p.get())) return;
  Pair sp;
  Pool pool(64, 4);
  TEST_CHECK_EQ(p->SubmitRecvMany(1, sp.a), -EOPNOTSUPP);  // no pool yet
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), 64, 3), -EINVAL);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), 0, 4), -EINVAL);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), kRecvPoolMaxSize + 1, 4),
                -EINVAL);
  TEST_CHECK_EQ(p->SetBufferPool(nullptr, 64, 4), -EINVAL);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), 64, 4), 0);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), 64, 4), -EEXIST);
  TEST_CHECK_EQ(p->SubmitRecvMany(1, sp.a), 0);
  TEST_CHECK_EQ(p->SubmitRecvMany(1, sp.a), -EEXIST);
  OpKind k;
  TEST_CHECK_EQ(p->KindOf(1, &k), 0);
  TEST_CHECK(k == OpKind::kRecvMany);
  // The packing keeps the sign bit clear at the extremes.
  TEST_CHECK(PackRecvChunk(kRecvPoolMaxCount - 1, kRecvPoolMaxSize) > 0);
  TEST_CHECK_EQ(RecvChunkBid(PackRecvChunk(77, 1234)), 77u);
  TEST_CHECK_EQ(RecvChunkLen(PackRecvChunk(77, 1234)), 1234u);
  TEST_CHECK_EQ(p->Drain(2000 * kMs), 0);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), 64, 4), -EBADF);
}

// One submission, one completion per chunk, buffers reused across passes,
// EOF as the final result.
void TestRecvManyChunks() {
  auto p = Make();
  if (!p || !HasRecvMany(p.get())) return;
  Pair sp;
  Pool pool(64, 4);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), pool.size, pool.count), 0);
  TEST_CHECK_EQ(p->SubmitRecvMany(7, sp.a), 0);
  std::vector<int32_t> got;
  std::string bytes, sent;
  // Ten separate writes, each read before the next: more chunks than the
  // pool has buffers, so buffers must come back (BeginBatch) to go on.
  for (int i = 0; i < 10; ++i) {
    std::string msg = "chunk" + std::to_string(i) + ";";
    sent += msg;
    TEST_CHECK_EQ(write(sp.b, msg.data(), msg.size()),
                  static_cast<ssize_t>(msg.size()));
    const int64_t end = MonotonicNs() + 2000 * kMs;
    while (bytes.size() < sent.size() && MonotonicNs() < end) {
      Pass(p.get(), 7, &pool, &got, &bytes);
    }
  }
  TEST_CHECK_EQ(bytes, sent);
  TEST_CHECK(got.size() >= 10);
  for (int32_t v : got) TEST_CHECK(v > 0 && RecvChunkBid(v) < pool.count);
  TEST_CHECK_EQ(p->Pending(), 1);  // still armed: one submission for all
  shutdown(sp.b, SHUT_WR);
  const int64_t end = MonotonicNs() + 2000 * kMs;
  while (p->Pending() > 0 && MonotonicNs() < end) {
    Pass(p.get(), 7, &pool, &got, &bytes);
  }
  TEST_CHECK_EQ(got.back(), 0);  // EOF ends it
  TEST_CHECK_EQ(p->Pending(), 0);
  TEST_CHECK_EQ(p->OpsOnFd(sp.a), 0);
}

// A dry pool: the op parks (no completion, still pending) until the
// buffers of the chunks already reported come back, then goes on; no byte
// lost or reordered.
void TestRecvManyNoBufs() {
  auto p = Make();
  if (!p || !HasRecvMany(p.get())) return;
  Pair sp;
  Pool pool(8, 2);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), pool.size, pool.count), 0);
  TEST_CHECK_EQ(p->SubmitRecvMany(3, sp.a), 0);
  std::string sent;
  for (int i = 0; i < 100; ++i) sent += static_cast<char>('a' + i % 26);
  TEST_CHECK_EQ(write(sp.b, sent.data(), sent.size()), 100);
  std::vector<int32_t> got;
  std::string bytes;
  // The first pass takes at most the pool's two buffers' worth.
  Pass(p.get(), 3, &pool, &got, &bytes);
  TEST_CHECK(bytes.size() <= 16);
  TEST_CHECK_EQ(p->Pending(), 1);
  const int64_t end = MonotonicNs() + 2000 * kMs;
  while (bytes.size() < sent.size() && MonotonicNs() < end) {
    Pass(p.get(), 3, &pool, &got, &bytes, 20 * kMs);
  }
  TEST_CHECK_EQ(bytes, sent);
  for (int32_t v : got) TEST_CHECK(v > 0);  // ENOBUFS never reported
  TEST_CHECK_EQ(p->Pending(), 1);
  // Cancel while armed in the kernel: -ECANCELED ends it.
  TEST_CHECK_EQ(p->Cancel(3), 0);
  const int64_t end2 = MonotonicNs() + 2000 * kMs;
  while (p->Pending() > 0 && MonotonicNs() < end2) {
    Pass(p.get(), 3, &pool, &got, &bytes);
  }
  TEST_CHECK_EQ(got.back(), -ECANCELED);
  TEST_CHECK_EQ(p->Cancel(3), -ENOENT);
}

// Parked ops (pool dry, buffers not yet given back) end at once on
// Cancel and CancelFd, and Drain ends them too.
void TestRecvManyParkedCancel() {
  auto p = Make();
  if (!p || !HasRecvMany(p.get())) return;
  Pair s1, s2, s3;
  Pool pool(4, 1);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), pool.size, pool.count), 0);
  TEST_CHECK_EQ(p->SubmitRecvMany(1, s1.a), 0);
  TEST_CHECK_EQ(p->SubmitRecvMany(2, s2.a), 0);
  TEST_CHECK_EQ(p->SubmitRecvMany(3, s3.a), 0);
  TEST_CHECK_EQ(write(s1.b, "xxxx", 4), 4);
  TEST_CHECK_EQ(write(s2.b, "yyyy", 4), 4);
  TEST_CHECK_EQ(write(s3.b, "zzzz", 4), 4);
  // Wait without BeginBatch: the one buffer is taken and never given back,
  // so two of the three park.
  int32_t buf[2 * 16];
  EventBuffer eb{buf, 16};
  int chunks = 0;
  const int64_t end = MonotonicNs() + 300 * kMs;
  while (MonotonicNs() < end) {
    int n = p->Wait(&eb, 20 * kMs);
    for (int i = 0; i < n; ++i) {
      if (buf[2 * i + 1] > 0) ++chunks;
    }
  }
  TEST_CHECK_EQ(chunks, 1);
  TEST_CHECK_EQ(p->Pending(), 3);
  TEST_CHECK(p->HasBuffered());  // a parked op and a buffer to give back
  // Cancel every one: the parked ones at once, the armed one by the kernel.
  TEST_CHECK_EQ(p->Cancel(1), 0);
  TEST_CHECK_EQ(p->CancelFd(s2.a), 1);
  TEST_CHECK_EQ(p->CancelFd(s3.a), 1);
  std::map<Token, std::vector<int32_t>> results;
  const int64_t end2 = MonotonicNs() + 2000 * kMs;
  while (p->Pending() > 0 && MonotonicNs() < end2) {
    int n = p->Wait(&eb, 20 * kMs);
    for (int i = 0; i < n; ++i) results[buf[2 * i]].push_back(buf[2 * i + 1]);
  }
  TEST_CHECK_EQ(p->Pending(), 0);
  for (Token t : {1, 2, 3}) {
    TEST_CHECK(!results[t].empty() && results[t].back() == -ECANCELED);
  }
  // A parked op at Drain: ended without waiting on the kernel.
  auto q = Make();
  Pair s4;
  Pool pool2(4, 1);
  TEST_CHECK_EQ(q->SetBufferPool(pool2.mem.data(), 4, 1), 0);
  TEST_CHECK_EQ(q->SubmitRecvMany(1, s4.a), 0);
  TEST_CHECK_EQ(write(s4.b, "123456789", 9), 9);
  const int64_t end3 = MonotonicNs() + 300 * kMs;
  while (MonotonicNs() < end3) q->Wait(&eb, 20 * kMs);
  TEST_CHECK_EQ(q->Pending(), 1);
  const int64_t t0 = MonotonicNs();
  TEST_CHECK_EQ(q->Drain(2000 * kMs), 0);
  TEST_CHECK(MonotonicNs() - t0 < 1000 * kMs);
  TEST_CHECK_EQ(q->Pending(), 0);
}

// The probe decides: without multishot recv (the nomultirecv hook, or an
// old kernel) there is no pool and no recv-many; plain recv still works.
void TestRecvManyRefused() {
  auto p = Make();
  if (!p) return;
  const ProactorFeatures* f = IoUringFeatures(p.get());
  TEST_CHECK(f != nullptr && !f->multishot_recv && !f->provided_buffer_ring);
  Pair sp;
  Pool pool(64, 4);
  TEST_CHECK_EQ(p->SetBufferPool(pool.mem.data(), 64, 4), -EOPNOTSUPP);
  TEST_CHECK_EQ(p->SubmitRecvMany(1, sp.a), -EOPNOTSUPP);
  TEST_CHECK_EQ(p->Pending(), 0);
  char in[8];
  TEST_CHECK_EQ(p->SubmitRecv(2, sp.a, in, sizeof(in)), 0);
  TEST_CHECK_EQ(write(sp.b, "ok", 2), 2);
  TEST_CHECK(WaitFor(p.get(), 2) == std::vector<int32_t>{2});
}

}  // namespace

void RunIoUringTests(void (*run)(const std::string&,
                                 const std::function<void()>&),
                     void (*fail)(const std::string&)) {
  test::g_fail = fail;
  std::string list = AvailableSelectors();
  size_t start = 0;
  while (start < list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string name = list.substr(start, comma - start);
    run(name + ": ArmTimer (zero, past, future, disarm) consumed in Wait",
        [name] { TestSelectorTimer(name); });
    start = comma + 1;
  }
#if !defined(AIO_HAVE_IO_URING)
  std::printf("# no io_uring in this build: proactor tests skipped\n");
  return;
#endif
  if (std::strcmp(AvailableProactors(), "io_uring") != 0) {
    std::printf("# io_uring refused here: proactor tests skipped\n");
    return;
  }
  run("io_uring: probe and features", TestProbe);
  run("io_uring: refusal (ENOSYS, EPERM, missing opcode)", TestRefusal);
  run("io_uring: recv, send, sendmsg, EOF, bad fd", TestRecvSend);
  run("io_uring: recvfrom / sendto with the sender's address", TestDatagram);
  run("io_uring: accept and connect on loopback, refused", TestAcceptConnect);
  run("io_uring: accept-many until cancel", TestAcceptMany);
  run("io_uring: poll op (read, write, hang-up)", TestPoll);
  run("io_uring: cancel, cancel after the end, CancelFd", TestCancel);
  run("io_uring: submissions wait for Flush", TestBatchedFlush);
  run("io_uring: full SQ flushed inline, capacity-limited Waits",
      TestFullQueueAndCapacity);
  run("io_uring: Drain with ops in flight", TestDrain);
  run("io_uring: ArmTimer (zero, past, future, disarm, moved)",
      TestProactorTimer);
  run("io_uring: Wakeup from another thread, timeout", TestProactorWakeup);
  run("io_uring: recv-many pool arguments and packing", TestRecvManyPoolArgs);
  run("io_uring: recv-many, one completion per chunk, EOF",
      TestRecvManyChunks);
  run("io_uring: recv-many parks on a dry pool, resumes, cancel",
      TestRecvManyNoBufs);
  run("io_uring: recv-many parked: Cancel, CancelFd, Drain",
      TestRecvManyParkedCancel);
  // The same ops as a 5.10-era kernel would run them: single accepts
  // re-submitted, one-shot polls re-armed, cancels one token at a time.
  const char* env = std::getenv("AIONODE_TEST_IO_URING");
  const bool had = env != nullptr;
  const std::string saved = had ? env : "";  // setenv may free env's copy
  setenv("AIONODE_TEST_IO_URING", "old", 1);
  run("io_uring (old kernel): features off", [] {
    auto p = Make();
    const ProactorFeatures* f = p ? IoUringFeatures(p.get()) : nullptr;
    TEST_CHECK(f != nullptr && !f->multishot_accept && !f->poll_multishot &&
                !f->cancel_fd_all && !f->cancel_any && !f->ext_arg);
  });
  run("io_uring (old kernel): accept-many by single accepts", TestAcceptMany);
  run("io_uring (old kernel): cancel, CancelFd per token", TestCancel);
  run("io_uring (old kernel): Drain", TestDrain);
  run("io_uring (old kernel): ArmTimer, one-shot poll re-armed",
      TestProactorTimer);
  run("io_uring (old kernel): Wakeup", TestProactorWakeup);
  run("io_uring (old kernel): no recv-many, plain recv", TestRecvManyRefused);
  setenv("AIONODE_TEST_IO_URING", "nomultirecv", 1);
  run("io_uring (nomultirecv hook): no recv-many, plain recv",
      TestRecvManyRefused);
  if (had) {
    setenv("AIONODE_TEST_IO_URING", saved.c_str(), 1);
  } else {
    unsetenv("AIONODE_TEST_IO_URING");
  }
}

}  // namespace aionode
