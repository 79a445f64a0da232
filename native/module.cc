// Addon entry: registers the classes and module functions, nothing else.
// Every function goes through errors.h's Entry<> guard (no C++ exception
// ever reaches Node, issue 8 item 7).
#include <napi.h>

#include "addon.h"
#include "clock.h"
#include "errno_table.h"
#include "errors.h"
#include "loop_wrap.h"
#include "proactor.h"
#include "proactor_wrap.h"
#include "selector.h"
#include "selector_wrap.h"

namespace aionode {

void InitSocketOps(Napi::Env env, Napi::Object exports);
void InitSpawnOps(Napi::Env env, Napi::Object exports);
void InitChannels(Napi::Env env, Napi::Object exports);  // channel_wrap.cc

namespace {

Napi::Value Time(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           static_cast<double>(MonotonicNs()) / 1e9);
}

Napi::Value AvailableSelectorsJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), AvailableSelectors());
}

Napi::Value AvailableProactorsJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), AvailableProactors());
}

Napi::Value ErrnoNameJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) ThrowArgType(info.Env(), "errno", "a number", info[0]);
  double d = info[0].As<Napi::Number>().DoubleValue();
  // Int32Value() of NaN / 2**40 would name an unrelated errno.
  if (!(d >= 0 && d <= 4095) || d != static_cast<int>(d)) {
    ThrowArgRange(info.Env(), "errno", "an integer from 0 to 4095", info[0]);
  }
  return Napi::String::New(info.Env(), ErrnoName(static_cast<int>(d)));
}

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    ThrowArgType(info.Env(), "factory", "a function", info[0]);
  }
  AddonData* data = GetAddonData(info.Env());
  if (data != nullptr) {
    data->error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  }
  return info.Env().Undefined();
}

void DeleteAddonData(napi_env, void* data, void*) {
  delete static_cast<AddonData*>(data);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData(env);
  // Deleted with the environment.
  if (napi_set_instance_data(env, data, DeleteAddonData, nullptr) != napi_ok) {
    delete data;
    throw Napi::Error::New(env, "aionode: cannot set the instance data");
  }
  Napi::Function selector = SelectorWrap::Init(env);
  Napi::Function loop = LoopWrap::Init(env);
  Napi::Function proactor = ProactorWrap::Init(env);
  data->selector_ctor = Napi::Persistent(selector);
  data->loop_ctor = Napi::Persistent(loop);
  exports.Set("NativeSelector", selector);
  exports.Set("NativeLoop", loop);
  exports.Set("NativeProactor", proactor);
  SetFunction<Time>(env, exports, "time");
  SetFunction<AvailableSelectorsJs>(env, exports, "availableSelectors");
  SetFunction<AvailableProactorsJs>(env, exports, "availableProactors");
  SetFunction<ErrnoNameJs>(env, exports, "errnoName");
  SetFunction<SetErrorFactory>(env, exports, "setErrorFactory");
  InitSocketOps(env, exports);
  InitSpawnOps(env, exports);
  InitChannels(env, exports);
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

void CloseOwnedFds(void* addon_data) {
  // Environment teardown (worker terminate / exit, main thread exit): close
  // what the environment's JS never closed. No Node-API call here.
  static_cast<AddonData*>(addon_data)->fds.CloseAll();
}

}  // namespace aionode

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return aionode::Init(env, exports);
}

NODE_API_MODULE(aionode, InitAddon)
