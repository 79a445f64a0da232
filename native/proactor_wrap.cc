#include "proactor_wrap.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "socket_args.h"

namespace aionode {

namespace {

constexpr int kIovMax = 1024;
// How long close() and teardown wait for the kernel to give every buffer
// back. Cancelled socket ops finish in microseconds; this only bounds a
// kernel that misbehaves (then the buffers are leaked, never freed early).
constexpr int64_t kDrainNs = 5000000000LL;

double RequireInteger(Napi::Env env, const Napi::Value& v, const char* name,
                      double min, double max, const char* expected) {
  if (!v.IsNumber()) ThrowArgType(env, name, expected, v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != std::trunc(d)) {
    ThrowArgRange(env, name, expected, v);
  }
  return d;
}

Token RequireToken(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<Token>(RequireInteger(info.Env(), info[i], "token", 0,
                                           INT32_MAX,
                                           "an integer from 0 to 2147483647"));
}

int RequireFdArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int>(RequireInteger(info.Env(), info[i], "fd", 0,
                                         INT32_MAX, "a non-negative integer"));
}

struct Window {
  napi_value value;
  uint8_t* data;
  size_t len;
};

// buf, offset, length at info[i..i+2]: the bytes [offset, offset+length).
Window RequireWindow(const Napi::CallbackInfo& info, size_t i) {
  napi_env env = info.Env();
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, info[i], &type, &len, &data, nullptr,
                               nullptr) != napi_ok ||
      type != napi_uint8_array) {
    ThrowArgType(info.Env(), "buf", "a Uint8Array or Buffer", info[i]);
  }
  size_t offset = static_cast<size_t>(
      RequireInteger(info.Env(), info[i + 1], "offset", 0,
                     static_cast<double>(len),
                     "an integer from 0 to the buffer's length"));
  size_t length = static_cast<size_t>(RequireInteger(
      info.Env(), info[i + 2], "length", 0, static_cast<double>(len - offset),
      "an integer from 0 to the bytes after offset"));
  return Window{info[i], static_cast<uint8_t*>(data) + offset, length};
}

}  // namespace

// ---- the binding's state, shared with a hosting NativeLoop --------------------

class ProactorState final : public SourceHooks {
 public:
  ProactorState(napi_env env, std::shared_ptr<Proactor> core)
      : env_(env), core_(std::move(core)) {}
  ~ProactorState() override { Close(); }

  Proactor* core() const { return core_.get(); }
  std::shared_ptr<Proactor> shared() const { return core_; }
  bool closed() const { return closed_; }

  // Files the refs of a queued op. Deletes them when `rc` says nothing was
  // queued. Returns rc.
  int File(int rc, Token token, OpKind kind, int fd, std::vector<napi_ref> refs) {
    if (rc < 0) {
      for (napi_ref r : refs) napi_delete_reference(env_, r);
      return rc;
    }
    pins_[token] = Pin{kind, fd, std::move(refs)};
    return rc;
  }

  void CloseFdLater(int fd) { close_after_.insert(fd); }

  // The recv-many pool: held from here until the kernel is done with it
  // (Close). Returns the core's result; the reference goes when it fails.
  int SetPool(napi_value buf, void* data, uint32_t size, uint32_t count) {
    if (pool_ref_ != nullptr) return -EEXIST;
    napi_ref r;
    if (napi_create_reference(env_, buf, 1, &r) != napi_ok) return -ENOMEM;
    int rc = core_->SetBufferPool(data, size, count);
    if (rc < 0) {
      napi_delete_reference(env_, r);
      return rc;
    }
    pool_ref_ = r;
    return 0;
  }

  // SourceHooks
  void BeginPass() noexcept override {
    if (closed_) return;
    FreeDelivered();
    core_->BeginBatch();
  }

  int AfterWait(int32_t* pairs, int n) noexcept override {
    int kept = 0;
    for (int i = 0; i < n; ++i) {
      Token token = pairs[2 * i];
      int32_t res = pairs[2 * i + 1];
      pairs[2 * kept] = token;
      pairs[2 * kept + 1] = res;
      ++kept;
      auto it = pins_.find(token);
      if (it == pins_.end()) continue;
      Pin& pin = it->second;
      const bool accept =
          pin.kind == OpKind::kAccept || pin.kind == OpKind::kAcceptMany;
      if (accept && res >= 0) {
        // Owned before JavaScript sees it, as socket_wrap's accept(); no
        // JS runs here (the registry is plain C++).
        AddonData* data = nullptr;
        void* raw = nullptr;
        if (napi_get_instance_data(env_, &raw) == napi_ok) {
          data = static_cast<AddonData*>(raw);
        }
        int rc = 0;
        if (data != nullptr) {
          try {
            rc = data->fds.Add(res);
          } catch (...) {
            rc = -ENOMEM;
          }
        }
        if (rc < 0) {
          // Nobody would own it: closed. A one-shot accept reports the
          // error as its (final) result; accept-many drops the connection
          // and goes on, so its first negative result still ends it.
          close(res);
          if (pin.kind == OpKind::kAcceptMany) {
            --kept;
            continue;
          }
          pairs[2 * (kept - 1) + 1] = rc;
          res = rc;
        }
      }
      const bool final_one =
          pin.kind == OpKind::kAcceptMany ? res < 0
          : pin.kind == OpKind::kRecvMany ? res <= 0
                                          : true;
      if (final_one) {
        for (napi_ref r : pin.refs) delivered_.push_back(r);
        pins_.erase(it);
      }
    }
    return kept;
  }

  void EnterBatch() noexcept override {
    if (closed_) return;
    core_->SetAutoFlush(false);
  }

  bool EndBatch() noexcept override {
    if (closed_) return false;
    CloseDeferred();
    core_->Flush();
    core_->SetAutoFlush(true);
    return core_->HasBuffered();
  }

  int Pending() const noexcept override {
    return static_cast<int>(pins_.size());
  }

  // Cancels everything, waits for the kernel, then lets every buffer go and
  // closes the fds closeFd deferred. No JavaScript runs (the cleanup hook
  // and the finalizer call it too).
  void Close() noexcept {
    if (closed_) return;
    closed_ = true;
    int left = core_->Drain(kDrainNs);
    FreeDelivered();  // finished ops: the kernel is done with these anyway
    if (left == 0) {
      for (auto& kv : pins_) {
        for (napi_ref r : kv.second.refs) napi_delete_reference(env_, r);
      }
      if (pool_ref_ != nullptr) napi_delete_reference(env_, pool_ref_);
    }
    pool_ref_ = nullptr;
    // else: the kernel may still write into them: leaked, never freed early.
    pins_.clear();
    for (int fd : close_after_) CloseOwned(fd);
    close_after_.clear();
    // The ring fd goes now unless a loop still hosts the source (it goes
    // with that loop), not when the GC gets round to the wrapper.
    if (left == 0) core_.reset();
  }

  void CloseOwned(int fd) noexcept {
    void* raw = nullptr;
    if (napi_get_instance_data(env_, &raw) == napi_ok && raw != nullptr) {
      static_cast<AddonData*>(raw)->fds.Remove(fd);
    }
    FdClose(fd);
  }

 private:
  struct Pin {
    OpKind kind;
    int fd;
    std::vector<napi_ref> refs;
  };

  void FreeDelivered() noexcept {
    for (napi_ref r : delivered_) napi_delete_reference(env_, r);
    delivered_.clear();
  }

  void CloseDeferred() noexcept {
    for (auto it = close_after_.begin(); it != close_after_.end();) {
      if (core_->OpsOnFd(*it) == 0) {
        CloseOwned(*it);
        it = close_after_.erase(it);
      } else {
        ++it;
      }
    }
  }

  napi_env env_;
  std::shared_ptr<Proactor> core_;
  std::unordered_map<Token, Pin> pins_;
  std::vector<napi_ref> delivered_;
  std::unordered_set<int> close_after_;
  napi_ref pool_ref_ = nullptr;
  bool closed_ = false;
};

// ---- the JS class ---------------------------------------------------------------

const napi_type_tag ProactorWrap::kTypeTag = {0x3b9f0e2a7c4d5e61ULL,
                                              0xa17c6d2e9f4b3a08ULL};

Napi::Function ProactorWrap::Init(Napi::Env env) {
  constexpr auto kMethod = napi_default_method;
  constexpr auto kGetter = static_cast<napi_property_attributes>(
      napi_enumerable | napi_configurable);
#define AIO_METHOD(js, m) \
  {js, nullptr, Guarded<&ProactorWrap::m>, nullptr, nullptr, nullptr, kMethod, nullptr}
#define AIO_GETTER(js, m) \
  {js, nullptr, nullptr, Guarded<&ProactorWrap::m>, nullptr, nullptr, kGetter, nullptr}
  const napi_property_descriptor props[] = {
      AIO_METHOD("recv", Recv),
      AIO_METHOD("recvfrom", RecvFrom),
      AIO_METHOD("send", Send),
      AIO_METHOD("writev", Writev),
      AIO_METHOD("sendto", SendTo),
      AIO_METHOD("accept", Accept),
      AIO_METHOD("acceptMany", AcceptMany),
      AIO_METHOD("connect", Connect),
      AIO_METHOD("poll", Poll),
      AIO_METHOD("providePool", ProvidePool),
      AIO_METHOD("recvMany", RecvMany),
      AIO_METHOD("cancel", Cancel),
      AIO_METHOD("cancelFd", CancelFd),
      AIO_METHOD("closeFd", CloseFd),
      AIO_METHOD("address", Address),
      AIO_METHOD("close", Close),
      AIO_GETTER("name", GetName),
      AIO_GETTER("backendFd", GetBackendFd),
      AIO_GETTER("closed", GetClosed),
      AIO_GETTER("pending", GetPending),
      AIO_GETTER("features", GetFeatures),
  };
#undef AIO_METHOD
#undef AIO_GETTER
  napi_value ctor = nullptr;
  napi_status st = napi_define_class(env, "NativeProactor", NAPI_AUTO_LENGTH,
                                     Construct, nullptr,
                                     sizeof(props) / sizeof(props[0]), props,
                                     &ctor);
  if (st != napi_ok) throw Napi::Error::New(env);
  return Napi::Function(env, ctor);
}

napi_value ProactorWrap::Construct(napi_env env, napi_callback_info cbinfo) {
  return CallGuarded(env, [&]() -> napi_value {
    Napi::CallbackInfo info(env, cbinfo);
    if (info.NewTarget().IsEmpty()) {
      throw Napi::TypeError::New(info.Env(),
                                 "Class constructor NativeProactor cannot be "
                                 "invoked without 'new'");
    }
    auto self = std::make_unique<ProactorWrap>(info);
    napi_value obj = info.This();
    if (napi_type_tag_object(env, obj, &kTypeTag) != napi_ok ||
        napi_wrap(env, obj, self.get(), Finalize, nullptr, nullptr) !=
            napi_ok) {
      throw Napi::Error::New(info.Env());
    }
    self.release();
    return obj;
  });
}

void ProactorWrap::Finalize(napi_env, void* data, void*) {
  delete static_cast<ProactorWrap*>(data);
}

template <Napi::Value (ProactorWrap::*M)(const Napi::CallbackInfo&)>
napi_value ProactorWrap::Guarded(napi_env env, napi_callback_info cbinfo) {
  return CallGuarded(env, [&]() -> napi_value {
    Napi::CallbackInfo info(env, cbinfo);
    ProactorWrap* self = FromValue(info.Env(), info.This());
    if (self == nullptr) {
      ThrowArgType(info.Env(), "this", "a NativeProactor", info.This());
    }
    return (self->*M)(info);
  });
}

namespace {
// The ProactorWraps alive on this thread (an env and its objects never
// leave their thread). FromValue runs on every op submission, and
// napi_check_object_type_tag (a V8 private-symbol lookup) was its largest
// cost: instead, napi_unwrap (which fails for anything not wrapped) and a
// look-up here, which tells a NativeProactor from an object another class
// (or addon) wrapped just as surely: no other live object has its address.
std::unordered_set<const void*>& LiveWraps() {
  thread_local std::unordered_set<const void*> live;
  return live;
}
}  // namespace

ProactorWrap* ProactorWrap::FromValue(napi_env env, napi_value v) noexcept {
  void* self = nullptr;
  if (v == nullptr || napi_unwrap(env, v, &self) != napi_ok ||
      self == nullptr || LiveWraps().count(self) == 0) {
    return nullptr;
  }
  return static_cast<ProactorWrap*>(self);
}

ProactorWrap::ProactorWrap(const Napi::CallbackInfo& info) : env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowArgType(env, "name", "a string", info[0]);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name != "io_uring") {
    ThrowArgType(env, "name", "'io_uring'", info[0]);
  }
  unsigned entries = 256;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    entries = static_cast<unsigned>(RequireInteger(
        env, info[1], "entries", 1, 32768, "an integer from 1 to 32768"));
  }
  std::unique_ptr<Proactor> p;
  std::string why;
  int rc = CreateIoUringProactor(entries, &p, &why);
  if (rc < 0) throw MakeOsError(env, rc, "io_uring_setup", why);
  if (const ProactorFeatures* f = IoUringFeatures(p.get())) features_ = *f;
  state_ = std::make_shared<ProactorState>(env, std::move(p));
  LiveWraps().insert(this);
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
}

ProactorWrap::~ProactorWrap() {
  LiveWraps().erase(this);
  napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
  if (state_) state_->Close();
}

void ProactorWrap::OnEnvCleanup(void* arg) {
  // Teardown: the kernel must be done with every pinned buffer before V8's
  // heap goes. No JavaScript runs in Close.
  auto* self = static_cast<ProactorWrap*>(arg);
  if (self->state_) self->state_->Close();
}

std::shared_ptr<EventSource> ProactorWrap::Host(
    Napi::Env env, std::shared_ptr<SourceHooks>* hooks) {
  Live(env);
  *hooks = state_;
  return state_->shared();
}

ProactorState* ProactorWrap::Live(Napi::Env env) {
  if (!state_ || state_->closed()) throw Napi::Error::New(env, "Proactor is closed");
  return state_.get();
}

namespace {

std::vector<napi_ref> Pin(napi_env env, std::initializer_list<napi_value> vs) {
  std::vector<napi_ref> refs;
  for (napi_value v : vs) {
    napi_ref r;
    if (napi_create_reference(env, v, 1, &r) != napi_ok) {
      for (napi_ref x : refs) napi_delete_reference(env, x);
      throw Napi::Error::New(Napi::Env(env), "aionode: cannot pin a buffer");
    }
    refs.push_back(r);
  }
  return refs;
}

}  // namespace

Napi::Value ProactorWrap::Window(const Napi::CallbackInfo& info, OpKind kind) {
  ProactorState* s = Live(info.Env());
  Token token = RequireToken(info, 0);
  int fd = RequireFdArg(info, 1);
  auto w = RequireWindow(info, 2);
  auto refs = Pin(info.Env(), {w.value});
  int rc;
  Proactor* p = s->core();
  switch (kind) {
    case OpKind::kRecv: rc = p->SubmitRecv(token, fd, w.data, w.len); break;
    case OpKind::kRecvFrom:
      rc = p->SubmitRecvFrom(token, fd, w.data, w.len);
      break;
    default: rc = p->SubmitSend(token, fd, w.data, w.len); break;
  }
  return Napi::Number::New(info.Env(), s->File(rc, token, kind, fd, std::move(refs)));
}

Napi::Value ProactorWrap::Recv(const Napi::CallbackInfo& info) {
  return Window(info, OpKind::kRecv);
}
Napi::Value ProactorWrap::RecvFrom(const Napi::CallbackInfo& info) {
  return Window(info, OpKind::kRecvFrom);
}
Napi::Value ProactorWrap::Send(const Napi::CallbackInfo& info) {
  return Window(info, OpKind::kSend);
}

// writev(token, fd, bufs). Two passes, as socket_wrap's (issue 8 item 11):
// every element is read first (a getter may detach any buffer), then the
// pointers are taken with no JavaScript left to run.
Napi::Value ProactorWrap::Writev(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  ProactorState* s = Live(info.Env());
  Token token = RequireToken(info, 0);
  int fd = RequireFdArg(info, 1);
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, info[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, info[2], &n) != napi_ok) {
    ThrowArgType(info.Env(), "bufs", "an array of Uint8Array", info[2]);
  }
  if (n > static_cast<uint32_t>(kIovMax)) {
    ThrowArgRange(info.Env(), "bufs", "an array of at most 1024 buffers",
                  info[2]);
  }
  std::vector<napi_value> els(n);
  for (uint32_t k = 0; k < n; ++k) {
    if (napi_get_element(env, info[2], k, &els[k]) != napi_ok) {
      throw Napi::Error::New(info.Env());
    }
  }
  std::vector<struct iovec> iov(n);
  for (uint32_t k = 0; k < n; ++k) {
    napi_typedarray_type type;
    size_t len = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, els[k], &type, &len, &data, nullptr,
                                 nullptr) != napi_ok ||
        type != napi_uint8_array) {
      std::string name = "bufs[" + std::to_string(k) + "]";
      ThrowArgType(info.Env(), name.c_str(), "a Uint8Array or Buffer",
                   Napi::Value(env, els[k]));
    }
    iov[k].iov_base = data;
    iov[k].iov_len = len;
  }
  std::vector<napi_ref> refs;
  refs.reserve(n);
  for (uint32_t k = 0; k < n; ++k) {
    napi_ref r;
    if (napi_create_reference(env, els[k], 1, &r) != napi_ok) {
      for (napi_ref x : refs) napi_delete_reference(env, x);
      throw Napi::Error::New(info.Env(), "aionode: cannot pin a buffer");
    }
    refs.push_back(r);
  }
  int rc = s->core()->SubmitSendMsg(token, fd, iov.data(),
                                    static_cast<int>(n), nullptr);
  return Napi::Number::New(
      info.Env(), s->File(rc, token, OpKind::kSendMsg, fd, std::move(refs)));
}

// sendto(token, fd, buf, offset, length, addr): the address is read before
// the buffer's pointer is taken (reading it may run a getter).
Napi::Value ProactorWrap::SendTo(const Napi::CallbackInfo& info) {
  ProactorState* s = Live(info.Env());
  Token token = RequireToken(info, 0);
  int fd = RequireFdArg(info, 1);
  SockAddr to;
  int arc = ReadSocketAddress(info.Env(), info[5], "addr", &to);
  auto w = RequireWindow(info, 2);
  if (arc < 0) return Napi::Number::New(info.Env(), arc);
  auto refs = Pin(info.Env(), {w.value});
  struct iovec iov = {w.data, w.len};
  int rc = s->core()->SubmitSendMsg(token, fd, &iov, 1, &to);
  return Napi::Number::New(
      info.Env(), s->File(rc, token, OpKind::kSendMsg, fd, std::move(refs)));
}

Napi::Value ProactorWrap::Accept(const Napi::CallbackInfo& info) {
  ProactorState* s = Live(info.Env());
  Token token = RequireToken(info, 0);
  int fd = RequireFdArg(info, 1);
  int rc = s->core()->SubmitAccept(token, fd);
  return Napi::Number::New(info.Env(), s->File(rc, token, OpKind::kAccept, fd, {}));
}

Napi::Value ProactorWrap::AcceptMany(const Napi::CallbackInfo& info) {
  ProactorState* s = Live(info.Env());
  Token token = RequireToken(info, 0);
  int fd = RequireFdArg(info, 1);
  int rc = s->core()->SubmitAcceptMany(token, fd);
  return Napi::Number::New(info.Env(),
                           s->File(rc, token, OpKind::kAcceptMany, fd, {}));
}

Napi::Value ProactorWrap::Connect(const Napi::CallbackInfo& info) {
  ProactorState* s = Live(info.Env());
  Token token = RequireToken(info, 0);
  int fd = RequireFdArg(info, 1);
  SockAddr addr;
  int arc = ReadSocketAddress(info.Env(), info[2], "addr", &addr);
  if (arc < 0) return Napi::Number::New(info.Env(), arc);
  int rc = s->core()->SubmitConnect(token, fd, addr);
  return Napi::Number::New(info.Env(),
                           s->File(rc, token, OpKind::kConnect, fd, {}));
}

Napi::Value ProactorWrap::Poll(const Napi::CallbackInfo& info) {
  ProactorState* s = Live(info.Env());
  Token token = RequireToken(info, 0);
  int fd = RequireFdArg(info, 1);
  int ev = static_cast<int>(RequireInteger(
      info.Env(), info[2], "events", 1, 3,
      "EVENT_READ (1), EVENT_WRITE (2) or both (3)"));
  int rc = s->core()->SubmitPoll(token, fd, static_cast<uint32_t>(ev));
  return Napi::Number::New(info.Env(), s->File(rc, token, OpKind::kPoll, fd, {}));
}

// providePool(buf, size): buf's bytes become the recv-many pool, as
// buf.length / size buffers of `size` bytes (a power of two of them).
// Returns 0 or -errno (-EOPNOTSUPP: the kernel has no multishot recv or no
// provided-buffer rings; -EEXIST: the pool is already there).
Napi::Value ProactorWrap::ProvidePool(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  ProactorState* s = Live(info.Env());
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, info[0], &type, &len, &data, nullptr,
                               nullptr) != napi_ok ||
      type != napi_uint8_array) {
    ThrowArgType(info.Env(), "buf", "a Uint8Array or Buffer", info[0]);
  }
  uint32_t size = static_cast<uint32_t>(RequireInteger(
      info.Env(), info[1], "size", 1, kRecvPoolMaxSize,
      "an integer from 1 to 131071"));
  const size_t count = len / size;
  if (count == 0 || count > kRecvPoolMaxCount || (count & (count - 1)) != 0 ||
      count * size != len) {
    ThrowArgRange(info.Env(), "buf",
                  "a Uint8Array of a power of two (at most 16384) times "
                  "size bytes",
                  info[0]);
  }
  int rc = s->SetPool(info[0], data, size, static_cast<uint32_t>(count));
  return Napi::Number::New(info.Env(), rc);
}

// recvMany(token, fd): multishot recv into the pool; completions carry
// PackRecvChunk values (proactor.h) until the first result <= 0.
Napi::Value ProactorWrap::RecvMany(const Napi::CallbackInfo& info) {
  ProactorState* s = Live(info.Env());
  Token token = RequireToken(info, 0);
  int fd = RequireFdArg(info, 1);
  int rc = s->core()->SubmitRecvMany(token, fd);
  return Napi::Number::New(info.Env(),
                           s->File(rc, token, OpKind::kRecvMany, fd, {}));
}

Napi::Value ProactorWrap::Cancel(const Napi::CallbackInfo& info) {
  Token token = RequireToken(info, 0);
  if (!state_ || state_->closed()) return Napi::Number::New(info.Env(), -ENOENT);
  return Napi::Number::New(info.Env(), state_->core()->Cancel(token));
}

Napi::Value ProactorWrap::CancelFd(const Napi::CallbackInfo& info) {
  int fd = RequireFdArg(info, 0);
  if (!state_ || state_->closed()) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), state_->core()->CancelFd(fd));
}

// closeFd(fd): cancels the ops on fd and closes it once their completions
// are delivered; until then the number stays taken, so no new file can get
// it under an op in flight.
Napi::Value ProactorWrap::CloseFd(const Napi::CallbackInfo& info) {
  int fd = RequireFdArg(info, 0);
  int n = 0;
  if (state_ && !state_->closed()) n = state_->core()->CancelFd(fd);
  if (n > 0) {
    state_->CloseFdLater(fd);
    return info.Env().Undefined();
  }
  DisownFd(info.Env(), fd);
  ThrowIfError(info.Env(), FdClose(fd), "close", "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

Napi::Value ProactorWrap::Address(const Napi::CallbackInfo& info) {
  Token token = RequireToken(info, 0);
  SockAddr addr;
  if (!state_ || state_->closed() || state_->core()->Address(token, &addr) < 0) {
    return info.Env().Null();
  }
  return SocketAddressToJs(info.Env(), addr);
}

Napi::Value ProactorWrap::Close(const Napi::CallbackInfo& info) {
  if (state_) state_->Close();
  return info.Env().Undefined();
}

Napi::Value ProactorWrap::GetName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), "io_uring");
}

Napi::Value ProactorWrap::GetBackendFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(
      info.Env(), state_ && !state_->closed() ? state_->core()->BackendFd() : -1);
}

Napi::Value ProactorWrap::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !state_ || state_->closed());
}

Napi::Value ProactorWrap::GetPending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state_ ? state_->Pending() : 0);
}

Napi::Value ProactorWrap::GetFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const ProactorFeatures* f = &features_;
  {
    o.Set("multishotAccept", f->multishot_accept);
    o.Set("multishotRecv", f->multishot_recv);
    o.Set("providedBufferRing", f->provided_buffer_ring);
    o.Set("pollMultishot", f->poll_multishot);
    o.Set("cancelFdAll", f->cancel_fd_all);
    o.Set("cancelAny", f->cancel_any);
    o.Set("extArg", f->ext_arg);
    o.Set("nodrop", f->nodrop);
  }
  napi_object_freeze(env, o);
  return o;
}

}  // namespace aionode
