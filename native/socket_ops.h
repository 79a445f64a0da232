// Non-blocking socket calls (POSIX; socket_ops_unix.cc).
//
// The contract, for every function here:
// - Returns a value (0, a byte count or an fd) or -errno, and never throws.
//   EAGAIN is an ordinary return, not an error: callers wait for readiness.
// - EINTR is retried inside (connect(2) excepted: see Connect).
// - Every fd created here is non-blocking and close-on-exec (F16).
// - Sends never raise SIGPIPE: MSG_NOSIGNAL on Linux, SO_NOSIGPIPE set at
//   socket()/accept() where MSG_NOSIGNAL does not exist (F4). A write to a
//   closed peer returns -EPIPE (or -ECONNRESET).
// - No name resolution: addresses are numeric text only (inet_pton); DNS is
//   the caller's business (node:dns, off the loop thread).
// - No state, no allocation: every function is safe from any thread for
//   distinct fds, as the syscalls underneath are. (FdRegistry, at the end,
//   is the one stateful piece: one instance per Node environment.)
#ifndef AIONODE_SOCKET_OPS_H_
#define AIONODE_SOCKET_OPS_H_

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace aionode {

// A socket address and its length, as the kernel takes and returns them.
struct SockAddr {
  sockaddr_storage storage;
  socklen_t len = 0;
  const sockaddr* get() const {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const { return len > 0 ? storage.ss_family : AF_UNSPEC; }
};

// A socket address in text form (FormatAddress).
struct AddressText {
  static constexpr size_t kMax = 128;  // >= INET6_ADDRSTRLEN, sun_path
  int family = AF_UNSPEC;  // AF_INET, AF_INET6, AF_UNIX; AF_UNSPEC: none
  // AF_INET / AF_INET6: the numeric host, NUL-terminated, without "%scope".
  // AF_UNIX: the path bytes (may start with '\0': Linux abstract namespace;
  // empty for an unnamed socket), also NUL-terminated for convenience.
  char host[kMax] = {0};
  size_t host_len = 0;
  int port = 0;             // AF_INET / AF_INET6
  uint32_t flowinfo = 0;    // AF_INET6
  uint32_t scope_id = 0;    // AF_INET6
};

// ---- pairs and plain fds (work on pipes too) --------------------------------

// socketpair(2) of `type` (SOCK_STREAM or SOCK_DGRAM) in AF_UNIX.
// Returns 0 and fills fds, or -errno.
int SocketPair(int type, int fds[2]);

// read(2) / write(2). Returns the byte count or -errno (-EAGAIN when
// nothing can be transferred now). FdWrite may raise SIGPIPE on a pipe;
// use Send/Writev for sockets.
int64_t FdRead(int fd, void* buf, size_t len);
int64_t FdWrite(int fd, const void* buf, size_t len);

// close(2). Returns 0 or -errno. EINTR counts as closed (Linux semantics).
int FdClose(int fd);

// ---- sockets ----------------------------------------------------------------

// socket(2) of family AF_INET, AF_INET6 or AF_UNIX (else -EAFNOSUPPORT) and
// type SOCK_STREAM or SOCK_DGRAM (else -EINVAL). Returns the fd or -errno.
int Socket(int family, int type, int protocol);

// bind(2) / listen(2). Return 0 or -errno.
int Bind(int fd, const SockAddr& addr);
int Listen(int fd, int backlog);

// accept4(2) with NONBLOCK | CLOEXEC. Returns the new fd or -errno
// (-EAGAIN: nothing pending; -ECONNABORTED: try again; -EMFILE/-ENFILE:
// out of fds, F3). `out` / `len` receive the peer address; both may be null.
int Accept4(int fd, sockaddr_storage* out, socklen_t* len);

// connect(2). Returns 0 (connected), -EINPROGRESS (a normal value: wait for
// writability, then read SO_ERROR) or -errno. An EINTR is reported as
// -EINPROGRESS: the connection carries on asynchronously and a retry would
// only say EALREADY.
int Connect(int fd, const SockAddr& addr);

// recv(2) / recvfrom(2) / recvmsg(2). Return the byte count (0 at EOF on a
// stream), or -errno (-EAGAIN when nothing is there). RecvFrom fills `from`
// (may be null; len 0 when the socket reports no address, e.g. TCP).
// RecvMsg scatters into `iovcnt` buffers (at most IOV_MAX are used) and
// falls back to readv(2) on a non-socket.
int64_t Recv(int fd, void* buf, size_t len, int flags);
int64_t RecvFrom(int fd, void* buf, size_t len, int flags, SockAddr* from);
int64_t RecvMsg(int fd, const struct iovec* iov, int iovcnt, int flags);

// send(2) / sendto(2), MSG_NOSIGNAL added. Return the byte count or -errno.
int64_t Send(int fd, const void* buf, size_t len, int flags);
int64_t SendTo(int fd, const void* buf, size_t len, int flags,
               const SockAddr& to);

// Gathering write: sendmsg(2) with MSG_NOSIGNAL, writev(2) on a non-socket
// (a pipe whose reader is gone raises SIGPIPE there; Node ignores it).
// At most IOV_MAX buffers go in one call (a partial write, as the kernel may
// do anyway). Returns the byte count or -errno; 0 buffers -> 0.
int64_t Writev(int fd, const struct iovec* iov, int iovcnt);

// shutdown(2): how is SHUT_RD, SHUT_WR or SHUT_RDWR. Returns 0 or -errno.
int Shutdown(int fd, int how);

// getsockname(2) / getpeername(2) into `out`. Return 0 or -errno.
int GetSockName(int fd, SockAddr* out);
int GetPeerName(int fd, SockAddr* out);

// getsockopt(2) / setsockopt(2) of an int option. Return 0 or -errno.
// SO_LINGER is mapped to one int: value >= 0 means {on, value seconds},
// a negative value means off (GetSockOptInt reports -1 when off).
int GetSockOptInt(int fd, int level, int opt, int* value);
int SetSockOptInt(int fd, int level, int opt, int value);

// sendfile(2) (Linux) from `in_fd` at *offset, advancing *offset by the
// count sent. count is clamped to 0x7ffff000 (the kernel's limit). Returns
// the byte count, 0 at end of file, or -errno; -ENOSYS on other systems.
// sendfile(2) takes no MSG_NOSIGNAL: a closed peer raises SIGPIPE unless it
// is ignored (Node ignores it at startup; a standalone caller must too).
int64_t SendFile(int out_fd, int in_fd, off_t* offset, size_t count);

// ---- addresses --------------------------------------------------------------

// A numeric host and a port as sockaddr_in / sockaddr_in6. `family` is
// AF_INET, AF_INET6 or AF_UNSPEC (pick by the text: a ':' means IPv6).
// IPv6 text may carry "%scope" (an interface name or number), which must
// agree with a non-zero scope_id. flowinfo / scope_id must be 0 for IPv4.
// Returns 0, or -EINVAL for a non-numeric host (no DNS), a port outside
// 0..65535 or a family mismatch; -ENXIO for an unknown interface name.
int MakeInetAddress(int family, const char* host, int port, uint32_t flowinfo,
                    uint32_t scope_id, SockAddr* out);

// An AF_UNIX address from `len` path bytes. A leading '\0' names the Linux
// abstract namespace (no terminator is added; any byte may follow, NULs
// included); an empty path is an unnamed address (bind: Linux autobind).
// Returns 0, -EINVAL for a filesystem path with an embedded NUL (the kernel
// would silently use the bytes before it: 'dir/sock\0evil' is 'dir/sock'),
// -EINVAL for an abstract name where there is no abstract namespace (not
// Linux), or -ENAMETOOLONG when the path does not fit sun_path (a
// filesystem path needs room for its NUL).
int MakeUnixAddress(const char* path, size_t len, SockAddr* out);

// Text form of an address (family, host, port / path). Returns 0, or
// -EAFNOSUPPORT for another family. A length too short for a family gives
// AF_UNSPEC (no address, e.g. recvfrom on TCP).
int FormatAddress(const SockAddr& addr, AddressText* out);

// ---- blocking checks and ownership ------------------------------------------

// Sets O_NONBLOCK and FD_CLOEXEC on an fd made elsewhere (asyncio's
// sock.setblocking(False) for a socket it is handed). Returns 0 or -errno.
int SetNonBlockingCloexec(int fd);

// Whether a call on `fd` may block the calling thread: 0 when it cannot
// (O_NONBLOCK is set, or a regular file or block device, which never wait
// for readiness), 1 when it can (a blocking socket, pipe, FIFO or tty), or
// -errno (-EBADF for a closed fd). Every fd created here is non-blocking;
// this is for fds that came from elsewhere.
int MayBlock(int fd);

// The fds one Node environment (the main thread or a worker) created
// through the addon and has neither closed nor handed away: the
// environment's cleanup closes whatever is left, so a terminated or exiting
// worker leaks no sockets (issue 8, item 8). Not thread-safe: each
// environment uses its own instance from its own thread.
//
// fd numbers are process-wide, and another thread may be given a number the
// moment it is closed. So only fds recorded here are ever closed by
// CloseAll, every close path must Remove first, and each entry keeps the
// file's identity (st_dev, st_ino): CloseAll skips a number that now names
// another file (the fd was closed behind the registry's back and reused).
class FdRegistry {
 public:
  FdRegistry() = default;
  FdRegistry(const FdRegistry&) = delete;
  FdRegistry& operator=(const FdRegistry&) = delete;
  ~FdRegistry() = default;  // forgets; the owner calls CloseAll first

  // Records `fd` (already recorded: no-op). Returns 0, or -errno when fstat
  // fails (-EBADF: not open); then nothing is recorded.
  int Add(int fd);
  // Forgets `fd` without closing it. Returns whether it was recorded.
  bool Remove(int fd);
  bool Has(int fd) const { return fds_.count(fd) != 0; }
  size_t Size() const { return fds_.size(); }
  // Closes every recorded fd that still names the file it was recorded
  // with, and forgets them all. Returns how many it closed.
  size_t CloseAll();

 private:
  struct Identity {
    uint64_t dev;
    uint64_t ino;
  };
  std::unordered_map<int, Identity> fds_;
};

}  // namespace aionode

#endif  // AIONODE_SOCKET_OPS_H_
