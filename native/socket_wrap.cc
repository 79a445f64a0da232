// JS functions over socket_ops: argument checks, value conversion and errors
// only; every syscall lives in socket_ops_unix.cc.
//
// Two error conventions (see lib/native.ts for the typed surface):
// - Data-path calls (connect, accept, recv, send, writev, recvfrom, recvmsg,
//   sendto, sendfile) RETURN -errno for every OS error, EAGAIN included:
//   errors there are frequent and the JS transport builds its own.
// - Setup calls (socket, bind, listen, shutdown, close, getsockname,
//   getpeername, getsockopt, setsockopt) THROW Node-shaped system errors
//   (code, errno, syscall; bind/listen add address and port).
// Bad arguments throw TypeError (wrong type) or RangeError (a number out of
// range), naming the argument and showing the value.
//
// Safety rules (issue 8):
// - Item 7: every function is registered through errors.h's Entry<> guard;
//   no C++ exception reaches Node, even while the environment terminates.
// - Item 8: every fd created here (socket, accept, socketpair) is recorded
//   in the environment's FdRegistry (addon.h) before any JS value is made,
//   and leaves it on close() or release(); the environment's cleanup hook
//   closes the rest, so a terminated or exiting worker leaks no socket.
// - Item 11: a raw data pointer is taken only after every JS value of the
//   call has been read. Reading an array element or an address part can run
//   user JS (a getter, a Proxy trap) that detaches or shrinks a buffer, so
//   all reads come first and nothing runs JS between the pointers and the
//   syscall.
// - Data-path calls never block the thread: fds made here are non-blocking;
//   an fd from elsewhere that could block (a blocking pipe, FIFO, socket or
//   tty) is refused with a TypeError before the syscall.
//
// Addresses: AF_INET [host, port]; AF_INET6 [host, port, flowinfo, scopeId];
// AF_UNIX a path string (a leading '\0' is the Linux abstract namespace).
// As an argument the family is read from the shape alone, no syscall: a
// string is AF_UNIX; a 3- or 4-element array is AF_INET6; a 2-element array
// is AF_INET6 when the host contains ':', else AF_INET. Hosts are numeric
// (no DNS); IPv6 hosts may carry "%scope".
//
// Hot paths (recv, send, writev, recvfrom, recvmsg, sendto) use the C API
// directly: one napi call per argument, no JS objects created except the
// returned number and, for recvfrom, the address strings.
#include <napi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"
#include "socket_ops.h"

namespace aionode {

namespace {

#if defined(IOV_MAX)
constexpr size_t kIovMax = IOV_MAX;
#else
constexpr size_t kIovMax = 1024;
#endif

// ---- argument checks ------------------------------------------------------------

[[noreturn]] void ThrowRange(Napi::Env env, const char* name,
                             const char* expected, double got) {
  ThrowArgRange(env, name, expected, Napi::Number::New(env, got));
}

// An integer in [min, max]: TypeError when not a number, RangeError when
// fractional or out of range.
double RequireInteger(napi_env env, napi_value v, const char* name,
                      double min, double max, const char* expected) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    ThrowArgType(Napi::Env(env), name, expected, Napi::Value(env, v));
  }
  if (!(d >= min && d <= max) || d != std::trunc(d)) {
    ThrowArgRange(Napi::Env(env), name, expected, Napi::Value(env, v));
  }
  return d;
}

int RequireFd(const Napi::CallbackInfo& info, size_t i,
              const char* name = "fd") {
  return static_cast<int>(RequireInteger(info.Env(), info[i], name, 0,
                                         INT32_MAX,
                                         "a non-negative integer"));
}

int RequireInt32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return static_cast<int>(RequireInteger(info.Env(), info[i], name, INT32_MIN,
                                         INT32_MAX, "a 32-bit integer"));
}

bool IsNullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok &&
         (t == napi_undefined || t == napi_null);
}

struct Bytes {
  uint8_t* data;
  size_t len;
};

// A Uint8Array (or Buffer) argument: one napi call.
Bytes RequireBytes(napi_env env, napi_value v, const char* name) {
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, nullptr,
                               nullptr) != napi_ok ||
      type != napi_uint8_array) {
    ThrowArgType(Napi::Env(env), name, "a Uint8Array or Buffer",
                 Napi::Value(env, v));
  }
  return Bytes{static_cast<uint8_t*>(data), len};
}

// buf, offset?, length? at info[i..i+2] -> the selected window.
Bytes RequireWindow(const Napi::CallbackInfo& info, size_t i) {
  napi_env env = info.Env();
  Bytes b = RequireBytes(env, info[i], "buffer");
  size_t offset = 0;
  if (info.Length() > i + 1 && !IsNullish(env, info[i + 1])) {
    offset = static_cast<size_t>(
        RequireInteger(env, info[i + 1], "offset", 0,
                       static_cast<double>(b.len),
                       "an integer from 0 to the buffer's length"));
  }
  size_t length = b.len - offset;
  if (info.Length() > i + 2 && !IsNullish(env, info[i + 2])) {
    length = static_cast<size_t>(RequireInteger(
        env, info[i + 2], "length", 0, static_cast<double>(b.len - offset),
        "an integer from 0 to the bytes after offset"));
  }
  return Bytes{b.data + offset, length};
}

// bufs: Uint8Array[] -> iov (at most kIovMax entries used). Returns the count.
// Two passes (item 11): first every element is read, which may run a getter
// that detaches or resizes any buffer of the list; only then are the data
// pointers taken, with no JS left to run before the syscall. A detached
// buffer has length 0 by then and contributes nothing.
int RequireIovecs(napi_env env, napi_value v, struct iovec* iov) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, v, &n) != napi_ok) {
    ThrowArgType(Napi::Env(env), "buffers", "an array of Uint8Array",
                 Napi::Value(env, v));
  }
  if (n > kIovMax) n = kIovMax;
  napi_value els[kIovMax];
  for (uint32_t k = 0; k < n; ++k) {
    if (napi_get_element(env, v, k, &els[k]) != napi_ok) {
      throw Napi::Error::New(Napi::Env(env));  // a pending exception (getter)
    }
  }
  for (uint32_t k = 0; k < n; ++k) {
    napi_value el = els[k];
    napi_typedarray_type type;
    size_t len = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, el, &type, &len, &data, nullptr,
                                 nullptr) != napi_ok ||
        type != napi_uint8_array) {
      std::string name = "buffers[" + std::to_string(k) + "]";
      ThrowArgType(Napi::Env(env), name.c_str(), "a Uint8Array or Buffer",
                   Napi::Value(env, el));
    }
    iov[k].iov_base = data;
    iov[k].iov_len = len;
  }
  return static_cast<int>(n);
}

// ---- addresses ------------------------------------------------------------------

[[noreturn]] void ThrowAddrShape(Napi::Env env, const char* name,
                                 const Napi::Value& got) {
  ThrowArgType(env, name,
               "[host, port], [host, port, flowinfo, scopeId] or a unix "
               "path string",
               got);
}

// Reads a JS address into `out`. Returns 0, or -ENAMETOOLONG for a unix path
// that does not fit sun_path (an OS-style error the caller reports in its
// own way, as Python's "AF_UNIX path too long" OSError). Throws TypeError /
// RangeError for a wrong shape, a non-numeric host, a port out of range, or
// a unix path with an embedded NUL (item 12: the kernel would use the bytes
// before it, so 'dir/sock\0evil' would bind or connect to 'dir/sock').
// A leading NUL is the Linux abstract namespace, whose names may contain
// any byte, NUL included.
int ReadAddress(napi_env env, napi_value v, const char* name, SockAddr* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) t = napi_undefined;
  out->len = 0;
  if (t == napi_string) {
    char small[sizeof(sockaddr_un::sun_path) + 1];
    std::string big;
    char* path = small;
    size_t len = 0;
    napi_get_value_string_utf8(env, v, nullptr, 0, &len);
    if (len >= sizeof(small)) {  // too long anyway; read it for the NUL check
      big.resize(len);
      path = big.data();
    }
    napi_get_value_string_utf8(env, v, path, len + 1, &len);
    if (len > 0 && path[0] != '\0' && std::memchr(path, '\0', len) != nullptr) {
      // Shown in full (up to sun_path and more): the NUL is the point.
      ThrowArgType(Napi::Env(env), name,
                   "a path without NUL bytes (a leading NUL: an abstract name)",
                   Napi::Value(env, v), 160);
    }
    if (len > sizeof(sockaddr_un::sun_path)) return -ENAMETOOLONG;
    int rc = MakeUnixAddress(path, len, out);
    if (rc == -EINVAL) {  // an abstract name where there is no such thing
      ThrowArgType(Napi::Env(env), name,
                   "a path (abstract names are Linux only)",
                   Napi::Value(env, v));
    }
    return rc;
  }
  bool is_array = false;
  uint32_t n = 0;
  napi_is_array(env, v, &is_array);
  if (!is_array || napi_get_array_length(env, v, &n) != napi_ok || n < 2 ||
      n > 4) {
    ThrowAddrShape(Napi::Env(env), name, Napi::Value(env, v));
  }
  napi_value el[4];
  for (uint32_t k = 0; k < n; ++k) {
    if (napi_get_element(env, v, k, &el[k]) != napi_ok) {
      throw Napi::Error::New(Napi::Env(env));
    }
  }
  // Longest numeric text: IPv6 (45) + '%' + interface name or index.
  char host[INET6_ADDRSTRLEN + 1 + 32];
  size_t host_len = 0;
  std::string field = std::string(name) + "[0]";
  if (napi_get_value_string_utf8(env, el[0], host, sizeof(host), &host_len) !=
      napi_ok) {
    ThrowArgType(Napi::Env(env), field.c_str(), "a host string",
                 Napi::Value(env, el[0]));
  }
  field[field.size() - 2] = '1';
  int port = static_cast<int>(RequireInteger(env, el[1], field.c_str(), 0,
                                             65535, "a port from 0 to 65535"));
  uint32_t flowinfo = 0;
  uint32_t scope_id = 0;
  if (n > 2) {
    field[field.size() - 2] = '2';
    flowinfo = static_cast<uint32_t>(RequireInteger(
        env, el[2], field.c_str(), 0, UINT32_MAX, "a 32-bit unsigned integer"));
  }
  if (n > 3) {
    field[field.size() - 2] = '3';
    scope_id = static_cast<uint32_t>(RequireInteger(
        env, el[3], field.c_str(), 0, UINT32_MAX, "a 32-bit unsigned integer"));
  }
  // Too long for the buffer (truncated) or an embedded NUL: not numeric.
  int rc = -EINVAL;
  if (host_len + 1 < sizeof(host) && std::strlen(host) == host_len) {
    rc = MakeInetAddress(n > 2 ? AF_INET6 : AF_UNSPEC, host, port, flowinfo,
                         scope_id, out);
  }
  if (rc < 0) {
    std::string msg = std::string("Expected \"") + name + "[0]\" to be a " +
                      (n > 2 ? "numeric IPv6 address" : "numeric IP address") +
                      (rc == -ENXIO ? " with a known interface as scope"
                                    : " (no name resolution)") +
                      ", got \"" +
                      Napi::Value(env, el[0]).As<Napi::String>().Utf8Value() +
                      "\"";
    throw Napi::TypeError::New(Napi::Env(env), msg);
  }
  return 0;
}

// "127.0.0.1:8080", "::1:8080" (Node's style), or the unix path.
std::string Describe(const AddressText& t) {
  if (t.family == AF_UNIX) return std::string(t.host, t.host_len);
  if (t.family == AF_UNSPEC) return std::string();
  return std::string(t.host) + ":" + std::to_string(t.port);
}

Napi::Value ToJsAddress(Napi::Env env, const AddressText& t) {
  switch (t.family) {
    case AF_INET: {
      Napi::Array a = Napi::Array::New(env, 2);
      a.Set(0u, Napi::String::New(env, t.host, t.host_len));
      a.Set(1u, Napi::Number::New(env, t.port));
      return a;
    }
    case AF_INET6: {
      Napi::Array a = Napi::Array::New(env, 4);
      a.Set(0u, Napi::String::New(env, t.host, t.host_len));
      a.Set(1u, Napi::Number::New(env, t.port));
      a.Set(2u, Napi::Number::New(env, t.flowinfo));
      a.Set(3u, Napi::Number::New(env, t.scope_id));
      return a;
    }
    case AF_UNIX:
      return Napi::String::New(env, t.host, t.host_len);
    default:
      return env.Null();
  }
}

// Writes the address into the caller's array: [host, port] (AF_INET),
// [host, port, flowinfo, scopeId] (AF_INET6), [path] (AF_UNIX), [] (none);
// its length is set to match.
void FillAddress(napi_env env, napi_value arr, const SockAddr& addr) {
  AddressText t;
  FormatAddress(addr, &t);
  napi_value v;
  uint32_t n = 0;
  if (t.family == AF_INET || t.family == AF_INET6 || t.family == AF_UNIX) {
    napi_create_string_utf8(env, t.host, t.host_len, &v);
    napi_set_element(env, arr, n++, v);
  }
  if (t.family == AF_INET || t.family == AF_INET6) {
    napi_create_int32(env, t.port, &v);
    napi_set_element(env, arr, n++, v);
  }
  if (t.family == AF_INET6) {
    napi_create_uint32(env, t.flowinfo, &v);
    napi_set_element(env, arr, n++, v);
    napi_create_uint32(env, t.scope_id, &v);
    napi_set_element(env, arr, n++, v);
  }
  uint32_t had = 0;
  napi_get_array_length(env, arr, &had);
  if (had != n) {  // steady state (same family every call): nothing to do
    napi_value len;
    napi_create_uint32(env, n, &len);
    napi_set_named_property(env, arr, "length", len);
  }
}

napi_value RequireAddrOut(const Napi::CallbackInfo& info, size_t i) {
  napi_env env = info.Env();
  napi_value v = info[i];
  bool is_array = false;
  napi_is_array(env, v, &is_array);
  if (!is_array) ThrowArgType(info.Env(), "addrOut", "an array", info[i]);
  return v;
}

// Throws the setup error for `syscall` with the address in the message and
// as `address` / `port` properties, as Node's net errors have them.
[[noreturn]] void ThrowAt(Napi::Env env, int rc, const char* syscall,
                          const AddressText& t) {
  Napi::Error err = MakeOsError(env, rc, syscall, Describe(t));
  if (t.family == AF_INET || t.family == AF_INET6 || t.family == AF_UNIX) {
    err.Value().Set("address", Napi::String::New(env, t.host, t.host_len));
  }
  if (t.family == AF_INET || t.family == AF_INET6) {
    err.Value().Set("port", Napi::Number::New(env, t.port));
  }
  throw err;
}

inline Napi::Value Num(napi_env env, int64_t n) {
  napi_value v;
  if (n >= INT32_MIN && n <= INT32_MAX) {
    napi_create_int32(env, static_cast<int32_t>(n), &v);
  } else {
    napi_create_double(env, static_cast<double>(n), &v);
  }
  return Napi::Value(env, v);
}

// ---- ownership and blocking ---------------------------------------------------------

// Records a new fd as the environment's (item 8). Called right after the
// syscall, before any JS value is made, so an fd is never made without an
// owner. When it cannot be recorded (out of memory) the fd is closed and
// -ENOMEM returned: an fd nobody would close is worse than a failed call.
int Own(Napi::Env env, int fd) {
  if (fd < 0) return fd;
  AddonData* data = GetAddonData(env);
  if (data == nullptr) return fd;  // no environment state: nothing to tie to
  int rc;
  try {
    rc = data->fds.Add(fd);
  } catch (...) {  // std::bad_alloc from the map
    rc = -ENOMEM;
  }
  if (rc < 0) {
    FdClose(fd);
    return rc;
  }
  return fd;
}

// Forgets `fd` (close and release); true when it was the environment's.
bool Disown(Napi::Env env, int fd) {
  AddonData* data = GetAddonData(env);
  return data != nullptr && data->fds.Remove(fd);
}

// The fd argument of a data-path call: refused when a call on it could
// block the thread (an fd made elsewhere without O_NONBLOCK). fds made here
// are non-blocking, which one lookup shows, without a syscall.
int RequireDataFd(const Napi::CallbackInfo& info, size_t i,
                  const char* name = "fd") {
  int fd = RequireFd(info, i, name);
  AddonData* data = GetAddonData(info.Env());
  if (data != nullptr && data->fds.Has(fd)) return fd;
  if (MayBlock(fd) == 1) {  // errors (EBADF, ...) are the call's to report
    ThrowArgType(info.Env(), name,
                 "a non-blocking descriptor (O_NONBLOCK; this one would "
                 "block the thread)",
                 info[i]);
  }
  return fd;
}

// ---- original four: socketpair / read / write / close ------------------------------

// socketpair(type = 'stream' | 'dgram') -> [fd, fd]
Napi::Value SocketPairJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int type = SOCK_STREAM;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    std::string t = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    if (t == "dgram") {
      type = SOCK_DGRAM;
    } else if (t != "stream") {
      ThrowArgType(env, "type", "'stream' or 'dgram'", info[0]);
    }
  }
  int fds[2];
  ThrowIfError(env, SocketPair(type, fds), "socketpair");
  int rc = Own(env, fds[0]);
  if (rc >= 0) rc = Own(env, fds[1]);
  if (rc < 0) {  // one of them was closed by Own; close the other too
    if (Disown(env, fds[0])) FdClose(fds[0]);
    if (Disown(env, fds[1])) FdClose(fds[1]);
    ThrowIfError(env, rc, "socketpair");
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}

// read(fd, buf) -> bytes read (0 at EOF), or -EAGAIN; throws other errors.
Napi::Value ReadJs(const Napi::CallbackInfo& info) {
  int fd = RequireDataFd(info, 0);
  Bytes buf = RequireBytes(info.Env(), info[1], "buffer");
  int64_t n = FdRead(fd, buf.data, buf.len);
  if (n == -EAGAIN || n == -EWOULDBLOCK) return Num(info.Env(), -EAGAIN);
  ThrowIfError(info.Env(), static_cast<int>(n < 0 ? n : 0), "read");
  return Num(info.Env(), n);
}

// write(fd, buf) -> bytes written, or -EAGAIN; throws other errors.
Napi::Value WriteJs(const Napi::CallbackInfo& info) {
  int fd = RequireDataFd(info, 0);
  Bytes buf = RequireBytes(info.Env(), info[1], "buffer");
  int64_t n = FdWrite(fd, buf.data, buf.len);
  if (n == -EAGAIN || n == -EWOULDBLOCK) return Num(info.Env(), -EAGAIN);
  ThrowIfError(info.Env(), static_cast<int>(n < 0 ? n : 0), "write");
  return Num(info.Env(), n);
}

// close(fd): forgets the fd (it is no longer the environment's), then
// closes it. Any fd may be closed, as with os.close(); only the registry's
// fds are ever closed by the environment's cleanup.
Napi::Value CloseJs(const Napi::CallbackInfo& info) {
  int fd = RequireFd(info, 0);
  Disown(info.Env(), fd);
  ThrowIfError(info.Env(), FdClose(fd), "close");
  return info.Env().Undefined();
}

// release(fd) -> boolean: forgets the fd without closing it (the caller
// hands it to someone else, e.g. Socket.detach()); true when it was owned.
Napi::Value ReleaseJs(const Napi::CallbackInfo& info) {
  int fd = RequireFd(info, 0);
  return Napi::Boolean::New(info.Env(), Disown(info.Env(), fd));
}

// adopt(fd) -> boolean: makes an fd from elsewhere the environment's (closed
// at teardown unless closed or released first), setting O_NONBLOCK and
// FD_CLOEXEC as asyncio's setblocking(False) does for a socket it is
// handed. True when newly recorded, false when it was already owned (every
// fd from socket/accept/socketpair is). Throws EBADF for a closed fd.
Napi::Value AdoptJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0);
  AddonData* data = GetAddonData(env);
  if (data != nullptr && data->fds.Has(fd)) return Napi::Boolean::New(env, false);
  ThrowIfError(env, SetNonBlockingCloexec(fd), "adopt");
  if (data == nullptr) return Napi::Boolean::New(env, false);
  ThrowIfError(env, data->fds.Add(fd), "adopt");
  return Napi::Boolean::New(env, true);
}

// ownedFds() -> how many fds the environment owns (tests, leak checks).
Napi::Value OwnedFdsJs(const Napi::CallbackInfo& info) {
  AddonData* data = GetAddonData(info.Env());
  return Napi::Number::New(info.Env(),
                           data != nullptr ? static_cast<double>(data->fds.Size()) : 0);
}

// ---- setup calls: throw --------------------------------------------------------------

// socket(family, type, protocol = 0) -> fd
Napi::Value SocketJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = RequireInt32(info, 0, "family");
  int type = RequireInt32(info, 1, "type");
  int protocol = 0;
  if (info.Length() > 2 && !IsNullish(env, info[2])) {
    protocol = RequireInt32(info, 2, "protocol");
  }
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) {
    ThrowRange(env, "family", "AF_INET, AF_INET6 or AF_UNIX", family);
  }
  if (type != SOCK_STREAM && type != SOCK_DGRAM) {
    ThrowRange(env, "type", "SOCK_STREAM or SOCK_DGRAM", type);
  }
  return Num(env, ThrowIfError(env, Own(env, Socket(family, type, protocol)),
                               "socket"));
}

// bind(fd, addr)
Napi::Value BindJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0);
  SockAddr addr;
  int rc = ReadAddress(env, info[1], "addr", &addr);
  if (rc == 0) rc = Bind(fd, addr);
  if (rc < 0) {
    AddressText t;
    if (addr.len > 0) {
      FormatAddress(addr, &t);
    } else {  // the path did not fit: report it as given
      std::string p = info[1].As<Napi::String>().Utf8Value();
      t.family = AF_UNIX;
      t.host_len = p.size() < AddressText::kMax - 1 ? p.size()
                                                     : AddressText::kMax - 1;
      std::memcpy(t.host, p.data(), t.host_len);
    }
    ThrowAt(env, rc, "bind", t);
  }
  return env.Undefined();
}

// listen(fd, backlog)
Napi::Value ListenJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0);
  int backlog = static_cast<int>(RequireInteger(
      env, info[1], "backlog", 0, INT32_MAX, "a non-negative integer"));
  int rc = Listen(fd, backlog);
  if (rc < 0) {
    SockAddr addr;
    AddressText t;
    if (GetSockName(fd, &addr) == 0) FormatAddress(addr, &t);
    ThrowAt(env, rc, "listen", t);
  }
  return env.Undefined();
}

// shutdown(fd, how)
Napi::Value ShutdownJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0);
  int how = RequireInt32(info, 1, "how");
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
    ThrowRange(env, "how", "SHUT_RD, SHUT_WR or SHUT_RDWR", how);
  }
  ThrowIfError(env, Shutdown(fd, how), "shutdown");
  return env.Undefined();
}

Napi::Value GetSockNameJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0);
  SockAddr addr;
  ThrowIfError(env, GetSockName(fd, &addr), "getsockname");
  AddressText t;
  ThrowIfError(env, FormatAddress(addr, &t), "getsockname");
  return ToJsAddress(env, t);
}

Napi::Value GetPeerNameJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0);
  SockAddr addr;
  ThrowIfError(env, GetPeerName(fd, &addr), "getpeername");
  AddressText t;
  ThrowIfError(env, FormatAddress(addr, &t), "getpeername");
  return ToJsAddress(env, t);
}

// getsockopt(fd, level, opt) -> int
Napi::Value GetSockOptJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0);
  int level = RequireInt32(info, 1, "level");
  int opt = RequireInt32(info, 2, "option");
  int value = 0;
  ThrowIfError(env, GetSockOptInt(fd, level, opt, &value), "getsockopt");
  return Num(env, value);
}

// setsockopt(fd, level, opt, value: int | boolean)
Napi::Value SetSockOptJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0);
  int level = RequireInt32(info, 1, "level");
  int opt = RequireInt32(info, 2, "option");
  int value;
  if (info[3].IsBoolean()) {
    value = info[3].As<Napi::Boolean>().Value() ? 1 : 0;
  } else {
    value = RequireInt32(info, 3, "value");
  }
  ThrowIfError(env, SetSockOptInt(fd, level, opt, value), "setsockopt");
  return env.Undefined();
}

// ---- data path: -errno is a return value ------------------------------------------------

// connect(fd, addr) -> 0 | -EINPROGRESS | -errno
Napi::Value ConnectJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireDataFd(info, 0);
  SockAddr addr;
  int rc = ReadAddress(env, info[1], "addr", &addr);
  if (rc == 0) rc = Connect(fd, addr);
  return Num(env, rc);
}

// accept(fd, addrOut?) -> fd | -errno; fills addrOut with the peer address.
Napi::Value AcceptJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = RequireDataFd(info, 0);
  napi_value out = nullptr;
  if (info.Length() > 1 && !IsNullish(env, info[1])) {
    out = RequireAddrOut(info, 1);
  }
  SockAddr addr;
  int c = Own(info.Env(), Accept4(fd, &addr.storage, &addr.len));
  if (c >= 0 && out != nullptr) {
    FillAddress(env, out, addr);
    // A setter on addrOut threw: the caller will never see the fd, so it
    // must not stay open (the connection is dropped, as on any accept error).
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) != napi_ok || pending) {
      Disown(info.Env(), c);
      FdClose(c);
      return Napi::Value();
    }
  }
  return Num(env, c);
}

// recv(fd, buf, offset?, length?) -> n | 0 at EOF | -errno
Napi::Value RecvJs(const Napi::CallbackInfo& info) {
  int fd = RequireDataFd(info, 0);
  Bytes b = RequireWindow(info, 1);
  return Num(info.Env(), Recv(fd, b.data, b.len, 0));
}

// send(fd, buf, offset?, length?) -> n | -errno
Napi::Value SendJs(const Napi::CallbackInfo& info) {
  int fd = RequireDataFd(info, 0);
  Bytes b = RequireWindow(info, 1);
  return Num(info.Env(), Send(fd, b.data, b.len, 0));
}

// writev(fd, bufs) -> n | -errno
Napi::Value WritevJs(const Napi::CallbackInfo& info) {
  int fd = RequireDataFd(info, 0);
  struct iovec iov[kIovMax];
  int n = RequireIovecs(info.Env(), info[1], iov);
  return Num(info.Env(), Writev(fd, iov, n));
}

// recvmsg(fd, bufs) -> n | -errno
Napi::Value RecvMsgJs(const Napi::CallbackInfo& info) {
  int fd = RequireDataFd(info, 0);
  struct iovec iov[kIovMax];
  int n = RequireIovecs(info.Env(), info[1], iov);
  return Num(info.Env(), RecvMsg(fd, iov, n, 0));
}

// recvfrom(fd, buf, addrOut) -> n | -errno; addrOut gets the sender.
Napi::Value RecvFromJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = RequireDataFd(info, 0);
  Bytes b = RequireBytes(env, info[1], "buffer");
  napi_value out = nullptr;
  if (!IsNullish(env, info[2])) out = RequireAddrOut(info, 2);
  SockAddr from;
  int64_t n = RecvFrom(fd, b.data, b.len, 0, &from);
  if (n >= 0 && out != nullptr) FillAddress(env, out, from);
  return Num(env, n);
}

// sendto(fd, buf, addr) -> n | -errno
Napi::Value SendToJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = RequireDataFd(info, 0);
  // The address first: reading it may run getters (item 11), which must not
  // run between taking the buffer's pointer and the syscall.
  SockAddr to;
  int rc = ReadAddress(env, info[2], "addr", &to);
  Bytes b = RequireBytes(env, info[1], "buffer");
  if (rc < 0) return Num(env, rc);
  return Num(env, SendTo(fd, b.data, b.len, 0, to));
}

// sendfile(outFd, inFd, offset, count) -> n | -errno
Napi::Value SendFileJs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int out_fd = RequireDataFd(info, 0, "outFd");
  int in_fd = RequireFd(info, 1, "inFd");
  double off = RequireInteger(env, info[2], "offset", 0, 9007199254740991.0,
                              "a non-negative safe integer");
  double count = RequireInteger(env, info[3], "count", 0, 9007199254740991.0,
                                "a non-negative safe integer");
  off_t offset = static_cast<off_t>(off);
  return Num(env, SendFile(out_fd, in_fd, &offset, static_cast<size_t>(count)));
}

// ---- constants ------------------------------------------------------------------

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* name, int v) { c.Set(name, Napi::Number::New(env, v)); };
  set("AF_UNSPEC", AF_UNSPEC);
  set("AF_INET", AF_INET);
  set("AF_INET6", AF_INET6);
  set("AF_UNIX", AF_UNIX);
  set("SOCK_STREAM", SOCK_STREAM);
  set("SOCK_DGRAM", SOCK_DGRAM);
  set("SOL_SOCKET", SOL_SOCKET);
  set("SO_REUSEADDR", SO_REUSEADDR);
#if defined(SO_REUSEPORT)
  set("SO_REUSEPORT", SO_REUSEPORT);
#endif
  set("SO_KEEPALIVE", SO_KEEPALIVE);
  set("SO_ERROR", SO_ERROR);
  set("SO_RCVBUF", SO_RCVBUF);
  set("SO_SNDBUF", SO_SNDBUF);
  set("SO_BROADCAST", SO_BROADCAST);
  set("SO_LINGER", SO_LINGER);
  set("SO_TYPE", SO_TYPE);
  set("SOMAXCONN", SOMAXCONN);
  set("IPPROTO_TCP", IPPROTO_TCP);
  set("IPPROTO_UDP", IPPROTO_UDP);
  set("TCP_NODELAY", TCP_NODELAY);
  set("IPPROTO_IP", IPPROTO_IP);
  set("IPPROTO_IPV6", IPPROTO_IPV6);
  set("IPV6_V6ONLY", IPV6_V6ONLY);
  set("SHUT_RD", SHUT_RD);
  set("SHUT_WR", SHUT_WR);
  set("SHUT_RDWR", SHUT_RDWR);
  // errno values (positive; data-path calls return them negated)
  set("EAGAIN", EAGAIN);
  set("EWOULDBLOCK", EWOULDBLOCK);
  set("EINPROGRESS", EINPROGRESS);
  set("EALREADY", EALREADY);
  set("EISCONN", EISCONN);
  set("EINTR", EINTR);
  set("ECONNRESET", ECONNRESET);
  set("ECONNABORTED", ECONNABORTED);
  set("EPIPE", EPIPE);
  set("ECONNREFUSED", ECONNREFUSED);
  set("ENOTCONN", ENOTCONN);
  set("EBADF", EBADF);
  set("EMFILE", EMFILE);
  set("ENFILE", ENFILE);
  set("ENOBUFS", ENOBUFS);
  set("ENOMEM", ENOMEM);
  set("EMSGSIZE", EMSGSIZE);
  set("ETIMEDOUT", ETIMEDOUT);
  set("ENAMETOOLONG", ENAMETOOLONG);
  set("ENOSYS", ENOSYS);
  set("EINVAL", EINVAL);
  set("ENOTSOCK", ENOTSOCK);
  set("EADDRINUSE", EADDRINUSE);
  set("EAFNOSUPPORT", EAFNOSUPPORT);
  set("EOPNOTSUPP", EOPNOTSUPP);
  c.Freeze();
  return c;
}

}  // namespace

void InitSocketOps(Napi::Env env, Napi::Object exports) {
  SetFunction<SocketPairJs>(env, exports, "socketpair");
  SetFunction<ReadJs>(env, exports, "read");
  SetFunction<WriteJs>(env, exports, "write");
  SetFunction<CloseJs>(env, exports, "close");
  SetFunction<ReleaseJs>(env, exports, "release");
  SetFunction<AdoptJs>(env, exports, "adopt");
  SetFunction<OwnedFdsJs>(env, exports, "ownedFds");
  SetFunction<SocketJs>(env, exports, "socket");
  SetFunction<BindJs>(env, exports, "bind");
  SetFunction<ListenJs>(env, exports, "listen");
  SetFunction<ShutdownJs>(env, exports, "shutdown");
  SetFunction<GetSockNameJs>(env, exports, "getsockname");
  SetFunction<GetPeerNameJs>(env, exports, "getpeername");
  SetFunction<GetSockOptJs>(env, exports, "getsockopt");
  SetFunction<SetSockOptJs>(env, exports, "setsockopt");
  SetFunction<ConnectJs>(env, exports, "connect");
  SetFunction<AcceptJs>(env, exports, "accept");
  SetFunction<RecvJs>(env, exports, "recv");
  SetFunction<SendJs>(env, exports, "send");
  SetFunction<WritevJs>(env, exports, "writev");
  SetFunction<RecvMsgJs>(env, exports, "recvmsg");
  SetFunction<RecvFromJs>(env, exports, "recvfrom");
  SetFunction<SendToJs>(env, exports, "sendto");
  SetFunction<SendFileJs>(env, exports, "sendfile");
  exports.Set("constants", Constants(env));
}

// ---- shared with the proactor binding (socket_args.h) ------------------------

int ReadSocketAddress(napi_env env, napi_value v, const char* name,
                      SockAddr* out) {
  return ReadAddress(env, v, name, out);
}

Napi::Value SocketAddressToJs(Napi::Env env, const SockAddr& addr) {
  AddressText t;
  if (FormatAddress(addr, &t) < 0) return env.Null();
  return ToJsAddress(env, t);
}

int OwnFd(Napi::Env env, int fd) { return Own(env, fd); }

bool DisownFd(Napi::Env env, int fd) { return Disown(env, fd); }

}  // namespace aionode
