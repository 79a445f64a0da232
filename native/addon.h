// Per-environment state of the addon (one instance per Node environment:
// the main thread and every worker_thread get their own). Nothing in the
// addon is static, so a worker's teardown never touches another's objects.
#ifndef AIONODE_ADDON_H_
#define AIONODE_ADDON_H_

#include <napi.h>

namespace aionode {

struct AddonData {
  Napi::FunctionReference selector_ctor;
  Napi::FunctionReference loop_ctor;
  // (errno, code, syscall, message) => Error, handed over once by
  // lib/native.ts so native errors are the OSError family of lib/.
  Napi::FunctionReference error_factory;
};

inline AddonData* GetAddonData(Napi::Env env) {
  return env.GetInstanceData<AddonData>();
}

}  // namespace aionode

#endif  // AIONODE_ADDON_H_
