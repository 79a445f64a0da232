#include "errors.h"

#include "addon.h"
#include "errno_table.h"

namespace aionode {

Napi::Error MakeOsError(Napi::Env env, int err, const char* syscall,
                        const std::string& detail) {
  if (err < 0) err = -err;
  const char* code = ErrnoName(err);
  std::string message = std::string(syscall) + " " + code;
  if (!detail.empty()) message += " " + detail;
  AddonData* data = GetAddonData(env);
  if (data != nullptr && !data->error_factory.IsEmpty()) {
    Napi::Value made = data->error_factory.Call(
        {Napi::Number::New(env, err), Napi::String::New(env, code),
         Napi::String::New(env, syscall), Napi::String::New(env, message),
         Napi::String::New(env, ErrnoMessage(err))});
    if (made.IsObject()) return Napi::Error(env, made);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

int ThrowIfError(Napi::Env env, int rc, const char* syscall,
                 const std::string& detail) {
  if (rc < 0) throw MakeOsError(env, rc, syscall, detail);
  return rc;
}

static const char* TypeName(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return "object";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
  }
  return "unknown";
}

void ThrowArgType(Napi::Env env, const char* name, const char* expected,
                  const Napi::Value& got) {
  std::string msg = std::string("Expected \"") + name + "\" to be " +
                    expected + ", got ";
  if (got.IsNumber()) {
    msg += std::to_string(got.As<Napi::Number>().DoubleValue());
  } else {
    msg += TypeName(got);
  }
  throw Napi::TypeError::New(env, msg);
}

}  // namespace aionode
