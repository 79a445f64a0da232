#include "errors.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "addon.h"
#include "errno_table.h"

namespace aionode {

namespace {

// Sets a property, ignoring failure: in a terminating environment property
// writes fail (they may run JS), and the error is never seen anyway.
void SetQuietly(napi_env env, napi_value obj, const char* key, napi_value v) {
  if (v != nullptr) napi_set_named_property(env, obj, key, v);
}

napi_value Str(napi_env env, const std::string& s) {
  napi_value v = nullptr;
  napi_create_string_utf8(env, s.data(), s.size(), &v);
  return v;
}

// Drops a pending exception (the factory's own failure, or the termination
// of the environment) so a fallback error can be made and thrown.
void ClearPending(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

napi_value MakeError(napi_env env, napi_status (*make)(napi_env, napi_value,
                                                        napi_value,
                                                        napi_value*),
                     const std::string& message) {
  napi_value msg = Str(env, message);
  napi_value err = nullptr;
  if (msg == nullptr || make(env, nullptr, msg, &err) != napi_ok) return nullptr;
  return err;
}

std::string Quote(const std::string& s, size_t limit) {
  // JSON.stringify of at most `limit` characters (+ '…'), like describeArg.
  std::string out = "\"";
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80 && ++chars > limit) {
      out += "\xE2\x80\xA6";  // '…'
      break;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

[[noreturn]] void ThrowArg(Napi::Env env, bool range, const char* name,
                           const char* expected, const Napi::Value& got,
                           size_t limit = 40) {
  std::string msg = std::string("Expected \"") + name + "\" to be " +
                    expected + ", got " + ShowValue(got, limit);
  if (range) throw Napi::RangeError::New(env, msg);
  throw Napi::TypeError::New(env, msg);
}

}  // namespace

std::string NumberText(double d) noexcept {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == 0) return "0";  // String(-0) is "0" too
  char buf[40];
  if (d == std::trunc(d) && std::fabs(d) < 1e21) {
    std::snprintf(buf, sizeof(buf), "%.0f", d);
    return buf;
  }
  // The shortest text that reads back as the same double, as JS prints it.
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof(buf), "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

std::string ShowValue(const Napi::Value& v, size_t limit) noexcept {
  napi_env env = v.Env();
  napi_value raw = v;
  napi_valuetype t;
  if (raw == nullptr || napi_typeof(env, raw, &t) != napi_ok) return "unknown";
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: {
      bool b = false;
      napi_get_value_bool(env, raw, &b);
      return b ? "true" : "false";
    }
    case napi_number: {
      double d = 0;
      napi_get_value_double(env, raw, &d);
      return NumberText(d);
    }
    case napi_string: {
      size_t len = 0;
      if (napi_get_value_string_utf8(env, raw, nullptr, 0, &len) != napi_ok) {
        return "a string";
      }
      std::string s(len, '\0');
      napi_get_value_string_utf8(env, raw, s.data(), len + 1, &len);
      return Quote(s, limit);
    }
    case napi_symbol: return "symbol";
    case napi_function: return "a function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
    case napi_object: break;
  }
  // Objects by kind, from type checks only: reading `constructor` could run
  // a getter or a Proxy trap.
  bool is = false;
  if (napi_is_array(env, raw, &is) == napi_ok && is) return "an array";
  if (napi_is_typedarray(env, raw, &is) == napi_ok && is) {
    napi_typedarray_type tt;
    size_t n = 0;
    if (napi_get_typedarray_info(env, raw, &tt, &n, nullptr, nullptr,
                                 nullptr) == napi_ok) {
      static const char* const kNames[] = {
          "Int8Array",    "Uint8Array",   "Uint8ClampedArray", "Int16Array",
          "Uint16Array",  "Int32Array",   "Uint32Array",       "Float32Array",
          "Float64Array", "BigInt64Array", "BigUint64Array"};
      if (tt >= 0 && static_cast<size_t>(tt) <
                         sizeof(kNames) / sizeof(kNames[0])) {
        return std::string("an instance of ") + kNames[tt];
      }
    }
    return "a typed array";
  }
  if (napi_is_arraybuffer(env, raw, &is) == napi_ok && is) {
    return "an instance of ArrayBuffer";
  }
  if (napi_is_dataview(env, raw, &is) == napi_ok && is) {
    return "an instance of DataView";
  }
  if (napi_is_promise(env, raw, &is) == napi_ok && is) {
    return "an instance of Promise";
  }
  return "an object";
}

Napi::Error MakeOsError(Napi::Env env, int err, const char* syscall,
                        const std::string& detail) noexcept {
  try {
    if (err < 0) err = -err;
    const char* code = ErrnoName(err);
    std::string message = std::string(syscall) + " " + code;
    if (!detail.empty()) message += " " + detail;
    napi_value made = nullptr;
    AddonData* data = nullptr;
    napi_get_instance_data(env, reinterpret_cast<void**>(&data));
    if (data != nullptr && !data->error_factory.IsEmpty()) {
      // Raw calls: node-addon-api would throw a C++ exception when the call
      // fails, which it does whenever JS cannot run (teardown).
      napi_value fn = nullptr, recv = nullptr, args[5];
      napi_create_int32(env, err, &args[0]);
      args[1] = Str(env, code);
      args[2] = Str(env, syscall);
      args[3] = Str(env, message);
      args[4] = Str(env, ErrnoMessage(err));
      napi_valuetype t = napi_undefined;
      if (napi_get_reference_value(env, data->error_factory, &fn) == napi_ok &&
          fn != nullptr && napi_get_undefined(env, &recv) == napi_ok &&
          napi_call_function(env, recv, fn, 5, args, &made) == napi_ok &&
          napi_typeof(env, made, &t) == napi_ok && t == napi_object) {
        return Napi::Error(env, made);
      }
      ClearPending(env);
    }
    napi_value e = MakeError(env, napi_create_error, message);
    if (e == nullptr) return Napi::Error();
    napi_value n = nullptr;
    napi_create_int32(env, err, &n);
    SetQuietly(env, e, "errno", n);
    SetQuietly(env, e, "code", Str(env, code));
    SetQuietly(env, e, "syscall", Str(env, syscall));
    ClearPending(env);
    return Napi::Error(env, e);
  } catch (...) {
    // Napi::Error's constructor (a reference) or std::string allocation.
    return Napi::Error();
  }
}

int ThrowIfError(Napi::Env env, int rc, const char* syscall,
                 const std::string& detail) {
  if (rc < 0) throw MakeOsError(env, rc, syscall, detail);
  return rc;
}

void ThrowArgType(Napi::Env env, const char* name, const char* expected,
                  const Napi::Value& got, size_t limit) {
  ThrowArg(env, false, name, expected, got, limit);
}

void ThrowArgRange(Napi::Env env, const char* name, const char* expected,
                   const Napi::Value& got) {
  ThrowArg(env, true, name, expected, got);
}

void ThrowToJs(napi_env env, const Napi::Error& e) noexcept {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  if (e.IsEmpty()) return;
  napi_value v = nullptr;
  try {
    v = e.Value();  // unwraps a non-object thrown value node-addon-api boxed
  } catch (...) {
    v = nullptr;
  }
  if (v == nullptr) {
    napi_get_reference_value(env, static_cast<napi_ref>(e), &v);
  }
  if (v != nullptr) napi_throw(env, v);  // fails only when JS cannot run
}

}  // namespace aionode
