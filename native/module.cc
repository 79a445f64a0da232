// Addon entry: registers the classes and module functions, nothing else.
#include <napi.h>

#include "addon.h"
#include "clock.h"
#include "errno_table.h"
#include "errors.h"
#include "loop_wrap.h"
#include "selector.h"
#include "selector_wrap.h"

namespace aionode {

void InitSocketOps(Napi::Env env, Napi::Object exports);

namespace {

Napi::Value Time(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           static_cast<double>(MonotonicNs()) / 1e9);
}

Napi::Value AvailableSelectorsJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), AvailableSelectors());
}

Napi::Value ErrnoNameJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) ThrowArgType(info.Env(), "errno", "a number", info[0]);
  return Napi::String::New(info.Env(),
                           ErrnoName(info[0].As<Napi::Number>().Int32Value()));
}

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    ThrowArgType(info.Env(), "factory", "a function", info[0]);
  }
  GetAddonData(info.Env())->error_factory =
      Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);  // deleted with the environment
  Napi::Function selector = SelectorWrap::Init(env);
  Napi::Function loop = LoopWrap::Init(env);
  data->selector_ctor = Napi::Persistent(selector);
  data->loop_ctor = Napi::Persistent(loop);
  exports.Set("NativeSelector", selector);
  exports.Set("NativeLoop", loop);
  exports.Set("time", Napi::Function::New<Time>(env, "time"));
  exports.Set("availableSelectors",
              Napi::Function::New<AvailableSelectorsJs>(env, "availableSelectors"));
  exports.Set("errnoName", Napi::Function::New<ErrnoNameJs>(env, "errnoName"));
  exports.Set("setErrorFactory",
              Napi::Function::New<SetErrorFactory>(env, "setErrorFactory"));
  InitSocketOps(env, exports);
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

}  // namespace aionode

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return aionode::Init(env, exports);
}

NODE_API_MODULE(aionode, InitAddon)
