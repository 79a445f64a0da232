// JavaScript face of a native Proactor (lib/native.ts NativeProactor):
// argument checks, buffer pinning and errors; the system calls live in
// backends/io_uring_proactor.cc. The same plain-napi shape as
// selector_wrap.h (type tag, every entry point guarded).
//
// Pinning: each op in flight holds strong references to the buffers it
// was given, in a token -> record table; the records of ops whose final
// completion a batch delivers are kept until the next pass begins (JS may
// still read the buffer and address(token) in its batch), then freed.
// close(), the finalizer and the environment's cleanup hook drain the ring
// first (the kernel is done with every buffer), then free the references.
#ifndef AIONODE_PROACTOR_WRAP_H_
#define AIONODE_PROACTOR_WRAP_H_

#include <napi.h>

#include <memory>
#include <string>

#include "loop_wrap.h"
#include "proactor.h"

namespace aionode {

class ProactorState;

class ProactorWrap {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ProactorWrap(const Napi::CallbackInfo& info);
  ~ProactorWrap();
  ProactorWrap(const ProactorWrap&) = delete;
  ProactorWrap& operator=(const ProactorWrap&) = delete;

  // The ProactorWrap behind `v`, or null (checked by type tag). Never throws.
  static ProactorWrap* FromValue(napi_env env, napi_value v) noexcept;

  // For NativeLoop: the source and the batch hooks. Throws when closed.
  std::shared_ptr<EventSource> Host(Napi::Env env,
                                    std::shared_ptr<SourceHooks>* hooks);

 private:
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value RecvFrom(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Writev(const Napi::CallbackInfo& info);
  Napi::Value SendTo(const Napi::CallbackInfo& info);
  Napi::Value Accept(const Napi::CallbackInfo& info);
  Napi::Value AcceptMany(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Poll(const Napi::CallbackInfo& info);
  Napi::Value ProvidePool(const Napi::CallbackInfo& info);
  Napi::Value RecvMany(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value CancelFd(const Napi::CallbackInfo& info);
  Napi::Value CloseFd(const Napi::CallbackInfo& info);
  Napi::Value Address(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetBackendFd(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetPending(const Napi::CallbackInfo& info);
  Napi::Value GetFeatures(const Napi::CallbackInfo& info);

  Napi::Value Window(const Napi::CallbackInfo& info, OpKind kind);
  ProactorState* Live(Napi::Env env);

  static void OnEnvCleanup(void* arg);
  static napi_value Construct(napi_env env, napi_callback_info cbinfo);
  static void Finalize(napi_env env, void* data, void* hint);
  template <Napi::Value (ProactorWrap::*M)(const Napi::CallbackInfo&)>
  static napi_value Guarded(napi_env env, napi_callback_info cbinfo);

  static const napi_type_tag kTypeTag;

  std::shared_ptr<ProactorState> state_;
  ProactorFeatures features_;  // the probe's, kept past close()
  napi_env env_;
};

}  // namespace aionode

#endif  // AIONODE_PROACTOR_WRAP_H_
