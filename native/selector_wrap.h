// JavaScript face of a native Selector: argument checks and errors only; the
// syscalls live in backends/. Owned through a shared_ptr because a running
// Loop (and its helper thread) may outlive the JS wrapper during teardown.
//
// A plain napi class (napi_define_class + napi_wrap), not Napi::ObjectWrap:
// the constructor, methods and getters all run inside errors.h's guard, so
// no C++ exception reaches Node even when the environment is terminating
// (node-addon-api's own constructor wrapper rethrows when napi_throw fails
// unless NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS is defined; issue 8 item 7).
#ifndef AIONODE_SELECTOR_WRAP_H_
#define AIONODE_SELECTOR_WRAP_H_

#include <napi.h>

#include <memory>

#include "selector.h"

namespace aionode {

class SelectorWrap {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit SelectorWrap(const Napi::CallbackInfo& info);
  ~SelectorWrap();
  SelectorWrap(const SelectorWrap&) = delete;
  SelectorWrap& operator=(const SelectorWrap&) = delete;

  // The SelectorWrap behind a NativeSelector object; throws a TypeError for
  // anything else (same use as ObjectWrap::Unwrap).
  static SelectorWrap* Unwrap(Napi::Object obj);

  // The selector, or null after close(). Throws when closed if `use` names
  // the operation.
  std::shared_ptr<Selector> Get(Napi::Env env, const char* use);

  // The SelectorWrap behind `v`, or null when `v` is not a NativeSelector
  // (checked by type tag, so no JS runs: unlike instanceof, which a Proxy
  // or a forged prototype can answer). Never throws.
  static SelectorWrap* FromValue(napi_env env, napi_value v) noexcept;

 private:
  Napi::Value Register(const Napi::CallbackInfo& info);
  Napi::Value Modify(const Napi::CallbackInfo& info);
  Napi::Value Unregister(const Napi::CallbackInfo& info);
  Napi::Value Select(const Napi::CallbackInfo& info);
  Napi::Value Wakeup(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetBackendFd(const Napi::CallbackInfo& info);
  Napi::Value GetSize(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);

  static void OnEnvCleanup(void* arg);
  static napi_value Construct(napi_env env, napi_callback_info cbinfo);
  static void Finalize(napi_env env, void* data, void* hint);
  // Prototype method / getter callback around M (errors.h's guard).
  template <Napi::Value (SelectorWrap::*M)(const Napi::CallbackInfo&)>
  static napi_value Guarded(napi_env env, napi_callback_info cbinfo);

  static const napi_type_tag kTypeTag;

  std::shared_ptr<Selector> selector_;
  std::string name_;
  Napi::Env env_;
};

}  // namespace aionode

#endif  // AIONODE_SELECTOR_WRAP_H_
