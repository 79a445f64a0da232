// POSIX implementation of socket_ops.h: Linux first (accept4, SOCK_NONBLOCK,
// MSG_NOSIGNAL, sendfile); fcntl / SO_NOSIGPIPE fallbacks where those are
// missing (macOS).
#include "socket_ops.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/sendfile.h>
#endif

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace aionode {

static_assert(AddressText::kMax > INET6_ADDRSTRLEN, "host text too small");
static_assert(AddressText::kMax > sizeof(sockaddr_un::sun_path),
              "path text too small");

namespace {

#if defined(MSG_NOSIGNAL)
constexpr int kNoSignal = MSG_NOSIGNAL;
#else
constexpr int kNoSignal = 0;  // SO_NOSIGPIPE is set on the socket instead
#endif

#if defined(IOV_MAX)
constexpr int kIovMax = IOV_MAX;
#else
constexpr int kIovMax = 1024;
#endif

// Flags after the fact: for systems without SOCK_NONBLOCK / accept4 (not
// atomic with respect to fork+exec in another thread; Linux never needs it
// there), and for fds adopted from elsewhere. Skips a write that would
// change nothing.
int SetNonblockCloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    return -errno;
  }
  int fd_fl = fcntl(fd, F_GETFD);
  if (fd_fl < 0) return -errno;
  if (!(fd_fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fd_fl | FD_CLOEXEC) < 0) {
    return -errno;
  }
  return 0;
}

// Where MSG_NOSIGNAL does not exist, a per-socket option does the same.
int NoSigPipe([[maybe_unused]] int fd) {
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one)) < 0) {
    return -errno;
  }
#endif
  return 0;
}

// Closes `fd` keeping the errno to report.
int CloseWith(int fd, int err) {
  close(fd);
  return err;
}

int ParsePort(int port) { return port >= 0 && port <= 65535 ? 0 : -EINVAL; }

// "fe80::1%eth0" / "fe80::1%2": the interface index, or -errno.
int64_t ParseScope(const char* text) {
  if (*text == '\0') return -EINVAL;
  if (text[0] >= '0' && text[0] <= '9') {
    char* end = nullptr;
    errno = 0;
    unsigned long v = std::strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX) return -EINVAL;
    return static_cast<int64_t>(v);
  }
  if (std::strlen(text) >= IF_NAMESIZE) return -ENXIO;
  unsigned idx = if_nametoindex(text);
  return idx == 0 ? -ENXIO : static_cast<int64_t>(idx);
}

}  // namespace

// ---- pairs and plain fds ------------------------------------------------------

int SocketPair(int type, int fds[2]) {
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return -EINVAL;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    return -errno;
  }
#else
  if (socketpair(AF_UNIX, type, 0, fds) < 0) return -errno;
  for (int i = 0; i < 2; ++i) {
    int rc = SetNonblockCloexec(fds[i]);
    if (rc == 0) rc = NoSigPipe(fds[i]);
    if (rc < 0) {
      close(fds[0]);
      close(fds[1]);
      return rc;
    }
  }
#endif
  return 0;
}

int64_t FdRead(int fd, void* buf, size_t len) {
  for (;;) {
    ssize_t n = read(fd, buf, len);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

int64_t FdWrite(int fd, const void* buf, size_t len) {
  for (;;) {
    // write(2) keeps this usable on pipes; sockets should use Send.
    ssize_t n = write(fd, buf, len);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

int FdClose(int fd) {
  // close(2): on Linux the fd is released even when EINTR is reported, so
  // retrying could close an fd another thread just received.
  if (close(fd) < 0 && errno != EINTR) return -errno;
  return 0;
}

// ---- sockets --------------------------------------------------------------------

int Socket(int family, int type, int protocol) {
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) {
    return -EAFNOSUPPORT;
  }
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return -EINVAL;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return -errno;
#else
  int fd = socket(family, type, protocol);
  if (fd < 0) return -errno;
  int rc = SetNonblockCloexec(fd);
  if (rc < 0) return CloseWith(fd, rc);
#endif
  int ns = NoSigPipe(fd);
  if (ns < 0) return CloseWith(fd, ns);
  return fd;
}

int Bind(int fd, const SockAddr& addr) {
  return bind(fd, addr.get(), addr.len) < 0 ? -errno : 0;
}

int Listen(int fd, int backlog) {
  return listen(fd, backlog) < 0 ? -errno : 0;
}

int Accept4(int fd, sockaddr_storage* out, socklen_t* len) {
  sockaddr_storage scratch;
  socklen_t scratch_len;
  sockaddr* sa = reinterpret_cast<sockaddr*>(&scratch);
  socklen_t* sl = &scratch_len;
  if (out != nullptr && len != nullptr) {
    sa = reinterpret_cast<sockaddr*>(out);
    sl = len;
  }
  for (;;) {
    *sl = sizeof(sockaddr_storage);
#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__NetBSD__)
    int c = accept4(fd, sa, sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) return c;
#else
    int c = accept(fd, sa, sl);
    if (c >= 0) {
      int rc = SetNonblockCloexec(c);
      if (rc == 0) rc = NoSigPipe(c);
      return rc < 0 ? CloseWith(c, rc) : c;
    }
#endif
    if (errno != EINTR) return -errno;
  }
}

int Connect(int fd, const SockAddr& addr) {
  if (connect(fd, addr.get(), addr.len) == 0) return 0;
  return errno == EINTR ? -EINPROGRESS : -errno;
}

int64_t Recv(int fd, void* buf, size_t len, int flags) {
  for (;;) {
    ssize_t n = recv(fd, buf, len, flags);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

int64_t RecvFrom(int fd, void* buf, size_t len, int flags, SockAddr* from) {
  sockaddr_storage scratch;
  for (;;) {
    socklen_t sl = sizeof(sockaddr_storage);
    sockaddr* sa = reinterpret_cast<sockaddr*>(
        from != nullptr ? &from->storage : &scratch);
    ssize_t n = recvfrom(fd, buf, len, flags, sa, &sl);
    if (n >= 0) {
      if (from != nullptr) from->len = sl;
      return n;
    }
    if (errno != EINTR) return -errno;
  }
}

int64_t RecvMsg(int fd, const struct iovec* iov, int iovcnt, int flags) {
  if (iovcnt < 0) return -EINVAL;
  if (iovcnt > kIovMax) iovcnt = kIovMax;
  struct msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = const_cast<struct iovec*>(iov);
  msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(iovcnt);
  for (;;) {
    ssize_t n = recvmsg(fd, &msg, flags);
    if (n >= 0) return n;
    if (errno == ENOTSOCK && flags == 0) {
      n = readv(fd, iov, iovcnt);
      if (n >= 0) return n;
    }
    if (errno != EINTR) return -errno;
  }
}

int64_t Send(int fd, const void* buf, size_t len, int flags) {
  for (;;) {
    ssize_t n = send(fd, buf, len, flags | kNoSignal);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

int64_t SendTo(int fd, const void* buf, size_t len, int flags,
               const SockAddr& to) {
  for (;;) {
    ssize_t n = sendto(fd, buf, len, flags | kNoSignal, to.get(), to.len);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

int64_t Writev(int fd, const struct iovec* iov, int iovcnt) {
  if (iovcnt < 0) return -EINVAL;
  if (iovcnt == 0) return 0;
  if (iovcnt > kIovMax) iovcnt = kIovMax;
  struct msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = const_cast<struct iovec*>(iov);
  msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(iovcnt);
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, kNoSignal);
    if (n >= 0) return n;
    if (errno == ENOTSOCK) {
      n = writev(fd, iov, iovcnt);  // a pipe: SIGPIPE is the caller's matter
      if (n >= 0) return n;
    }
    if (errno != EINTR) return -errno;
  }
}

int Shutdown(int fd, int how) {
  return shutdown(fd, how) < 0 ? -errno : 0;
}

int GetSockName(int fd, SockAddr* out) {
  out->len = sizeof(out->storage);
  if (getsockname(fd, out->get(), &out->len) < 0) {
    out->len = 0;
    return -errno;
  }
  return 0;
}

int GetPeerName(int fd, SockAddr* out) {
  out->len = sizeof(out->storage);
  if (getpeername(fd, out->get(), &out->len) < 0) {
    out->len = 0;
    return -errno;
  }
  return 0;
}

int GetSockOptInt(int fd, int level, int opt, int* value) {
  if (level == SOL_SOCKET && opt == SO_LINGER) {
    struct linger l;
    socklen_t len = sizeof(l);
    if (getsockopt(fd, level, opt, &l, &len) < 0) return -errno;
    *value = l.l_onoff ? l.l_linger : -1;
    return 0;
  }
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, level, opt, &v, &len) < 0) return -errno;
  // A few options are a single byte on some systems.
  *value = len == 1 ? static_cast<int>(*reinterpret_cast<unsigned char*>(&v))
                    : v;
  return 0;
}

int SetSockOptInt(int fd, int level, int opt, int value) {
  if (level == SOL_SOCKET && opt == SO_LINGER) {
    struct linger l;
    l.l_onoff = value >= 0 ? 1 : 0;
    l.l_linger = value >= 0 ? value : 0;
    return setsockopt(fd, level, opt, &l, sizeof(l)) < 0 ? -errno : 0;
  }
  return setsockopt(fd, level, opt, &value, sizeof(value)) < 0 ? -errno : 0;
}

int64_t SendFile(int out_fd, int in_fd, off_t* offset, size_t count) {
#if defined(__linux__)
  if (count > 0x7ffff000u) count = 0x7ffff000u;
  for (;;) {
    ssize_t n = sendfile(out_fd, in_fd, offset, count);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
#else
  (void)out_fd;
  (void)in_fd;
  (void)offset;
  (void)count;
  return -ENOSYS;
#endif
}

// ---- addresses ---------------------------------------------------------------------

int MakeInetAddress(int family, const char* host, int port, uint32_t flowinfo,
                    uint32_t scope_id, SockAddr* out) {
  if (host == nullptr || ParsePort(port) < 0) return -EINVAL;
  if (family == AF_UNSPEC) {
    family = std::strchr(host, ':') != nullptr ? AF_INET6 : AF_INET;
  }
  std::memset(&out->storage, 0, sizeof(out->storage));
  out->len = 0;
  if (family == AF_INET) {
    if (flowinfo != 0 || scope_id != 0) return -EINVAL;
    auto* sin = reinterpret_cast<sockaddr_in*>(&out->storage);
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) return -EINVAL;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in);
    return 0;
  }
  if (family != AF_INET6) return -EINVAL;
  // Split "addr%scope"; the text part must fit INET6_ADDRSTRLEN.
  char text[INET6_ADDRSTRLEN];
  const char* pct = std::strchr(host, '%');
  size_t n = pct != nullptr ? static_cast<size_t>(pct - host)
                            : std::strlen(host);
  if (n == 0 || n >= sizeof(text)) return -EINVAL;
  std::memcpy(text, host, n);
  text[n] = '\0';
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) return -EINVAL;
  if (pct != nullptr) {
    int64_t scope = ParseScope(pct + 1);
    if (scope < 0) return static_cast<int>(scope);
    if (scope_id != 0 && scope_id != static_cast<uint32_t>(scope)) {
      return -EINVAL;
    }
    scope_id = static_cast<uint32_t>(scope);
  }
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(port));
  sin6->sin6_flowinfo = htonl(flowinfo);
  sin6->sin6_scope_id = scope_id;
  out->len = sizeof(sockaddr_in6);
  return 0;
}

int MakeUnixAddress(const char* path, size_t len, SockAddr* out) {
  auto* sun = reinterpret_cast<sockaddr_un*>(&out->storage);
  const bool abstract = len > 0 && path[0] == '\0';
  out->len = 0;
#if !defined(__linux__)
  if (abstract) return -EINVAL;
#endif
  // The kernel stops a filesystem path at its first NUL: refuse rather than
  // bind or connect to a shorter path than the caller named.
  if (!abstract && len > 0 && std::memchr(path, '\0', len) != nullptr) {
    return -EINVAL;
  }
  // A filesystem path needs its terminating NUL; an abstract name does not.
  if (len > sizeof(sun->sun_path) - (abstract ? 0 : 1)) {
    out->len = 0;
    return -ENAMETOOLONG;
  }
  std::memset(&out->storage, 0, sizeof(out->storage));
  sun->sun_family = AF_UNIX;
  if (len > 0) std::memcpy(sun->sun_path, path, len);
  out->len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len +
                                    (abstract || len == 0 ? 0 : 1));
  return 0;
}

int FormatAddress(const SockAddr& addr, AddressText* out) {
  out->family = AF_UNSPEC;
  out->host[0] = '\0';
  out->host_len = 0;
  out->port = 0;
  out->flowinfo = 0;
  out->scope_id = 0;
  if (addr.len < static_cast<socklen_t>(sizeof(sa_family_t))) return 0;
  switch (addr.storage.ss_family) {
    case AF_INET: {
      if (addr.len < static_cast<socklen_t>(sizeof(sockaddr_in))) return 0;
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr.storage);
      if (inet_ntop(AF_INET, &sin->sin_addr, out->host,
                    static_cast<socklen_t>(sizeof(out->host))) == nullptr) {
        return -errno;
      }
      out->family = AF_INET;
      out->host_len = std::strlen(out->host);
      out->port = ntohs(sin->sin_port);
      return 0;
    }
    case AF_INET6: {
      if (addr.len < static_cast<socklen_t>(sizeof(sockaddr_in6))) return 0;
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr.storage);
      if (inet_ntop(AF_INET6, &sin6->sin6_addr, out->host,
                    static_cast<socklen_t>(sizeof(out->host))) == nullptr) {
        return -errno;
      }
      out->family = AF_INET6;
      out->host_len = std::strlen(out->host);
      out->port = ntohs(sin6->sin6_port);
      out->flowinfo = ntohl(sin6->sin6_flowinfo);
      out->scope_id = sin6->sin6_scope_id;
      return 0;
    }
    case AF_UNIX: {
      const auto* sun = reinterpret_cast<const sockaddr_un*>(&addr.storage);
      const size_t base = offsetof(sockaddr_un, sun_path);
      size_t n = addr.len > base ? addr.len - base : 0;
      if (n > sizeof(sun->sun_path)) n = sizeof(sun->sun_path);
      // A filesystem path ends at its NUL (the kernel may count it or not);
      // an abstract name is every byte the kernel reported.
      if (n > 0 && sun->sun_path[0] != '\0') n = strnlen(sun->sun_path, n);
      std::memcpy(out->host, sun->sun_path, n);
      out->host[n] = '\0';
      out->host_len = n;
      out->family = AF_UNIX;
      return 0;
    }
    default:
      return -EAFNOSUPPORT;
  }
}

// ---- blocking checks and ownership ------------------------------------------

int SetNonBlockingCloexec(int fd) { return SetNonblockCloexec(fd); }

int MayBlock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  if (fl & O_NONBLOCK) return 0;
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) ? 0 : 1;
}

int FdRegistry::Add(int fd) {
  if (fds_.count(fd) != 0) return 0;
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  fds_.emplace(fd, Identity{static_cast<uint64_t>(st.st_dev),
                            static_cast<uint64_t>(st.st_ino)});
  return 0;
}

bool FdRegistry::Remove(int fd) { return fds_.erase(fd) != 0; }

size_t FdRegistry::CloseAll() {
  size_t closed = 0;
  for (const auto& [fd, id] : fds_) {
    struct stat st;
    if (fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_dev) == id.dev &&
        static_cast<uint64_t>(st.st_ino) == id.ino) {
      FdClose(fd);
      ++closed;
    }
  }
  fds_.clear();
  return closed;
}

}  // namespace aionode
