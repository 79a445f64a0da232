// Per-environment state of the addon (one instance per Node environment:
// the main thread and every worker_thread get their own). Nothing in the
// addon is static, so a worker's teardown never touches another's objects.
#ifndef AIONODE_ADDON_H_
#define AIONODE_ADDON_H_

#include <napi.h>

#include "socket_ops.h"

namespace aionode {

// The environment's cleanup hook (module.cc): closes the fds still owned.
void CloseOwnedFds(void* addon_data);

struct AddonData {
  explicit AddonData(napi_env e) : env(e) {
    napi_add_env_cleanup_hook(env, CloseOwnedFds, this);
  }
  // Deleted with the environment (instance-data finalizer). Normally the
  // cleanup hook has run already and this finds nothing left to close;
  // either order is fine, and the hook never runs on a deleted AddonData.
  ~AddonData() {
    fds.CloseAll();
    napi_remove_env_cleanup_hook(env, CloseOwnedFds, this);
  }
  AddonData(const AddonData&) = delete;
  AddonData& operator=(const AddonData&) = delete;

  napi_env env;
  Napi::FunctionReference selector_ctor;
  Napi::FunctionReference loop_ctor;
  // (errno, code, syscall, message) => Error, handed over once by
  // lib/native.ts so native errors are the OSError family of lib/.
  Napi::FunctionReference error_factory;
  // Every fd the socket calls created in this environment (socket, accept,
  // socketpair) and not yet closed or released through the binding; the
  // cleanup hook closes the rest (issue 8, item 8).
  FdRegistry fds;
};

// Null before Init ran or after teardown began; never throws.
inline AddonData* GetAddonData(Napi::Env env) noexcept {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok) return nullptr;
  return static_cast<AddonData*>(data);
}

}  // namespace aionode

#endif  // AIONODE_ADDON_H_
