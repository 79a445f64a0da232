// The only place native failures become JavaScript errors. Core code returns
// -errno; wrappers call these to throw.
#ifndef AIONODE_ERRORS_H_
#define AIONODE_ERRORS_H_

#include <napi.h>

#include <string>

namespace aionode {

// Builds an error with Node's system-error shape (code, errno, syscall,
// message "syscall CODE detail") through the factory that lib/native.ts
// registered (so it is an OSError subclass), or a plain Error before that.
Napi::Error MakeOsError(Napi::Env env, int err, const char* syscall,
                        const std::string& detail = std::string());

// Throws MakeOsError(...) when `rc` < 0; returns rc otherwise.
int ThrowIfError(Napi::Env env, int rc, const char* syscall,
                 const std::string& detail = std::string());

// TypeError naming the argument, the expectation and the value's type.
[[noreturn]] void ThrowArgType(Napi::Env env, const char* name,
                               const char* expected, const Napi::Value& got);

}  // namespace aionode

#endif  // AIONODE_ERRORS_H_
