#include "selector_wrap.h"

#include <cerrno>
#include <cmath>
#include <string>

#include "addon.h"
#include "errors.h"

namespace aionode {

namespace {

int32_t RequireInt32(const Napi::CallbackInfo& info, size_t i,
                     const char* name, int32_t min) {
  Napi::Value v = info[i];
  std::string what = "an integer from " + std::to_string(min) + " to 2147483647";
  if (!v.IsNumber()) ThrowArgType(info.Env(), name, what.c_str(), v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::trunc(d) || d < min || d > INT32_MAX) {
    ThrowArgRange(info.Env(), name, what.c_str(), v);
  }
  return static_cast<int32_t>(d);
}

uint32_t RequireInterest(const Napi::CallbackInfo& info, size_t i) {
  int32_t ev = RequireInt32(info, i, "events", 0);
  if (ev < 1 || ev > 3) {
    ThrowArgRange(info.Env(), "events",
                  "EVENT_READ (1), EVENT_WRITE (2) or both (3)", info[i]);
  }
  return static_cast<uint32_t>(ev);
}

}  // namespace

// Tags every NativeSelector so a method called on another native object (a
// NativeLoop, say), or a NativeLoop given a fake selector, is a TypeError,
// not a type confusion.
const napi_type_tag SelectorWrap::kTypeTag = {0x6a1e5c7d0b3f4e21ULL,
                                              0x9c2d8e4f7a6b1c05ULL};

Napi::Function SelectorWrap::Init(Napi::Env env) {
  constexpr auto kMethod = napi_default_method;
  constexpr auto kGetter = static_cast<napi_property_attributes>(
      napi_enumerable | napi_configurable);
  const napi_property_descriptor props[] = {
      {"register", nullptr, Guarded<&SelectorWrap::Register>, nullptr, nullptr,
       nullptr, kMethod, nullptr},
      {"modify", nullptr, Guarded<&SelectorWrap::Modify>, nullptr, nullptr,
       nullptr, kMethod, nullptr},
      {"unregister", nullptr, Guarded<&SelectorWrap::Unregister>, nullptr,
       nullptr, nullptr, kMethod, nullptr},
      {"select", nullptr, Guarded<&SelectorWrap::Select>, nullptr, nullptr,
       nullptr, kMethod, nullptr},
      {"wakeup", nullptr, Guarded<&SelectorWrap::Wakeup>, nullptr, nullptr,
       nullptr, kMethod, nullptr},
      {"close", nullptr, Guarded<&SelectorWrap::Close>, nullptr, nullptr,
       nullptr, kMethod, nullptr},
      {"name", nullptr, nullptr, Guarded<&SelectorWrap::GetName>, nullptr,
       nullptr, kGetter, nullptr},
      {"backendFd", nullptr, nullptr, Guarded<&SelectorWrap::GetBackendFd>,
       nullptr, nullptr, kGetter, nullptr},
      {"size", nullptr, nullptr, Guarded<&SelectorWrap::GetSize>, nullptr,
       nullptr, kGetter, nullptr},
      {"closed", nullptr, nullptr, Guarded<&SelectorWrap::GetClosed>, nullptr,
       nullptr, kGetter, nullptr},
  };
  napi_value ctor = nullptr;
  napi_status st = napi_define_class(env, "NativeSelector", NAPI_AUTO_LENGTH,
                                     Construct, nullptr,
                                     sizeof(props) / sizeof(props[0]), props,
                                     &ctor);
  if (st != napi_ok) throw Napi::Error::New(env);
  return Napi::Function(env, ctor);
}

napi_value SelectorWrap::Construct(napi_env env, napi_callback_info cbinfo) {
  return CallGuarded(env, [&]() -> napi_value {
    Napi::CallbackInfo info(env, cbinfo);
    if (info.NewTarget().IsEmpty()) {
      throw Napi::TypeError::New(info.Env(),
                                 "Class constructor NativeSelector cannot be "
                                 "invoked without 'new'");
    }
    auto self = std::make_unique<SelectorWrap>(info);  // validates, opens
    napi_value obj = info.This();
    if (napi_type_tag_object(env, obj, &kTypeTag) != napi_ok ||
        napi_wrap(env, obj, self.get(), Finalize, nullptr, nullptr) !=
            napi_ok) {
      throw Napi::Error::New(info.Env());  // the selector closes with `self`
    }
    self.release();  // owned by the JS object now; Finalize deletes it
    return obj;
  });
}

void SelectorWrap::Finalize(napi_env, void* data, void*) {
  delete static_cast<SelectorWrap*>(data);
}

SelectorWrap* SelectorWrap::Unwrap(Napi::Object obj) {
  SelectorWrap* self = FromValue(obj.Env(), obj);
  if (self == nullptr) {
    ThrowArgType(obj.Env(), "selector", "a NativeSelector", obj);
  }
  return self;
}

template <Napi::Value (SelectorWrap::*M)(const Napi::CallbackInfo&)>
napi_value SelectorWrap::Guarded(napi_env env, napi_callback_info cbinfo) {
  return CallGuarded(env, [&]() -> napi_value {
    Napi::CallbackInfo info(env, cbinfo);
    SelectorWrap* self = FromValue(info.Env(), info.This());
    if (self == nullptr) {
      ThrowArgType(info.Env(), "this", "a NativeSelector", info.This());
    }
    return (self->*M)(info);
  });
}

SelectorWrap* SelectorWrap::FromValue(napi_env env, napi_value v) noexcept {
  bool tagged = false;
  void* self = nullptr;
  napi_valuetype t;
  if (v == nullptr || napi_typeof(env, v, &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, v, &kTypeTag, &tagged) != napi_ok ||
      !tagged || napi_unwrap(env, v, &self) != napi_ok) {
    return nullptr;
  }
  return static_cast<SelectorWrap*>(self);
}

SelectorWrap::SelectorWrap(const Napi::CallbackInfo& info) : env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowArgType(env, "name", "a string", info[0]);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::unique_ptr<Selector> sel;
  int rc = CreateSelector(name.c_str(), &sel);
  if (rc == -EINVAL || rc == -ENOSYS) {
    throw Napi::Error::New(
        env, "Selector \"" + name + "\" is not available in this build; "
             "available: " + AvailableSelectors());
  }
  ThrowIfError(env, rc, "selector_create", name);
  selector_ = std::move(sel);
  name_ = selector_->Name();
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
}

SelectorWrap::~SelectorWrap() {
  napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
  selector_.reset();
}

void SelectorWrap::OnEnvCleanup(void* arg) {
  // Teardown of a worker or the main environment: release the fds even if
  // the wrapper is never finalized. A running Loop still holds its own
  // reference and releases it when it closes.
  static_cast<SelectorWrap*>(arg)->selector_.reset();
}

std::shared_ptr<Selector> SelectorWrap::Get(Napi::Env env, const char* use) {
  if (!selector_ && use != nullptr) {
    throw Napi::Error::New(env, std::string("Cannot ") + use +
                                    ": the selector is closed");
  }
  return selector_;
}

Napi::Value SelectorWrap::Register(const Napi::CallbackInfo& info) {
  auto sel = Get(info.Env(), "register");
  int32_t fd = RequireInt32(info, 0, "fd", 0);
  int32_t token = RequireInt32(info, 1, "token", 0);
  uint32_t ev = RequireInterest(info, 2);
  int rc = sel->Register(fd, token, ev);
  if (rc == -ERANGE) {
    throw Napi::RangeError::New(
        info.Env(), "fd " + std::to_string(fd) + " is out of range for the " +
                        name_ + " selector (FD_SETSIZE cap)");
  }
  ThrowIfError(info.Env(), rc, "register", "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

Napi::Value SelectorWrap::Modify(const Napi::CallbackInfo& info) {
  auto sel = Get(info.Env(), "modify");
  int32_t fd = RequireInt32(info, 0, "fd", 0);
  int32_t token = RequireInt32(info, 1, "token", 0);
  uint32_t ev = RequireInterest(info, 2);
  ThrowIfError(info.Env(), sel->Modify(fd, token, ev), "modify",
               "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

Napi::Value SelectorWrap::Unregister(const Napi::CallbackInfo& info) {
  auto sel = Get(info.Env(), "unregister");
  int32_t fd = RequireInt32(info, 0, "fd", 0);
  ThrowIfError(info.Env(), sel->Unregister(fd), "unregister",
               "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

// select(timeoutSeconds, out: Int32Array) -> pair count. Blocks the calling
// thread, as Python's selector.select() does; a negative timeout blocks
// until something is ready.
Napi::Value SelectorWrap::Select(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto sel = Get(env, "select");
  if (!info[0].IsNumber()) ThrowArgType(env, "timeout", "a number", info[0]);
  double t = info[0].As<Napi::Number>().DoubleValue();
  if (std::isnan(t)) ThrowArgRange(env, "timeout", "a number, not NaN", info[0]);
  if (!info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowArgType(env, "out", "an Int32Array", info[1]);
  }
  Napi::Int32Array out = info[1].As<Napi::Int32Array>();
  if (out.ElementLength() < 2) {  // room for no pair: epoll_wait says EINVAL
    ThrowArgRange(env, "out", "an Int32Array of at least 2 elements",
                  info[1]);
  }
  int64_t ns;
  if (t < 0 || std::isinf(t)) {
    ns = -1;
  } else {
    double d = std::ceil(t * 1e9);
    ns = d > 9.0e18 ? INT64_MAX : static_cast<int64_t>(d);
  }
  EventBuffer eb{out.Data(), static_cast<int>(out.ElementLength() / 2)};
  int n = ThrowIfError(env, sel->Select(&eb, ns), "select");
  return Napi::Number::New(env, n);
}

Napi::Value SelectorWrap::Wakeup(const Napi::CallbackInfo& info) {
  auto sel = Get(info.Env(), "wakeup");
  ThrowIfError(info.Env(), sel->Wakeup(), "wakeup");
  return info.Env().Undefined();
}

Napi::Value SelectorWrap::Close(const Napi::CallbackInfo& info) {
  selector_.reset();
  return info.Env().Undefined();
}

Napi::Value SelectorWrap::GetName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), name_);
}

Napi::Value SelectorWrap::GetBackendFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), selector_ ? selector_->BackendFd() : -1);
}

Napi::Value SelectorWrap::GetSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), selector_ ? selector_->Size() : 0);
}

Napi::Value SelectorWrap::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !selector_);
}

}  // namespace aionode
