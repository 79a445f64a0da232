// The only place native failures become JavaScript errors. Core code returns
// -errno; wrappers call these to throw.
//
// Teardown rule (issue 8, item 7; reliability F11): no C++ exception may
// leave the addon. In a terminating environment (worker.terminate(),
// process.exit() in a worker) every Node-API call that needs JS fails,
// including napi_throw itself, and node-addon-api answers a failed call by
// throwing a C++ Napi::Error; one that escapes an extern "C" callback ends
// the whole process in std::terminate (exit 134). So:
//   * every module function is registered through Entry<> (below), and
//     NativeSelector's constructor, methods and getters through the same
//     CallGuarded (selector_wrap.cc): they catch everything and throw it to
//     JS with plain napi_throw, ignoring its status (when JS cannot run
//     there is nobody to tell);
//   * MakeOsError never throws and never needs JS to succeed;
//   * cleanup hooks and finalizers make no Node-API calls that can fail.
// Inside a guarded body, throwing (ThrowArgType, ThrowIfError, ...) is the
// normal way to fail.
#ifndef AIONODE_ERRORS_H_
#define AIONODE_ERRORS_H_

#include <napi.h>

#include <string>

namespace aionode {

// Builds an error with Node's system-error shape (code, errno, syscall,
// message "syscall CODE detail") through the factory that lib/native.ts
// registered (so it is an OSError subclass), or a plain Error when there is
// no factory or it cannot run (a terminating environment). Never throws; the
// result is empty only when not even a plain Error could be made.
Napi::Error MakeOsError(Napi::Env env, int err, const char* syscall,
                        const std::string& detail = std::string()) noexcept;

// Throws MakeOsError(...) when `rc` < 0; returns rc otherwise.
int ThrowIfError(Napi::Env env, int rc, const char* syscall,
                 const std::string& detail = std::string());

// TypeError `Expected "name" to be <expected>, got <value>`, the value shown
// as lib/exceptions.ts describeArg shows it (strings quoted and escaped,
// numbers as JS prints them, objects by kind). Reads no property, so it runs
// no user code. Strings are cut after `limit` characters.
[[noreturn]] void ThrowArgType(Napi::Env env, const char* name,
                               const char* expected, const Napi::Value& got,
                               size_t limit = 40);
// The same text as a RangeError (a number of the right type out of range).
[[noreturn]] void ThrowArgRange(Napi::Env env, const char* name,
                                const char* expected, const Napi::Value& got);
// How describeArg shows `v` (exposed for messages built elsewhere).
std::string ShowValue(const Napi::Value& v, size_t limit = 40) noexcept;
// A double as JavaScript's String(d) prints it (NaN, -Infinity, 1e+21...).
std::string NumberText(double d) noexcept;

// Makes `e` the pending JS exception unless one is pending already. Never
// throws; a failure (terminating environment) is ignored.
void ThrowToJs(napi_env env, const Napi::Error& e) noexcept;

// Runs `body` (returning napi_value) and turns any C++ exception into a
// pending JS exception: nothing escapes.
template <typename Body>
napi_value CallGuarded(napi_env env, Body&& body) noexcept {
  try {
    return body();
  } catch (const Napi::Error& e) {
    ThrowToJs(env, e);
  } catch (const std::exception& e) {
    napi_value msg = nullptr, err = nullptr;
    if (napi_create_string_utf8(env, e.what(), NAPI_AUTO_LENGTH, &msg) ==
            napi_ok &&
        napi_create_error(env, nullptr, msg, &err) == napi_ok) {
      napi_throw(env, err);
    }
  } catch (...) {
    napi_throw_error(env, nullptr, "aionode: unexpected native exception");
  }
  return nullptr;
}

// A module function (napi_callback) around `F`.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
napi_value Entry(napi_env env, napi_callback_info cbinfo) noexcept {
  return CallGuarded(env, [&]() -> napi_value {
    Napi::CallbackInfo info(env, cbinfo);
    return F(info);
  });
}

// Defines `name` on `exports` as Entry<F>.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void SetFunction(Napi::Env env, Napi::Object exports, const char* name) {
  napi_value fn = nullptr;
  napi_status st =
      napi_create_function(env, name, NAPI_AUTO_LENGTH, Entry<F>, nullptr, &fn);
  if (st != napi_ok) throw Napi::Error::New(env);
  exports.Set(name, Napi::Value(env, fn));
}

}  // namespace aionode

#endif  // AIONODE_ERRORS_H_
