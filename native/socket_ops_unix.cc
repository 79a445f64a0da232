#include "socket_ops.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace aionode {

int SocketPair(int type, int fds[2]) {
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return -EINVAL;
  if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    return -errno;
  }
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
    // send(2) with MSG_NOSIGNAL would avoid SIGPIPE on sockets; write(2)
    // keeps this usable on pipes too, and Node ignores SIGPIPE anyway.
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

}  // namespace aionode
