// JavaScript face of a native Selector: argument checks and errors only; the
// syscalls live in backends/. Owned through a shared_ptr because a running
// Loop (and its helper thread) may outlive the JS wrapper during teardown.
#ifndef AIONODE_SELECTOR_WRAP_H_
#define AIONODE_SELECTOR_WRAP_H_

#include <napi.h>

#include <memory>

#include "selector.h"

namespace aionode {

class SelectorWrap : public Napi::ObjectWrap<SelectorWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit SelectorWrap(const Napi::CallbackInfo& info);
  ~SelectorWrap() override;

  // The selector, or null after close(). Throws when closed if `use` names
  // the operation.
  std::shared_ptr<Selector> Get(Napi::Env env, const char* use);

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

  std::shared_ptr<Selector> selector_;
  std::string name_;
  Napi::Env env_;
};

}  // namespace aionode

#endif  // AIONODE_SELECTOR_WRAP_H_
