// NativeChannel: the JavaScript face of a threadsafe_channel.h Channel whose
// target is this environment's thread (issue 10 item 4).
//
//   new NativeChannel(onMessages[, maxBatchBytes])   opens a channel with a
//       fresh id; its wake-up is a uv_async_t on this environment's libuv
//       loop, unref'd (an idle channel never holds the process open; ref()
//       for a caller awaiting replies). Each wake-up drains up to
//       maxBatchBytes of payload (default 64 MiB; more waits for the next
//       turn, so one wake-up never needs one huge allocation and the uint32
//       `ends` cannot overflow) and calls
//       onMessages(kinds: Int32Array, data: Buffer, ends: Uint32Array) once,
//       through napi_make_callback, so microtasks drain after it. When the
//       batch cannot be handed over (its buffer cannot be allocated), it is
//       lost, the calls in it are answered as undeliverable, and
//       onMessages(null, null, null, error, lostCount) says so.
//   channel.settle(replyTo, token)  claims the right to answer a call
//       drained here (threadsafe_channel.h): true once, false when Close()
//       has answered it already.
//   channelPost(id, kind, bytes[, replyTo, token])   from any thread: 0,
//       -ENOENT, -EPIPE. With replyTo the message is a call, answered by
//       the channel itself if it closes first.
//
// Lifetime: the wrapper holds onMessages weakly (the JS object that owns
// the channel keeps it alive), so a dropped loop is still collected and its
// channel closed by the finalizer. The uv handle and the channel's
// registration go on close(), on the wrapper's finalizer, or at environment
// teardown (async cleanup hook), whichever comes first; the core is freed by
// the uv_close callback. Channel::Close() forgets the wake-up under the
// channel mutex before uv_close, so a sender on another thread never
// touches a closing handle.
#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "threadsafe_channel.h"

namespace aionode {
namespace {

class ChannelWrap;

struct ChannelCore {
  napi_env env = nullptr;
  ChannelWrap* owner = nullptr;
  uv_async_t* async = nullptr;
  std::shared_ptr<Channel> ch;
  napi_async_cleanup_hook_handle cleanup = nullptr;
  bool closing = false;
  bool refed = false;
};

void WakeAsync(void* arg) { uv_async_send(static_cast<uv_async_t*>(arg)); }

void DetachOwner(ChannelCore* c);

void OnClosed(uv_handle_t* h) {
  auto* c = static_cast<ChannelCore*>(h->data);
  delete reinterpret_cast<uv_async_t*>(h);
  if (c->cleanup != nullptr) napi_remove_async_cleanup_hook(c->cleanup);
  // A wrapper still alive (teardown closed the core first) must not reach
  // the freed core from its finalizer.
  DetachOwner(c);
  delete c;
}

void CloseChannelCore(ChannelCore* c) noexcept {
  if (c == nullptr || c->closing) return;
  c->closing = true;
  // After Remove() no sender can reach the async handle: it is safe to close.
  channels::Remove(c->ch);
  c->ch.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(c->async), OnClosed);
}

void OnCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* c = static_cast<ChannelCore*>(arg);
  c->cleanup = handle;
  CloseChannelCore(c);
}

void OnAsync(uv_async_t* h);
bool ParseId(const Napi::Value& v, uint64_t* out);
bool ParseToken(const Napi::Value& v, uint64_t* out);

// The most payload one wake-up hands to JavaScript.
constexpr size_t kMaxBatchBytes = size_t{64} << 20;

class ChannelWrap : public Napi::ObjectWrap<ChannelWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeChannel",
                       {InstanceMethod<&ChannelWrap::Close>("close"),
                        InstanceMethod<&ChannelWrap::Settle>("settle"),
                        InstanceMethod<&ChannelWrap::Ref>("ref"),
                        InstanceMethod<&ChannelWrap::Unref>("unref"),
                        InstanceAccessor<&ChannelWrap::GetId>("id"),
                        InstanceAccessor<&ChannelWrap::GetClosed>("closed"),
                        InstanceAccessor<&ChannelWrap::GetQueued>("queued"),
                        InstanceAccessor<&ChannelWrap::GetOpenCalls>("openCalls")});
  }

  explicit ChannelWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<ChannelWrap>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) {
      ThrowArgType(env, "onMessages", "a function", info[0]);
    }
    if (!info[1].IsUndefined()) {
      double cap = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
      if (!(cap >= 1 && cap <= static_cast<double>(kMaxBatchBytes))) {
        ThrowArgType(env, "maxBatchBytes", "a number of bytes from 1 to 64 MiB", info[1]);
      }
      max_batch_bytes_ = static_cast<size_t>(cap);
    }
    uv_loop_t* uvloop = nullptr;
    if (napi_get_uv_event_loop(env, &uvloop) != napi_ok || uvloop == nullptr) {
      throw Napi::Error::New(env, "NativeChannel: no libuv loop in this environment");
    }
    NAPI_THROW_IF_FAILED_VOID(
        env, napi_create_reference(env, info[0], 0, &on_messages_));
    NAPI_THROW_IF_FAILED_VOID(
        env, napi_create_reference(env, info.This(), 0, &self_ref_));
    napi_value name;
    NAPI_THROW_IF_FAILED_VOID(
        env, napi_create_string_utf8(env, "aionode.NativeChannel",
                                     NAPI_AUTO_LENGTH, &name));
    NAPI_THROW_IF_FAILED_VOID(
        env, napi_async_init(env, info.This(), name, &async_context_));

    auto c = std::make_unique<ChannelCore>();
    c->env = env;
    c->async = new uv_async_t;
    // Nothing below throws: the handle is made last.
    uv_async_init(uvloop, c->async, OnAsync);
    c->async->data = c.get();
    uv_unref(reinterpret_cast<uv_handle_t*>(c->async));
    c->ch = channels::Open(WakeAsync, c->async);
    id_ = c->ch->id();
    core_ = c.release();
    core_->owner = this;
    if (napi_add_async_cleanup_hook(env, OnCleanup, core_, &core_->cleanup) !=
        napi_ok) {
      core_->cleanup = nullptr;
    }
  }

  ~ChannelWrap() override {
    if (core_ != nullptr) {
      core_->owner = nullptr;
      CloseChannelCore(core_);
      core_ = nullptr;
    }
    if (on_messages_ != nullptr) napi_delete_reference(env_, on_messages_);
    if (self_ref_ != nullptr) napi_delete_reference(env_, self_ref_);
    if (async_context_ != nullptr) napi_async_destroy(env_, async_context_);
  }

  void Detach() { core_ = nullptr; }

  // One wake-up: drain a batch (at most max_batch_bytes_; the core asks
  // for another turn for the rest) and hand it to JS in one call.
  void Deliver(ChannelCore* c) noexcept {
    if (c->ch == nullptr) return;
    std::vector<ChannelMessage> msgs;
    if (c->ch->Drain(&msgs, max_batch_bytes_) == 0) return;
    napi_env env = env_;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) {
      c->ch->Abandon(msgs, kAbandonUndeliverable);
      return;
    }
    size_t total = 0;
    for (const auto& m : msgs) total += m.bytes.size();
    napi_value recv = nullptr, fn = nullptr, argv[5], result;
    void* kinds_data = nullptr;
    void* data = nullptr;
    void* ends_data = nullptr;
    napi_value kinds_ab, ends_ab;
    const size_t n = msgs.size();
    bool have_fn = napi_get_reference_value(env, self_ref_, &recv) == napi_ok &&
                   napi_get_reference_value(env, on_messages_, &fn) == napi_ok &&
                   recv != nullptr && fn != nullptr;
    // A single message over 4 GiB cannot be described by uint32 ends.
    bool ok =
        have_fn && total <= UINT32_MAX &&
        napi_create_arraybuffer(env, n * 4, &kinds_data, &kinds_ab) == napi_ok &&
        napi_create_typedarray(env, napi_int32_array, n, kinds_ab, 0, &argv[0]) == napi_ok &&
        napi_create_buffer(env, total, &data, &argv[1]) == napi_ok &&
        napi_create_arraybuffer(env, n * 4, &ends_data, &ends_ab) == napi_ok &&
        napi_create_typedarray(env, napi_uint32_array, n, ends_ab, 0, &argv[2]) == napi_ok;
    // `this` may be finalized by a GC inside the call: copy what is needed.
    napi_async_context ctx = async_context_;
    napi_status st = napi_ok;
    if (ok) {
      auto* kinds = static_cast<int32_t*>(kinds_data);
      auto* ends = static_cast<uint32_t*>(ends_data);
      char* out = static_cast<char*>(data);
      size_t off = 0;
      for (size_t i = 0; i < n; i++) {
        kinds[i] = msgs[i].kind;
        if (!msgs[i].bytes.empty()) {
          std::memcpy(out + off, msgs[i].bytes.data(), msgs[i].bytes.size());
        }
        off += msgs[i].bytes.size();
        ends[i] = static_cast<uint32_t>(off);
      }
      st = napi_make_callback(env, ctx, recv, fn, 3, argv, &result);
    } else {
      // The batch is lost: its callers hear it now rather than never.
      // Either the environment is going away (no JavaScript can run, no
      // exception is pending: its callers get "loop closed", as its
      // cleanup hook's Close() would tell them), or the batch could not
      // be allocated (an exception says why): the target is told too,
      // through its loop's exception handler, instead of nothing.
      size_t lost = msgs.size();
      napi_value exc = nullptr;
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_get_and_clear_last_exception(env, &exc);
      }
      const bool undeliverable = pending || total > UINT32_MAX;
      c->ch->Abandon(msgs, undeliverable ? kAbandonUndeliverable : kAbandonClosed);
      msgs.clear();
      msgs.shrink_to_fit();
      if (!undeliverable || !have_fn) {
        napi_close_handle_scope(env, scope);
        return;
      }
      if (exc == nullptr) {
        napi_value text;
        std::string why = total > UINT32_MAX
                              ? "a message of " + std::to_string(total) + " bytes exceeds the 4 GiB a batch can carry"
                              : "could not allocate " + std::to_string(total) + " bytes for a batch";
        if (napi_create_string_utf8(env, why.c_str(), why.size(), &text) == napi_ok) {
          napi_create_error(env, nullptr, text, &exc);
        }
      }
      napi_value null_v;
      if (have_fn && exc != nullptr && napi_get_null(env, &null_v) == napi_ok &&
          napi_create_double(env, static_cast<double>(lost), &argv[4]) == napi_ok) {
        argv[0] = argv[1] = argv[2] = null_v;
        argv[3] = exc;
        st = napi_make_callback(env, ctx, recv, fn, 5, argv, &result);
      }
    }
    if (st != napi_ok) {
      bool pending = false;
      napi_value exc;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
          napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
        napi_fatal_exception(env, exc);
      }
    }
    napi_close_handle_scope(env, scope);
  }

 private:
  ChannelCore* Core(Napi::Env env) {
    if (core_ == nullptr || core_->closing) {
      throw Napi::Error::New(env, "NativeChannel is closed");
    }
    return core_;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (core_ != nullptr) {
      ChannelCore* c = core_;
      core_ = nullptr;
      c->owner = nullptr;
      CloseChannelCore(c);
    }
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    ChannelCore* c = Core(info.Env());
    if (!c->refed) uv_ref(reinterpret_cast<uv_handle_t*>(c->async));
    c->refed = true;
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (core_ != nullptr && !core_->closing && core_->refed) {
      uv_unref(reinterpret_cast<uv_handle_t*>(core_->async));
      core_->refed = false;
    }
    return info.Env().Undefined();
  }

  Napi::Value GetId(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), std::to_string(id_));
  }

  Napi::Value GetClosed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), core_ == nullptr || core_->closing);
  }

  Napi::Value Settle(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t reply_to = 0, token = 0;
    if (!ParseId(info[0], &reply_to)) {
      ThrowArgType(env, "replyTo", "a channel id (a decimal string)", info[0]);
    }
    if (!ParseToken(info[1], &token)) {
      ThrowArgType(env, "token", "a positive safe integer", info[1]);
    }
    bool open = core_ != nullptr && !core_->closing && core_->ch &&
                core_->ch->Settle(reply_to, token);
    return Napi::Boolean::New(env, open);
  }

  Napi::Value GetOpenCalls(const Napi::CallbackInfo& info) {
    size_t q = (core_ != nullptr && core_->ch) ? core_->ch->open_calls() : 0;
    return Napi::Number::New(info.Env(), static_cast<double>(q));
  }

  Napi::Value GetQueued(const Napi::CallbackInfo& info) {
    size_t q = (core_ != nullptr && core_->ch) ? core_->ch->queued() : 0;
    return Napi::Number::New(info.Env(), static_cast<double>(q));
  }

  napi_env env_;
  ChannelCore* core_ = nullptr;
  uint64_t id_ = 0;
  size_t max_batch_bytes_ = kMaxBatchBytes;
  napi_ref on_messages_ = nullptr;
  napi_ref self_ref_ = nullptr;
  napi_async_context async_context_ = nullptr;
};

void DetachOwner(ChannelCore* c) {
  if (c->owner != nullptr) c->owner->Detach();
  c->owner = nullptr;
}

void OnAsync(uv_async_t* h) {
  auto* c = static_cast<ChannelCore*>(h->data);
  if (c->closing || c->owner == nullptr) return;
  try {
    c->owner->Deliver(c);
  } catch (...) {
    // A uv callback: nothing may leave it.
  }
}

// Parses a channel id: a decimal string of a nonzero uint64.
bool ParseId(const Napi::Value& v, uint64_t* out) {
  if (!v.IsString()) return false;
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty() || s.size() > 20) return false;
  uint64_t id = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    uint64_t d = static_cast<uint64_t>(ch - '0');
    if (id > (UINT64_MAX - d) / 10) return false;
    id = id * 10 + d;
  }
  if (id == 0) return false;
  *out = id;
  return true;
}

// A call's token: a positive integer JavaScript holds exactly.
bool ParseToken(const Napi::Value& v, uint64_t* out) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d))) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

// channelPost(id: string, kind: int32, payload[, replyTo: string, token:
// number]) -> 0 | -errno, payload one
// of: a Uint8Array (its bytes), a string (its UTF-8), a number (8 bytes,
// a little-endian double) or undefined (no bytes). Strings and numbers
// skip v8.serialize on the sender, by far the costliest part of a small
// post; lib/threads.ts tags the encoding in `kind`.
Napi::Value ChannelPost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = 0;
  if (!ParseId(info[0], &id)) {
    ThrowArgType(env, "id", "a channel id (a decimal string)", info[0]);
  }
  if (!info[1].IsNumber()) ThrowArgType(env, "kind", "an int32", info[1]);
  int32_t kind = info[1].As<Napi::Number>().Int32Value();
  napi_value v = info[2];
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  std::string bytes;
  if (t == napi_string) {
    size_t len = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf8(env, v, nullptr, 0, &len), Napi::Value());
    bytes.resize(len + 1);
    NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf8(env, v, &bytes[0], len + 1, &len), Napi::Value());
    bytes.resize(len);
  } else if (t == napi_number) {
    double d = 0;
    napi_get_value_double(env, v, &d);
    bytes.assign(reinterpret_cast<const char*>(&d), sizeof d);
  } else if (t != napi_undefined) {
    if (!info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      ThrowArgType(env, "payload", "a Uint8Array, a string, a number or undefined", info[2]);
    }
    auto u8 = info[2].As<Napi::Uint8Array>();
    if (u8.ByteLength() > 0) bytes.assign(reinterpret_cast<const char*>(u8.Data()), u8.ByteLength());
  }
  uint64_t reply_to = 0, token = 0;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!ParseId(info[3], &reply_to)) {
      ThrowArgType(env, "replyTo", "a channel id (a decimal string)", info[3]);
    }
    if (!ParseToken(info[4], &token)) {
      ThrowArgType(env, "token", "a positive safe integer", info[4]);
    }
  }
  int rc = channels::Post(id, kind, std::move(bytes), reply_to, token);
  return Napi::Number::New(env, rc);
}

Napi::Value ChannelCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           static_cast<double>(channels::Count()));
}

}  // namespace

void InitChannels(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeChannel", ChannelWrap::Init(env));
  SetFunction<ChannelPost>(env, exports, "channelPost");
  SetFunction<ChannelCount>(env, exports, "channelCount");
}

}  // namespace aionode
