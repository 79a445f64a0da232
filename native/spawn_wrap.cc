// JS functions over spawn.h: argument checks, value conversion and errors
// only (lib/native.ts has the typed surface, lib/base-subprocess.ts the
// caller).
//
// - spawn() RETURNS -errno when the child could not be started (the step
//   that failed goes into the `failure` array), so lib/ can build the error
//   Python would raise, with the program or cwd it names.
// - pidfdOpen() returns -errno too: ENOSYS / EPERM select the fallback
//   watcher, they are not errors.
// - pipe(), setBlocking() and reap() throw Node-shaped system errors.
// Every fd made here (pipe ends, pidfds) is recorded in the environment's
// FdRegistry before any JS value is made, as socket_wrap.cc does, so a
// terminated worker leaks none.
#include <napi.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "socket_ops.h"
#include "spawn.h"

namespace aionode {

namespace {

// Records a new fd as the environment's; on failure closes it and returns
// -errno (an fd nobody would close is worse than a failed call).
int OwnFd(Napi::Env env, int fd) {
  if (fd < 0) return fd;
  AddonData* data = GetAddonData(env);
  if (data == nullptr) return fd;
  int rc;
  try {
    rc = data->fds.Add(fd);
  } catch (...) {
    rc = -ENOMEM;
  }
  if (rc < 0) {
    FdClose(fd);
    return rc;
  }
  return fd;
}

int RequireIntArg(const Napi::CallbackInfo& info, size_t i, const char* name,
                  double min, double max, const char* expected) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) ThrowArgType(info.Env(), name, expected, v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != std::trunc(d)) ThrowArgRange(info.Env(), name, expected, v);
  return static_cast<int>(d);
}

// An array of strings without NUL (execve would cut them short).
std::vector<std::string> RequireStrings(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsArray()) ThrowArgType(env, name, "an array of strings", v);
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  uint32_t n = a.Length();
  out.reserve(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value el = a.Get(i);
    std::string item = std::string(name) + "[" + std::to_string(i) + "]";
    if (!el.IsString()) ThrowArgType(env, item.c_str(), "a string", el);
    std::string s = el.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos) {
      ThrowArgType(env, item.c_str(), "a string without NUL characters", el);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<int> RequireFds(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsArray()) ThrowArgType(env, name, "an array of file descriptors", v);
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value el = a.Get(i);
    std::string item = std::string(name) + "[" + std::to_string(i) + "]";
    if (!el.IsNumber()) ThrowArgType(env, item.c_str(), "a file descriptor", el);
    double d = el.As<Napi::Number>().DoubleValue();
    if (!(d >= -1 && d <= INT_MAX) || d != std::trunc(d)) {
      ThrowArgRange(env, item.c_str(), "a file descriptor (an integer >= -1)", el);
    }
    out.push_back(static_cast<int>(d));
  }
  return out;
}

std::vector<char*> NullTerminated(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(&s[0]);
  out.push_back(nullptr);
  return out;
}

// spawn(candidates, argv, env, cwd, stdio, passFds, newSession,
//       processGroup, failure) -> pid, or -errno with failure = [step, index]
// (index: see SpawnFailure::index)
Napi::Value SpawnJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> candidates = RequireStrings(env, info[0], "candidates");
  if (candidates.empty()) ThrowArgType(env, "candidates", "a non-empty array of paths", info[0]);
  std::vector<std::string> argv = RequireStrings(env, info[1], "argv");
  if (argv.empty()) ThrowArgType(env, "argv", "a non-empty array of strings", info[1]);
  std::vector<std::string> envv = RequireStrings(env, info[2], "env");
  std::string cwd;
  bool has_cwd = false;
  if (!info[3].IsNull() && !info[3].IsUndefined()) {
    if (!info[3].IsString()) ThrowArgType(env, "cwd", "a string or null", info[3]);
    cwd = info[3].As<Napi::String>().Utf8Value();
    if (cwd.find('\0') != std::string::npos) ThrowArgType(env, "cwd", "a path without NUL characters", info[3]);
    has_cwd = true;
  }
  std::vector<int> stdio = RequireFds(env, info[4], "stdio");
  if (stdio.size() != 3) ThrowArgType(env, "stdio", "an array of 3 file descriptors", info[4]);
  std::vector<int> pass = RequireFds(env, info[5], "passFds");
  for (size_t i = 0; i < pass.size(); i++) {
    if (pass[i] < 3) {
      std::string item = "passFds[" + std::to_string(i) + "]";
      ThrowArgRange(env, item.c_str(), "a file descriptor >= 3", Napi::Number::New(env, pass[i]));
    }
  }
  if (!info[6].IsBoolean()) ThrowArgType(env, "newSession", "a boolean", info[6]);
  bool new_session = info[6].As<Napi::Boolean>().Value();
  int group = RequireIntArg(info, 7, "processGroup", -1, INT_MAX, "-1 or a process group id");
  if (!info[8].IsArray()) ThrowArgType(env, "failure", "an array", info[8]);
  Napi::Array failure_out = info[8].As<Napi::Array>();

  // Everything the child reads is built here, before the fork.
  std::vector<const char*> cand_ptrs;
  for (auto& c : candidates) cand_ptrs.push_back(c.c_str());
  std::vector<char*> argv_ptrs = NullTerminated(argv);
  std::vector<char*> env_ptrs = NullTerminated(envv);

  SpawnSpec spec;
  spec.candidates = cand_ptrs.data();
  spec.n_candidates = cand_ptrs.size();
  spec.argv = argv_ptrs.data();
  spec.envp = env_ptrs.data();
  spec.cwd = has_cwd ? cwd.c_str() : nullptr;
  for (int i = 0; i < 3; i++) spec.stdio[i] = stdio[i];
  spec.pass_fds = pass.data();
  spec.n_pass_fds = pass.size();
  spec.new_session = new_session;
  spec.process_group = group;

  SpawnFailure failure;
  int pid = Spawn(spec, &failure);
  if (pid < 0) {
    failure_out.Set(0u, Napi::String::New(env, SpawnStepName(failure.step)));
    failure_out.Set(1u, Napi::Number::New(env, failure.index));
  }
  return Napi::Number::New(env, pid);
}

// pidfdOpen(pid) -> an owned close-on-exec fd, or -errno (-ENOSYS, -EPERM,
// -ESRCH).
Napi::Value PidfdOpenJs(const Napi::CallbackInfo& info) {
  int pid = RequireIntArg(info, 0, "pid", 1, INT_MAX, "a process id (a positive integer)");
  int fd = OwnFd(info.Env(), PidfdOpen(pid));
  return Napi::Number::New(info.Env(), fd);
}

// reap(pid) -> the return code (-signal when killed), or null while the
// child runs. Throws ChildProcessError (ECHILD) for a pid that is not an
// unreaped child of this process.
Napi::Value ReapJs(const Napi::CallbackInfo& info) {
  int pid = RequireIntArg(info, 0, "pid", 1, INT_MAX, "a process id (a positive integer)");
  int code = 0;
  int rc = ReapChild(pid, &code);
  ThrowIfError(info.Env(), rc, "waitpid");
  if (rc == 0) return info.Env().Null();
  return Napi::Number::New(info.Env(), code);
}

// pipe(size = 0) -> [readFd, writeFd]: close-on-exec, blocking, both
// owned; `size` > 0 asks for that pipe capacity (best effort).
Napi::Value PipeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int size = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    size = RequireIntArg(info, 0, "size", 0, 1 << 30, "a pipe size in bytes (0: the default)");
  }
  int fds[2];
  ThrowIfError(env, MakePipe(fds, size), "pipe");
  int r = OwnFd(env, fds[0]);
  if (r < 0) {
    FdClose(fds[1]);
    ThrowIfError(env, r, "pipe");
  }
  int w = OwnFd(env, fds[1]);
  if (w < 0) {
    AddonData* data = GetAddonData(env);
    if (data != nullptr && data->fds.Remove(r)) FdClose(r);
    ThrowIfError(env, w, "pipe");
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, r));
  out.Set(1u, Napi::Number::New(env, w));
  return out;
}

// setBlocking(fd, blocking): sets or clears O_NONBLOCK.
Napi::Value SetBlockingJs(const Napi::CallbackInfo& info) {
  int fd = RequireIntArg(info, 0, "fd", 0, INT_MAX, "a non-negative integer");
  if (!info[1].IsBoolean()) ThrowArgType(info.Env(), "blocking", "a boolean", info[1]);
  ThrowIfError(info.Env(), SetBlocking(fd, info[1].As<Napi::Boolean>().Value()), "fcntl");
  return info.Env().Undefined();
}

}  // namespace

void InitSpawnOps(Napi::Env env, Napi::Object exports) {
  SetFunction<SpawnJs>(env, exports, "spawn");
  SetFunction<PidfdOpenJs>(env, exports, "pidfdOpen");
  SetFunction<ReapJs>(env, exports, "reap");
  SetFunction<PipeJs>(env, exports, "pipe");
  SetFunction<SetBlockingJs>(env, exports, "setBlocking");
}

}  // namespace aionode
