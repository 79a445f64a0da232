// JS functions over socket_ops: argument checks and errors only.
#include <napi.h>
#include <sys/socket.h>

#include <cerrno>
#include <cmath>

#include "errors.h"
#include "socket_ops.h"

namespace aionode {

namespace {

int RequireFd(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) ThrowArgType(info.Env(), "fd", "a non-negative integer", v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::trunc(d) || d > INT32_MAX) {
    ThrowArgType(info.Env(), "fd", "a non-negative integer", v);
  }
  return static_cast<int>(d);
}

Napi::Uint8Array RequireBytes(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowArgType(info.Env(), "buffer", "a Uint8Array or Buffer", info[i]);
  }
  return info[i].As<Napi::Uint8Array>();
}

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
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}

// read(fd, buf) -> bytes read (0 at EOF), or -EAGAIN; throws other errors.
Napi::Value ReadJs(const Napi::CallbackInfo& info) {
  int fd = RequireFd(info, 0);
  Napi::Uint8Array buf = RequireBytes(info, 1);
  int64_t n = FdRead(fd, buf.Data(), buf.ByteLength());
  if (n == -EAGAIN || n == -EWOULDBLOCK) return Napi::Number::New(info.Env(), -EAGAIN);
  ThrowIfError(info.Env(), static_cast<int>(n < 0 ? n : 0), "read");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// write(fd, buf) -> bytes written, or -EAGAIN; throws other errors.
Napi::Value WriteJs(const Napi::CallbackInfo& info) {
  int fd = RequireFd(info, 0);
  Napi::Uint8Array buf = RequireBytes(info, 1);
  int64_t n = FdWrite(fd, buf.Data(), buf.ByteLength());
  if (n == -EAGAIN || n == -EWOULDBLOCK) return Napi::Number::New(info.Env(), -EAGAIN);
  ThrowIfError(info.Env(), static_cast<int>(n < 0 ? n : 0), "write");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value CloseJs(const Napi::CallbackInfo& info) {
  int fd = RequireFd(info, 0);
  ThrowIfError(info.Env(), FdClose(fd), "close");
  return info.Env().Undefined();
}

}  // namespace

void InitSocketOps(Napi::Env env, Napi::Object exports) {
  exports.Set("socketpair", Napi::Function::New<SocketPairJs>(env, "socketpair"));
  exports.Set("read", Napi::Function::New<ReadJs>(env, "read"));
  exports.Set("write", Napi::Function::New<WriteJs>(env, "write"));
  exports.Set("close", Napi::Function::New<CloseJs>(env, "close"));
}

}  // namespace aionode
