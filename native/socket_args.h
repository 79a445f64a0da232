// Argument and ownership helpers of socket_wrap.cc that the proactor binding
// shares, so an address, a buffer list or an accepted fd means the same on
// both paths. Binding layer (napi.h); every function may throw as
// socket_wrap.cc's own do (TypeError / RangeError naming the argument).
#ifndef AIONODE_SOCKET_ARGS_H_
#define AIONODE_SOCKET_ARGS_H_

#include <napi.h>
#include <sys/uio.h>

#include "socket_ops.h"

namespace aionode {

// A JS address (see lib/native.ts) into `out`: 0, or -ENAMETOOLONG for a
// unix path that does not fit.
int ReadSocketAddress(napi_env env, napi_value v, const char* name,
                      SockAddr* out);
// [host, port], [host, port, flowinfo, scopeId], a unix path, or null.
Napi::Value SocketAddressToJs(Napi::Env env, const SockAddr& addr);
// Records `fd` in the environment's FdRegistry: the fd, or -errno (then
// the fd is closed).
int OwnFd(Napi::Env env, int fd);
// Forgets `fd`; true when it was the environment's.
bool DisownFd(Napi::Env env, int fd);

}  // namespace aionode

#endif  // AIONODE_SOCKET_ARGS_H_
