// Tests of socket_ops (core, no Node): every call's success and -errno
// paths, EAGAIN as a return, NONBLOCK / CLOEXEC on every fd, no SIGPIPE,
// address parse / format round trips. Loopback only; each test is bounded
// by short poll(2) timeouts. Runs inside core_test.cc's harness (its Run /
// Fail), so the binary's single "core: N passed, M failed" line counts these.
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "../socket_ops.h"
#include "check.h"

namespace aionode {

void RunSocketTests(void (*run)(const std::string&,
                                const std::function<void()>&),
                    void (*fail)(const std::string&));

namespace {

using test::Fail;
using test::Str;

// ---- helpers ----------------------------------------------------------------------

// Closes the fds it holds at scope exit.
struct Fds {
  std::vector<int> fds;
  ~Fds() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
  int Add(int fd) {
    if (fd >= 0) fds.push_back(fd);
    return fd;
  }
  void Close(int fd) {
    for (int& f : fds) {
      if (f == fd) {
        close(f);
        f = -1;
      }
    }
  }
};

bool IsNonblockCloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  int fdfl = fcntl(fd, F_GETFD);
  return fl >= 0 && fdfl >= 0 && (fl & O_NONBLOCK) && (fdfl & FD_CLOEXEC);
}

// Waits up to 2 s for `events` on fd.
bool WaitFor(int fd, short events) {
  struct pollfd p = {fd, events, 0};
  return poll(&p, 1, 2000) == 1 && (p.revents & (events | POLLERR | POLLHUP));
}

SockAddr Inet(const char* host, int port) {
  SockAddr a;
  int rc = MakeInetAddress(AF_UNSPEC, host, port, 0, 0, &a);
  if (rc != 0) Fail(std::string("MakeInetAddress(") + host + ") = " + Str(rc));
  return a;
}

int PortOf(int fd) {
  SockAddr a;
  AddressText t;
  if (GetSockName(fd, &a) != 0 || FormatAddress(a, &t) != 0) return -1;
  return t.port;
}

AddressText Text(const SockAddr& a) {
  AddressText t;
  int rc = FormatAddress(a, &t);
  if (rc != 0) Fail("FormatAddress = " + Str(rc));
  return t;
}

bool HaveIpv6Loopback() {
  int fd = Socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  SockAddr a = Inet("::1", 0);
  bool ok = Bind(fd, a) == 0;
  close(fd);
  return ok;
}

// A listening TCP socket on host:0, or -1.
int TcpListener(const char* host) {
  int family = std::strchr(host, ':') != nullptr ? AF_INET6 : AF_INET;
  int fd = Socket(family, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (Bind(fd, Inet(host, 0)) != 0 || Listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A connected (client, server) TCP pair through `listener`.
bool TcpPair(int listener, const char* host, Fds* fds, int* client,
             int* server) {
  int family = std::strchr(host, ':') != nullptr ? AF_INET6 : AF_INET;
  *client = fds->Add(Socket(family, SOCK_STREAM, 0));
  if (*client < 0) return false;
  int rc = Connect(*client, Inet(host, PortOf(listener)));
  if (rc != 0 && rc != -EINPROGRESS) return false;
  if (!WaitFor(listener, POLLIN)) return false;
  *server = fds->Add(Accept4(listener, nullptr, nullptr));
  return *server >= 0 && WaitFor(*client, POLLOUT);
}

std::string TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") +
                     "/aionode-sock-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) return std::string();
  return std::string(buf.data());
}

// ---- socket() -----------------------------------------------------------------------

void TestSocketFlags() {
  Fds fds;
  for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      int fd = Socket(family, type, 0);
      if (family == AF_INET6 && fd == -EAFNOSUPPORT) continue;  // no IPv6
      TEST_CHECK(fd >= 0);
      if (fd < 0) continue;
      fds.Add(fd);
      TEST_CHECK(IsNonblockCloexec(fd));
      int got_type = 0;
      TEST_CHECK_EQ(GetSockOptInt(fd, SOL_SOCKET, SO_TYPE, &got_type), 0);
      TEST_CHECK_EQ(got_type, type);
    }
  }
  TEST_CHECK_EQ(Socket(AF_APPLETALK, SOCK_STREAM, 0), -EAFNOSUPPORT);
  TEST_CHECK_EQ(Socket(AF_INET, SOCK_RAW, 0), -EINVAL);
  TEST_CHECK_EQ(Socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), -EPROTONOSUPPORT);
  int pair[2];
  TEST_CHECK_EQ(SocketPair(SOCK_STREAM, pair), 0);
  fds.Add(pair[0]);
  fds.Add(pair[1]);
  TEST_CHECK(IsNonblockCloexec(pair[0]) && IsNonblockCloexec(pair[1]));
  TEST_CHECK_EQ(SocketPair(SOCK_RAW, pair), -EINVAL);
}

// ---- addresses ------------------------------------------------------------------------

void TestInetAddresses() {
  SockAddr a;
  AddressText t;
  // IPv4 round trip.
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "127.0.0.1", 8080, 0, 0, &a), 0);
  TEST_CHECK_EQ(a.family(), AF_INET);
  TEST_CHECK_EQ(a.len, static_cast<socklen_t>(sizeof(sockaddr_in)));
  t = Text(a);
  TEST_CHECK_EQ(t.family, AF_INET);
  TEST_CHECK_EQ(std::string(t.host), "127.0.0.1");
  TEST_CHECK_EQ(t.host_len, size_t{9});
  TEST_CHECK_EQ(t.port, 8080);
  TEST_CHECK_EQ(MakeInetAddress(AF_INET, "0.0.0.0", 0, 0, 0, &a), 0);
  TEST_CHECK_EQ(std::string(Text(a).host), "0.0.0.0");
  TEST_CHECK_EQ(MakeInetAddress(AF_INET, "255.255.255.255", 65535, 0, 0, &a),
                0);
  TEST_CHECK_EQ(Text(a).port, 65535);

  // IPv6 round trips, canonical text out.
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "::1", 443, 0, 0, &a), 0);
  TEST_CHECK_EQ(a.family(), AF_INET6);
  t = Text(a);
  TEST_CHECK_EQ(std::string(t.host), "::1");
  TEST_CHECK_EQ(t.port, 443);
  TEST_CHECK_EQ(t.flowinfo, 0u);
  TEST_CHECK_EQ(t.scope_id, 0u);
  TEST_CHECK_EQ(
      MakeInetAddress(AF_INET6, "2001:DB8:0:0:0:0:0:1", 1, 0x12345, 7, &a), 0);
  t = Text(a);
  TEST_CHECK_EQ(std::string(t.host), "2001:db8::1");
  TEST_CHECK_EQ(t.flowinfo, 0x12345u);
  TEST_CHECK_EQ(t.scope_id, 7u);
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "::ffff:10.0.0.1", 2, 0, 0, &a), 0);
  TEST_CHECK_EQ(std::string(Text(a).host), "::ffff:10.0.0.1");
  // Scope ids: numeric, by interface name, agreeing with the argument.
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "fe80::1%3", 0, 0, 0, &a), 0);
  TEST_CHECK_EQ(Text(a).scope_id, 3u);
  TEST_CHECK_EQ(std::string(Text(a).host), "fe80::1");
  unsigned lo = if_nametoindex("lo");
  if (lo != 0) {
    TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "fe80::1%lo", 0, 0, 0, &a), 0);
    TEST_CHECK_EQ(Text(a).scope_id, lo);
  }
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "fe80::1%3", 0, 0, 3, &a), 0);
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "fe80::1%3", 0, 0, 4, &a), -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "fe80::1%no-such-if9", 0, 0, 0, &a),
                -ENXIO);
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "fe80::1%", 0, 0, 0, &a), -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "fe80::1%3x", 0, 0, 0, &a),
                -EINVAL);

  // Bad input: no DNS, strict numeric text, port range, family mismatch.
  for (const char* bad : {"localhost", "example.com", "", "1.2.3", "1.2.3.4.5",
                          "256.0.0.1", " 127.0.0.1", "127.0.0.1 ", ":::",
                          "1::2::3", "[::1]", "%3"}) {
    int rc = MakeInetAddress(AF_UNSPEC, bad, 80, 0, 0, &a);
    if (rc != -EINVAL) Fail(std::string("\"") + bad + "\" gave " + Str(rc));
  }
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, nullptr, 80, 0, 0, &a), -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "127.0.0.1", -1, 0, 0, &a), -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_UNSPEC, "127.0.0.1", 65536, 0, 0, &a),
                -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_INET, "127.0.0.1", 1, 1, 0, &a), -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_INET, "127.0.0.1", 1, 0, 1, &a), -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_INET6, "127.0.0.1", 1, 0, 0, &a), -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_INET, "::1", 1, 0, 0, &a), -EINVAL);
  TEST_CHECK_EQ(MakeInetAddress(AF_UNIX, "::1", 1, 0, 0, &a), -EINVAL);
  std::string long_host(INET6_ADDRSTRLEN + 10, '1');
  TEST_CHECK_EQ(MakeInetAddress(AF_INET6, long_host.c_str(), 1, 0, 0, &a),
                -EINVAL);
}

void TestUnixAddresses() {
  SockAddr a;
  AddressText t;
  const size_t max = sizeof(sockaddr_un::sun_path);
  TEST_CHECK_EQ(MakeUnixAddress("/tmp/x.sock", 11, &a), 0);
  TEST_CHECK_EQ(a.family(), AF_UNIX);
  t = Text(a);
  TEST_CHECK_EQ(t.family, AF_UNIX);
  TEST_CHECK_EQ(std::string(t.host, t.host_len), "/tmp/x.sock");
  // Abstract names keep every byte, including the leading NUL.
  const char abs[] = "\0aionode-abs";
  TEST_CHECK_EQ(MakeUnixAddress(abs, sizeof(abs) - 1, &a), 0);
  TEST_CHECK_EQ(a.len, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                              sizeof(abs) - 1));
  t = Text(a);
  TEST_CHECK_EQ(std::string(t.host, t.host_len),
                std::string(abs, sizeof(abs) - 1));
  // Empty: the unnamed address.
  TEST_CHECK_EQ(MakeUnixAddress("", 0, &a), 0);
  TEST_CHECK_EQ(a.len, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path)));
  t = Text(a);
  TEST_CHECK_EQ(t.family, AF_UNIX);
  TEST_CHECK_EQ(t.host_len, size_t{0});
  // Limits: a filesystem path needs room for its NUL, an abstract name not.
  std::string path(max - 1, 'p');
  TEST_CHECK_EQ(MakeUnixAddress(path.data(), path.size(), &a), 0);
  TEST_CHECK_EQ(Text(a).host_len, max - 1);
  path.push_back('p');
  TEST_CHECK_EQ(MakeUnixAddress(path.data(), path.size(), &a), -ENAMETOOLONG);
  TEST_CHECK_EQ(a.len, socklen_t{0});
  std::string abs_max(max, 'a');
  abs_max[0] = '\0';
  TEST_CHECK_EQ(MakeUnixAddress(abs_max.data(), abs_max.size(), &a), 0);
  TEST_CHECK_EQ(Text(a).host_len, max);
  abs_max.push_back('a');
  TEST_CHECK_EQ(MakeUnixAddress(abs_max.data(), abs_max.size(), &a),
                -ENAMETOOLONG);
  std::string huge(4096, 'h');
  TEST_CHECK_EQ(MakeUnixAddress(huge.data(), huge.size(), &a), -ENAMETOOLONG);
  // Issue 8 item 12: a NUL inside a filesystem path is refused (the kernel
  // would stop at it); inside an abstract name it is just a byte.
  const char nul[] = "dir/sock\0evil";
  TEST_CHECK_EQ(MakeUnixAddress(nul, sizeof(nul) - 1, &a), -EINVAL);
  TEST_CHECK_EQ(a.len, socklen_t{0});
  const char trailing[] = "dir/sock\0";
  TEST_CHECK_EQ(MakeUnixAddress(trailing, sizeof(trailing) - 1, &a), -EINVAL);
  const char abs_nul[] = "\0abs\0name";
  TEST_CHECK_EQ(MakeUnixAddress(abs_nul, sizeof(abs_nul) - 1, &a), 0);
  TEST_CHECK_EQ(Text(a).host_len, sizeof(abs_nul) - 1);
}

// Issue 8 item 8: the per-environment registry closes what it recorded,
// and only while the number still names the recorded file.
void TestFdRegistry() {
  int p[2];
  TEST_CHECK_EQ(SocketPair(SOCK_STREAM, p), 0);
  int q = Socket(AF_INET, SOCK_STREAM, 0);
  TEST_CHECK(q >= 0);
  {
    FdRegistry reg;
    TEST_CHECK_EQ(reg.Add(p[0]), 0);
    TEST_CHECK_EQ(reg.Add(p[0]), 0);  // idempotent
    TEST_CHECK_EQ(reg.Add(p[1]), 0);
    TEST_CHECK_EQ(reg.Add(q), 0);
    TEST_CHECK_EQ(reg.Size(), size_t{3});
    TEST_CHECK(reg.Remove(p[1]));
    TEST_CHECK(!reg.Remove(p[1]));
    TEST_CHECK(!reg.Has(p[1]));
    // q is closed behind the registry's back and its number reused by
    // another file: CloseAll must leave the newcomer alone.
    int other = Socket(AF_INET, SOCK_DGRAM, 0);
    TEST_CHECK(other >= 0);
    TEST_CHECK_EQ(dup2(other, q), q);  // closes q's socket, reuses the number
    FdClose(other);
    int reused = q;
    TEST_CHECK_EQ(reg.CloseAll(), size_t{1});  // p[0] only
    TEST_CHECK_EQ(reg.Size(), size_t{0});
    TEST_CHECK(fcntl(p[0], F_GETFD) < 0);   // closed
    TEST_CHECK(fcntl(p[1], F_GETFD) >= 0);  // removed: left open
    TEST_CHECK(fcntl(reused, F_GETFD) >= 0);
    TEST_CHECK_EQ(reg.Add(-1), -EBADF);
    TEST_CHECK_EQ(reg.Size(), size_t{0});
    FdClose(reused);
  }
  FdClose(p[1]);
}

// Data-path calls refuse fds that could block the thread.
void TestMayBlock() {
  int p[2];
  TEST_CHECK_EQ(SocketPair(SOCK_STREAM, p), 0);
  TEST_CHECK_EQ(MayBlock(p[0]), 0);
  int fl = fcntl(p[0], F_GETFL);
  TEST_CHECK_EQ(fcntl(p[0], F_SETFL, fl & ~O_NONBLOCK), 0);
  TEST_CHECK_EQ(MayBlock(p[0]), 1);
  TEST_CHECK_EQ(SetNonBlockingCloexec(p[0]), 0);
  TEST_CHECK_EQ(MayBlock(p[0]), 0);
  char path[] = "/tmp/aionode-mayblock-XXXXXX";
  int f = mkstemp(path);
  TEST_CHECK(f >= 0);
  unlink(path);
  TEST_CHECK_EQ(MayBlock(f), 0);  // a regular file never waits
  FdClose(f);
  FdClose(p[0]);
  FdClose(p[1]);
  TEST_CHECK_EQ(MayBlock(p[0]), -EBADF);
}

void TestFormatEdges() {
  SockAddr a;
  AddressText t;
  a.len = 0;  // recvfrom on TCP reports no address
  TEST_CHECK_EQ(FormatAddress(a, &t), 0);
  TEST_CHECK_EQ(t.family, AF_UNSPEC);
  TEST_CHECK_EQ(t.host_len, size_t{0});
  MakeInetAddress(AF_INET, "1.2.3.4", 5, 0, 0, &a);
  a.len = 4;  // truncated
  TEST_CHECK_EQ(FormatAddress(a, &t), 0);
  TEST_CHECK_EQ(t.family, AF_UNSPEC);
  std::memset(&a.storage, 0, sizeof(a.storage));
  a.storage.ss_family = AF_APPLETALK;
  a.len = sizeof(a.storage);
  TEST_CHECK_EQ(FormatAddress(a, &t), -EAFNOSUPPORT);
  // A filesystem path reported with its NUL counted ends at the NUL.
  MakeUnixAddress("/a", 2, &a);
  a.len += 5;
  TEST_CHECK_EQ(std::string(Text(a).host), "/a");
  TEST_CHECK_EQ(Text(a).host_len, size_t{2});
}

// ---- TCP --------------------------------------------------------------------------

void TestTcp(const char* host) {
  Fds fds;
  int family = std::strchr(host, ':') != nullptr ? AF_INET6 : AF_INET;
  int listener = fds.Add(TcpListener(host));
  TEST_CHECK(listener >= 0);
  if (listener < 0) return;
  int port = PortOf(listener);
  TEST_CHECK(port > 0);

  // Nothing pending: EAGAIN is a return value.
  TEST_CHECK_EQ(Accept4(listener, nullptr, nullptr), -EAGAIN);

  int client = fds.Add(Socket(family, SOCK_STREAM, 0));
  TEST_CHECK_EQ(Connect(client, Inet(host, port)), -EINPROGRESS);
  TEST_CHECK(WaitFor(client, POLLOUT));
  int err = -1;
  TEST_CHECK_EQ(GetSockOptInt(client, SOL_SOCKET, SO_ERROR, &err), 0);
  TEST_CHECK_EQ(err, 0);
  TEST_CHECK(WaitFor(listener, POLLIN));

  SockAddr peer;
  peer.len = sizeof(peer.storage);
  int server = fds.Add(Accept4(listener, &peer.storage, &peer.len));
  TEST_CHECK(server >= 0);
  if (server < 0) return;
  TEST_CHECK(IsNonblockCloexec(server));
  // The accepted peer address is the client's own name.
  SockAddr client_name;
  TEST_CHECK_EQ(GetSockName(client, &client_name), 0);
  AddressText pt = Text(peer);
  AddressText ct = Text(client_name);
  TEST_CHECK_EQ(pt.family, family);
  TEST_CHECK_EQ(std::string(pt.host), std::string(host));
  TEST_CHECK_EQ(pt.port, ct.port);
  SockAddr server_peer;
  TEST_CHECK_EQ(GetPeerName(client, &server_peer), 0);
  TEST_CHECK_EQ(Text(server_peer).port, port);
  TEST_CHECK_EQ(std::string(Text(server_peer).host), std::string(host));

  // Data: send / recv, EAGAIN when empty.
  char buf[64];
  TEST_CHECK_EQ(Recv(server, buf, sizeof(buf), 0), int64_t{-EAGAIN});
  TEST_CHECK_EQ(Send(client, "hello", 5, 0), int64_t{5});
  TEST_CHECK(WaitFor(server, POLLIN));
  TEST_CHECK_EQ(Recv(server, buf, sizeof(buf), 0), int64_t{5});
  TEST_CHECK_EQ(std::string(buf, 5), "hello");

  // Gather on one side, scatter on the other.
  struct iovec out[3] = {{const_cast<char*>("ab"), 2},
                         {const_cast<char*>(""), 0},
                         {const_cast<char*>("cdef"), 4}};
  TEST_CHECK_EQ(Writev(client, out, 3), int64_t{6});
  TEST_CHECK(WaitFor(server, POLLIN));
  char x[3] = {0}, y[8] = {0};
  struct iovec in[2] = {{x, 3}, {y, 8}};
  TEST_CHECK_EQ(RecvMsg(server, in, 2, 0), int64_t{6});
  TEST_CHECK_EQ(std::string(x, 3), "abc");
  TEST_CHECK_EQ(std::string(y, 3), "def");
  TEST_CHECK_EQ(RecvMsg(server, in, 2, 0), int64_t{-EAGAIN});
  TEST_CHECK_EQ(Writev(client, out, 0), int64_t{0});
  TEST_CHECK_EQ(Writev(client, out, -1), int64_t{-EINVAL});
  TEST_CHECK_EQ(RecvMsg(server, in, -1, 0), int64_t{-EINVAL});

  // recvfrom on a connected stream: data, no address.
  TEST_CHECK_EQ(Send(server, "pong", 4, 0), int64_t{4});
  TEST_CHECK(WaitFor(client, POLLIN));
  SockAddr from;
  TEST_CHECK_EQ(RecvFrom(client, buf, sizeof(buf), 0, &from), int64_t{4});
  AddressText ft;
  TEST_CHECK_EQ(FormatAddress(from, &ft), 0);
  TEST_CHECK(ft.family == AF_UNSPEC || ft.port == port);

  // Half-close: the peer reads EOF, the other direction still works.
  TEST_CHECK_EQ(Shutdown(client, SHUT_WR), 0);
  TEST_CHECK(WaitFor(server, POLLIN));
  TEST_CHECK_EQ(Recv(server, buf, sizeof(buf), 0), int64_t{0});
  TEST_CHECK_EQ(Send(server, "late", 4, 0), int64_t{4});
  TEST_CHECK(WaitFor(client, POLLIN));
  TEST_CHECK_EQ(Recv(client, buf, sizeof(buf), 0), int64_t{4});
  TEST_CHECK_EQ(Send(client, "x", 1, 0), int64_t{-EPIPE});
}

void TestTcpErrors() {
  Fds fds;
  int listener = fds.Add(TcpListener("127.0.0.1"));
  TEST_CHECK(listener >= 0);
  if (listener < 0) return;
  int port = PortOf(listener);

  // The port is taken.
  int other = fds.Add(Socket(AF_INET, SOCK_STREAM, 0));
  TEST_CHECK_EQ(Bind(other, Inet("127.0.0.1", port)), -EADDRINUSE);
  // Binding twice, listening on a dgram socket, not connected.
  int bound = fds.Add(Socket(AF_INET, SOCK_STREAM, 0));
  TEST_CHECK_EQ(Bind(bound, Inet("127.0.0.1", 0)), 0);
  TEST_CHECK_EQ(Bind(bound, Inet("127.0.0.1", 0)), -EINVAL);
  SockAddr a;
  TEST_CHECK_EQ(GetPeerName(bound, &a), -ENOTCONN);
  TEST_CHECK_EQ(a.len, socklen_t{0});
  TEST_CHECK_EQ(Shutdown(bound, SHUT_RDWR), -ENOTCONN);
  TEST_CHECK_EQ(Accept4(bound, nullptr, nullptr), -EINVAL);
  int dgram = fds.Add(Socket(AF_INET, SOCK_DGRAM, 0));
  TEST_CHECK_EQ(Listen(dgram, 1), -EOPNOTSUPP);
  char buf[8];
  TEST_CHECK_EQ(Send(bound, "x", 1, 0), int64_t{-EPIPE});
  int64_t r = Recv(bound, buf, sizeof(buf), 0);  // Linux: 0 (closed state)
  TEST_CHECK(r == 0 || r == -ENOTCONN);
  TEST_CHECK_EQ(Shutdown(listener, 99), -EINVAL);
  // Address family mismatch.
  TEST_CHECK_EQ(Connect(dgram, Inet("::1", 80)), -EAFNOSUPPORT);

  // A closed fd: -EBADF everywhere.
  int dead = dup(listener);
  close(dead);
  int v = 0;
  TEST_CHECK_EQ(Bind(dead, Inet("127.0.0.1", 0)), -EBADF);
  TEST_CHECK_EQ(Listen(dead, 1), -EBADF);
  TEST_CHECK_EQ(Accept4(dead, nullptr, nullptr), -EBADF);
  TEST_CHECK_EQ(Connect(dead, Inet("127.0.0.1", port)), -EBADF);
  TEST_CHECK_EQ(Recv(dead, buf, 1, 0), int64_t{-EBADF});
  TEST_CHECK_EQ(RecvFrom(dead, buf, 1, 0, nullptr), int64_t{-EBADF});
  TEST_CHECK_EQ(Send(dead, buf, 1, 0), int64_t{-EBADF});
  TEST_CHECK_EQ(SendTo(dead, buf, 1, 0, Inet("127.0.0.1", 1)), int64_t{-EBADF});
  struct iovec iov = {buf, 1};
  TEST_CHECK_EQ(Writev(dead, &iov, 1), int64_t{-EBADF});
  TEST_CHECK_EQ(RecvMsg(dead, &iov, 1, 0), int64_t{-EBADF});
  TEST_CHECK_EQ(Shutdown(dead, SHUT_RD), -EBADF);
  TEST_CHECK_EQ(GetSockName(dead, &a), -EBADF);
  TEST_CHECK_EQ(GetPeerName(dead, &a), -EBADF);
  TEST_CHECK_EQ(GetSockOptInt(dead, SOL_SOCKET, SO_ERROR, &v), -EBADF);
  TEST_CHECK_EQ(SetSockOptInt(dead, SOL_SOCKET, SO_REUSEADDR, 1), -EBADF);
  TEST_CHECK_EQ(FdClose(dead), -EBADF);
  // Not a socket.
  int fd = fds.Add(open("/dev/null", O_RDONLY | O_CLOEXEC));
  TEST_CHECK_EQ(Listen(fd, 1), -ENOTSOCK);
  TEST_CHECK_EQ(GetSockName(fd, &a), -ENOTSOCK);
}

void TestConnectRefused() {
  Fds fds;
  // A port nobody listens on: bind one, note it, close it.
  int tmp = Socket(AF_INET, SOCK_STREAM, 0);
  TEST_CHECK_EQ(Bind(tmp, Inet("127.0.0.1", 0)), 0);
  int port = PortOf(tmp);
  close(tmp);
  int c = fds.Add(Socket(AF_INET, SOCK_STREAM, 0));
  int rc = Connect(c, Inet("127.0.0.1", port));
  TEST_CHECK(rc == -EINPROGRESS || rc == -ECONNREFUSED);
  if (rc == -EINPROGRESS) {
    TEST_CHECK(WaitFor(c, POLLOUT));
    int err = 0;
    TEST_CHECK_EQ(GetSockOptInt(c, SOL_SOCKET, SO_ERROR, &err), 0);
    TEST_CHECK_EQ(err, ECONNREFUSED);
    TEST_CHECK_EQ(GetSockOptInt(c, SOL_SOCKET, SO_ERROR, &err), 0);
    TEST_CHECK_EQ(err, 0);  // read once, then cleared
  }
}

// SO_LINGER 0 then close: the peer sees a reset.
void TestReset() {
  Fds fds;
  int listener = fds.Add(TcpListener("127.0.0.1"));
  int client = -1, server = -1;
  TEST_CHECK(TcpPair(listener, "127.0.0.1", &fds, &client, &server));
  if (server < 0) return;
  int v = 123;
  TEST_CHECK_EQ(GetSockOptInt(client, SOL_SOCKET, SO_LINGER, &v), 0);
  TEST_CHECK_EQ(v, -1);
  TEST_CHECK_EQ(SetSockOptInt(client, SOL_SOCKET, SO_LINGER, 0), 0);
  TEST_CHECK_EQ(GetSockOptInt(client, SOL_SOCKET, SO_LINGER, &v), 0);
  TEST_CHECK_EQ(v, 0);
  fds.Close(client);
  TEST_CHECK(WaitFor(server, POLLIN));
  char buf[8];
  TEST_CHECK_EQ(Recv(server, buf, sizeof(buf), 0), int64_t{-ECONNRESET});
  // After the reset was read: EOF, and sends fail with EPIPE (no signal).
  TEST_CHECK_EQ(Recv(server, buf, sizeof(buf), 0), int64_t{0});
  int64_t s = Send(server, "x", 1, 0);
  TEST_CHECK(s == -EPIPE || s == -ECONNRESET);
}

std::atomic<int> g_sigpipes{0};
void OnSigPipe(int) { g_sigpipes.fetch_add(1); }

// Writes to a closed peer return -EPIPE instead of raising SIGPIPE (F4).
void TestNoSigPipe() {
  struct sigaction sa, old;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSigPipe;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, &old);
  g_sigpipes = 0;
  {
    Fds fds;
    int pair[2];
    TEST_CHECK_EQ(SocketPair(SOCK_STREAM, pair), 0);
    fds.Add(pair[0]);
    fds.Add(pair[1]);
    fds.Close(pair[1]);
    TEST_CHECK_EQ(Send(pair[0], "x", 1, 0), int64_t{-EPIPE});
    struct iovec iov = {const_cast<char*>("yz"), 2};
    TEST_CHECK_EQ(Writev(pair[0], &iov, 1), int64_t{-EPIPE});
    // TCP after the peer closed and reset.
    int listener = fds.Add(TcpListener("127.0.0.1"));
    int client = -1, server = -1;
    TEST_CHECK(TcpPair(listener, "127.0.0.1", &fds, &client, &server));
    if (server >= 0) {
      SetSockOptInt(client, SOL_SOCKET, SO_LINGER, 0);
      fds.Close(client);
      TEST_CHECK(WaitFor(server, POLLIN));
      int64_t r = 0;
      for (int i = 0; i < 4 && r >= 0; ++i) r = Send(server, "abc", 3, 0);
      TEST_CHECK(r == -EPIPE || r == -ECONNRESET);
      r = 0;
      for (int i = 0; i < 4 && r >= 0; ++i) r = Writev(server, &iov, 1);
      TEST_CHECK_EQ(r, int64_t{-EPIPE});
    }
  }
  TEST_CHECK_EQ(g_sigpipes.load(), 0);
  sigaction(SIGPIPE, &old, nullptr);
}

void TestSockOpts() {
  Fds fds;
  int fd = fds.Add(Socket(AF_INET, SOCK_STREAM, 0));
  int v = -1;
  TEST_CHECK_EQ(GetSockOptInt(fd, IPPROTO_TCP, TCP_NODELAY, &v), 0);
  TEST_CHECK_EQ(v, 0);
  TEST_CHECK_EQ(SetSockOptInt(fd, IPPROTO_TCP, TCP_NODELAY, 1), 0);
  TEST_CHECK_EQ(GetSockOptInt(fd, IPPROTO_TCP, TCP_NODELAY, &v), 0);
  TEST_CHECK(v != 0);
  TEST_CHECK_EQ(SetSockOptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1), 0);
  TEST_CHECK_EQ(GetSockOptInt(fd, SOL_SOCKET, SO_REUSEADDR, &v), 0);
  TEST_CHECK(v != 0);
  TEST_CHECK_EQ(SetSockOptInt(fd, SOL_SOCKET, SO_REUSEADDR, 0), 0);
  TEST_CHECK_EQ(GetSockOptInt(fd, SOL_SOCKET, SO_REUSEADDR, &v), 0);
  TEST_CHECK_EQ(v, 0);
  TEST_CHECK_EQ(SetSockOptInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
  TEST_CHECK_EQ(SetSockOptInt(fd, SOL_SOCKET, 0x7ffe, 1), -ENOPROTOOPT);
  TEST_CHECK_EQ(GetSockOptInt(fd, SOL_SOCKET, 0x7ffe, &v), -ENOPROTOOPT);
  TEST_CHECK_EQ(SetSockOptInt(fd, SOL_SOCKET, SO_LINGER, 5), 0);
  TEST_CHECK_EQ(GetSockOptInt(fd, SOL_SOCKET, SO_LINGER, &v), 0);
  TEST_CHECK_EQ(v, 5);
  TEST_CHECK_EQ(SetSockOptInt(fd, SOL_SOCKET, SO_LINGER, -1), 0);
  TEST_CHECK_EQ(GetSockOptInt(fd, SOL_SOCKET, SO_LINGER, &v), 0);
  TEST_CHECK_EQ(v, -1);
  if (HaveIpv6Loopback()) {
    int fd6 = fds.Add(Socket(AF_INET6, SOCK_STREAM, 0));
    TEST_CHECK_EQ(SetSockOptInt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, 1), 0);
    TEST_CHECK_EQ(GetSockOptInt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, &v), 0);
    TEST_CHECK_EQ(v, 1);
  }
}

// ---- UDP ----------------------------------------------------------------------

void TestUdp(const char* host) {
  Fds fds;
  int family = std::strchr(host, ':') != nullptr ? AF_INET6 : AF_INET;
  int a = fds.Add(Socket(family, SOCK_DGRAM, 0));
  int b = fds.Add(Socket(family, SOCK_DGRAM, 0));
  TEST_CHECK_EQ(Bind(a, Inet(host, 0)), 0);
  TEST_CHECK_EQ(Bind(b, Inet(host, 0)), 0);
  int pa = PortOf(a), pb = PortOf(b);
  char buf[64];
  SockAddr from;
  TEST_CHECK_EQ(RecvFrom(b, buf, sizeof(buf), 0, &from), int64_t{-EAGAIN});
  TEST_CHECK_EQ(SendTo(a, "datagram", 8, 0, Inet(host, pb)), int64_t{8});
  TEST_CHECK(WaitFor(b, POLLIN));
  TEST_CHECK_EQ(RecvFrom(b, buf, sizeof(buf), 0, &from), int64_t{8});
  TEST_CHECK_EQ(std::string(buf, 8), "datagram");
  AddressText t = Text(from);
  TEST_CHECK_EQ(t.family, family);
  TEST_CHECK_EQ(std::string(t.host), std::string(host));
  TEST_CHECK_EQ(t.port, pa);
  // Reply to the reported address; a short buffer truncates the datagram.
  TEST_CHECK_EQ(SendTo(b, "reply!", 6, 0, from), int64_t{6});
  TEST_CHECK(WaitFor(a, POLLIN));
  TEST_CHECK_EQ(RecvFrom(a, buf, 3, 0, nullptr), int64_t{3});
  TEST_CHECK_EQ(std::string(buf, 3), "rep");
  TEST_CHECK_EQ(Recv(a, buf, sizeof(buf), 0), int64_t{-EAGAIN});
  // Scatter a datagram.
  TEST_CHECK_EQ(SendTo(a, "0123456789", 10, 0, Inet(host, pb)), int64_t{10});
  TEST_CHECK(WaitFor(b, POLLIN));
  char x[4], y[16];
  struct iovec in[2] = {{x, 4}, {y, 16}};
  TEST_CHECK_EQ(RecvMsg(b, in, 2, 0), int64_t{10});
  TEST_CHECK_EQ(std::string(x, 4), "0123");
  TEST_CHECK_EQ(std::string(y, 6), "456789");
  // Connected UDP to a closed port: ECONNREFUSED comes back on a later call.
  int tmp = Socket(family, SOCK_DGRAM, 0);
  Bind(tmp, Inet(host, 0));
  int closed_port = PortOf(tmp);
  close(tmp);
  int c = fds.Add(Socket(family, SOCK_DGRAM, 0));
  TEST_CHECK_EQ(Connect(c, Inet(host, closed_port)), 0);
  TEST_CHECK_EQ(Send(c, "x", 1, 0), int64_t{1});
  WaitFor(c, POLLIN);
  TEST_CHECK_EQ(Recv(c, buf, sizeof(buf), 0), int64_t{-ECONNREFUSED});
  // Too large for a datagram.
  std::vector<char> big(70000, 'b');
  TEST_CHECK_EQ(SendTo(a, big.data(), big.size(), 0, Inet(host, pb)),
                int64_t{-EMSGSIZE});
}

// ---- unix sockets ---------------------------------------------------------------

void TestUnix() {
  std::string dir = TempDir();
  TEST_CHECK(!dir.empty());
  if (dir.empty()) return;
  std::string path = dir + "/s.sock";
  {
    Fds fds;
    SockAddr addr;
    TEST_CHECK_EQ(MakeUnixAddress(path.data(), path.size(), &addr), 0);
    int l = fds.Add(Socket(AF_UNIX, SOCK_STREAM, 0));
    TEST_CHECK_EQ(Bind(l, addr), 0);
    TEST_CHECK_EQ(Listen(l, 4), 0);
    SockAddr name;
    TEST_CHECK_EQ(GetSockName(l, &name), 0);
    TEST_CHECK_EQ(std::string(Text(name).host, Text(name).host_len), path);
    int l2 = fds.Add(Socket(AF_UNIX, SOCK_STREAM, 0));
    TEST_CHECK_EQ(Bind(l2, addr), -EADDRINUSE);

    int c = fds.Add(Socket(AF_UNIX, SOCK_STREAM, 0));
    TEST_CHECK_EQ(Connect(c, addr), 0);  // unix connects at once
    SockAddr peer;
    peer.len = sizeof(peer.storage);
    int s = fds.Add(Accept4(l, &peer.storage, &peer.len));
    TEST_CHECK(s >= 0);
    TEST_CHECK(IsNonblockCloexec(s));
    AddressText pt = Text(peer);
    TEST_CHECK_EQ(pt.family, AF_UNIX);
    TEST_CHECK_EQ(pt.host_len, size_t{0});  // the client is unnamed
    SockAddr cp;
    TEST_CHECK_EQ(GetPeerName(c, &cp), 0);
    TEST_CHECK_EQ(std::string(Text(cp).host), path);
    char buf[16];
    TEST_CHECK_EQ(Send(c, "unix", 4, 0), int64_t{4});
    TEST_CHECK(WaitFor(s, POLLIN));
    TEST_CHECK_EQ(Recv(s, buf, sizeof(buf), 0), int64_t{4});
    TEST_CHECK_EQ(std::string(buf, 4), "unix");

    // Nothing there: ENOENT; a path too long never reaches the kernel.
    std::string missing = dir + "/missing.sock";
    SockAddr m;
    MakeUnixAddress(missing.data(), missing.size(), &m);
    int c2 = fds.Add(Socket(AF_UNIX, SOCK_STREAM, 0));
    TEST_CHECK_EQ(Connect(c2, m), -ENOENT);

#if defined(__linux__)
    // Abstract namespace: bind, name round trip, connect.
    std::string abs = std::string(1, '\0') + "aionode-test-" + Str(getpid());
    SockAddr aa;
    TEST_CHECK_EQ(MakeUnixAddress(abs.data(), abs.size(), &aa), 0);
    int al = fds.Add(Socket(AF_UNIX, SOCK_STREAM, 0));
    TEST_CHECK_EQ(Bind(al, aa), 0);
    TEST_CHECK_EQ(Listen(al, 1), 0);
    SockAddr an;
    TEST_CHECK_EQ(GetSockName(al, &an), 0);
    TEST_CHECK_EQ(std::string(Text(an).host, Text(an).host_len), abs);
    int ac = fds.Add(Socket(AF_UNIX, SOCK_STREAM, 0));
    TEST_CHECK_EQ(Connect(ac, aa), 0);
    // Autobind: an empty address gets an abstract name.
    int auto_fd = fds.Add(Socket(AF_UNIX, SOCK_DGRAM, 0));
    SockAddr empty;
    MakeUnixAddress("", 0, &empty);
    TEST_CHECK_EQ(Bind(auto_fd, empty), 0);
    SockAddr autoname;
    TEST_CHECK_EQ(GetSockName(auto_fd, &autoname), 0);
    AddressText at = Text(autoname);
    TEST_CHECK(at.host_len > 1 && at.host[0] == '\0');
#endif

    // Datagrams: the sender's address; none at all (Linux: length 0, as
    // Python's None) when it never bound.
    std::string dpath = dir + "/d.sock";
    SockAddr daddr;
    MakeUnixAddress(dpath.data(), dpath.size(), &daddr);
    int d = fds.Add(Socket(AF_UNIX, SOCK_DGRAM, 0));
    TEST_CHECK_EQ(Bind(d, daddr), 0);
    int ds = fds.Add(Socket(AF_UNIX, SOCK_DGRAM, 0));
    TEST_CHECK_EQ(SendTo(ds, "dg", 2, 0, daddr), int64_t{2});
    SockAddr from;
    TEST_CHECK_EQ(RecvFrom(d, buf, sizeof(buf), 0, &from), int64_t{2});
    AddressText ft = Text(from);
    TEST_CHECK(ft.family == AF_UNSPEC || ft.family == AF_UNIX);
    TEST_CHECK_EQ(ft.host_len, size_t{0});
    // A bound sender is reported by path.
    std::string spath = dir + "/sender.sock";
    SockAddr saddr;
    MakeUnixAddress(spath.data(), spath.size(), &saddr);
    TEST_CHECK_EQ(Bind(ds, saddr), 0);
    TEST_CHECK_EQ(SendTo(ds, "dg", 2, 0, daddr), int64_t{2});
    TEST_CHECK_EQ(RecvFrom(d, buf, sizeof(buf), 0, &from), int64_t{2});
    ft = Text(from);
    TEST_CHECK_EQ(ft.family, AF_UNIX);
    TEST_CHECK_EQ(std::string(ft.host, ft.host_len), spath);
    TEST_CHECK_EQ(RecvFrom(d, buf, sizeof(buf), 0, &from), int64_t{-EAGAIN});
    unlink(spath.c_str());
    unlink(dpath.c_str());
  }
  unlink(path.c_str());
  rmdir(dir.c_str());
}

// ---- sendfile, pipes, limits -------------------------------------------------------

void TestSendFile() {
  std::string dir = TempDir();
  TEST_CHECK(!dir.empty());
  if (dir.empty()) return;
  std::string file = dir + "/data.bin";
  Fds fds;
  int f = fds.Add(open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  std::string content;
  for (int i = 0; i < 1000; ++i) content += Str(i) + ",";
  TEST_CHECK_EQ(write(f, content.data(), content.size()),
                static_cast<ssize_t>(content.size()));
  int pair[2];
  TEST_CHECK_EQ(SocketPair(SOCK_STREAM, pair), 0);
  fds.Add(pair[0]);
  fds.Add(pair[1]);
  off_t off = 10;
  int64_t n = SendFile(pair[0], f, &off, 100);
#if defined(__linux__)
  TEST_CHECK_EQ(n, int64_t{100});
  TEST_CHECK_EQ(off, off_t{110});
  std::vector<char> buf(4096);
  TEST_CHECK_EQ(Recv(pair[1], buf.data(), buf.size(), 0), int64_t{100});
  TEST_CHECK_EQ(std::string(buf.data(), 100), content.substr(10, 100));
  // The rest, then end of file.
  int64_t total = 0;
  for (;;) {
    n = SendFile(pair[0], f, &off, 1 << 20);
    if (n <= 0) break;
    total += n;
  }
  TEST_CHECK_EQ(n, int64_t{0});
  TEST_CHECK_EQ(total, static_cast<int64_t>(content.size()) - 110);
  TEST_CHECK_EQ(off, static_cast<off_t>(content.size()));
  // Errors are returned: bad fds, a reader-less socket.
  TEST_CHECK_EQ(SendFile(pair[0], -1, &off, 1), int64_t{-EBADF});
  off = 0;
  fds.Close(pair[1]);
  struct sigaction sa, old;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;  // sendfile has no MSG_NOSIGNAL (Node ignores it)
  sigaction(SIGPIPE, &sa, &old);
  TEST_CHECK_EQ(SendFile(pair[0], f, &off, 10), int64_t{-EPIPE});
  sigaction(SIGPIPE, &old, nullptr);
#else
  TEST_CHECK_EQ(n, int64_t{-ENOSYS});
#endif
  unlink(file.c_str());
  rmdir(dir.c_str());
}

// Writev / RecvMsg work on pipes too (writev / readv fallback).
void TestPipes() {
  Fds fds;
  int p[2];
  TEST_CHECK_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  fds.Add(p[0]);
  fds.Add(p[1]);
  struct iovec out[2] = {{const_cast<char*>("pi"), 2},
                         {const_cast<char*>("pe"), 2}};
  TEST_CHECK_EQ(Writev(p[1], out, 2), int64_t{4});
  char a[1], b[8];
  struct iovec in[2] = {{a, 1}, {b, 8}};
  TEST_CHECK_EQ(RecvMsg(p[0], in, 2, 0), int64_t{4});
  TEST_CHECK_EQ(std::string(b, 3), "ipe");
  TEST_CHECK_EQ(RecvMsg(p[0], in, 2, 0), int64_t{-EAGAIN});
  TEST_CHECK_EQ(FdRead(p[0], b, 8), int64_t{-EAGAIN});
  TEST_CHECK_EQ(Recv(p[0], b, 8, 0), int64_t{-ENOTSOCK});
}

// More than IOV_MAX buffers: one call sends the first IOV_MAX.
void TestIovMax() {
  Fds fds;
  int pair[2];
  TEST_CHECK_EQ(SocketPair(SOCK_STREAM, pair), 0);
  fds.Add(pair[0]);
  fds.Add(pair[1]);
  std::vector<struct iovec> iov(IOV_MAX + 10);
  char byte = 'z';
  for (auto& v : iov) v = {&byte, 1};
  TEST_CHECK_EQ(Writev(pair[0], iov.data(), static_cast<int>(iov.size())),
                int64_t{IOV_MAX});
  std::vector<char> sink(IOV_MAX + 10);
  std::vector<struct iovec> in(IOV_MAX + 10);
  for (size_t i = 0; i < in.size(); ++i) in[i] = {&sink[i], 1};
  TEST_CHECK_EQ(RecvMsg(pair[1], in.data(), static_cast<int>(in.size()), 0),
                int64_t{IOV_MAX});
}

// Many connections: every accepted fd is closed again (no leak).
void TestAcceptMany() {
  Fds fds;
  int listener = fds.Add(TcpListener("127.0.0.1"));
  int port = PortOf(listener);
  int before = 0;
  for (int fd = 0; fd < 1024; ++fd) before += fcntl(fd, F_GETFD) >= 0;
  for (int i = 0; i < 50; ++i) {
    int c = Socket(AF_INET, SOCK_STREAM, 0);
    int rc = Connect(c, Inet("127.0.0.1", port));
    TEST_CHECK(rc == 0 || rc == -EINPROGRESS);
    TEST_CHECK(WaitFor(listener, POLLIN));
    int s = Accept4(listener, nullptr, nullptr);
    TEST_CHECK(s >= 0);
    TEST_CHECK_EQ(FdClose(s), 0);
    TEST_CHECK_EQ(FdClose(c), 0);
  }
  int after = 0;
  for (int fd = 0; fd < 1024; ++fd) after += fcntl(fd, F_GETFD) >= 0;
  TEST_CHECK_EQ(after, before);
}

}  // namespace

void RunSocketTests(void (*run)(const std::string&,
                                const std::function<void()>&),
                    void (*fail)(const std::string&)) {
  test::g_fail = fail;
  bool v6 = HaveIpv6Loopback();
  run("socket: NONBLOCK | CLOEXEC, family and type checks", TestSocketFlags);
  run("socket: inet address parse / format", TestInetAddresses);
  run("socket: unix address parse / format", TestUnixAddresses);
  run("socket: format edge cases", TestFormatEdges);
  run("socket: TCP v4 connect, accept, send, recv, writev, recvmsg, shutdown",
      [] { TestTcp("127.0.0.1"); });
  if (v6) {
    run("socket: TCP v6 connect, accept, send, recv, writev, recvmsg, shutdown",
        [] { TestTcp("::1"); });
  } else {
    std::printf("# socket: no IPv6 loopback, v6 tests skipped\n");
  }
  run("socket: TCP errors (EADDRINUSE, ENOTCONN, EBADF, ...)", TestTcpErrors);
  run("socket: connect refused via SO_ERROR", TestConnectRefused);
  run("socket: reset gives -ECONNRESET", TestReset);
  run("socket: no SIGPIPE, -EPIPE instead", TestNoSigPipe);
  run("socket: get/set options", TestSockOpts);
  run("socket: UDP v4 sendto / recvfrom / recvmsg", [] { TestUdp("127.0.0.1"); });
  if (v6) {
    run("socket: UDP v6 sendto / recvfrom / recvmsg", [] { TestUdp("::1"); });
  }
  run("socket: unix stream and datagram", TestUnix);
  run("socket: sendfile", TestSendFile);
  run("socket: writev / recvmsg on a pipe", TestPipes);
  run("socket: IOV_MAX clamp", TestIovMax);
  run("socket: 50 accepts, no fd leak", TestAcceptMany);
  run("socket: fd registry closes only what it still owns", TestFdRegistry);
  run("socket: blocking fds detected", TestMayBlock);
}

}  // namespace aionode
