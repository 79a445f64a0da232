// Non-blocking socket calls: each returns a value or -errno and never
// throws. EAGAIN is an ordinary return, not an error. Every fd created here
// is non-blocking and close-on-exec. (The networking issue grows this file:
// socket, bind, listen, accept4, connect, sendmsg/recvmsg, ...)
#ifndef AIONODE_SOCKET_OPS_H_
#define AIONODE_SOCKET_OPS_H_

#include <cstddef>
#include <cstdint>

namespace aionode {

// socketpair(2) of `type` (SOCK_STREAM or SOCK_DGRAM) in AF_UNIX.
// Returns 0 and fills fds, or -errno.
int SocketPair(int type, int fds[2]);

// read(2) / write(2), retrying EINTR. Returns the byte count or -errno
// (-EAGAIN when nothing can be transferred now).
int64_t FdRead(int fd, void* buf, size_t len);
int64_t FdWrite(int fd, const void* buf, size_t len);

// close(2). Returns 0 or -errno. EINTR counts as closed (Linux semantics).
int FdClose(int fd);

}  // namespace aionode

#endif  // AIONODE_SOCKET_OPS_H_
