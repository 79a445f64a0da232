#include "loop_wrap.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "addon.h"
#include "batch.h"
#include "clock.h"
#include "errors.h"
#include "proactor_wrap.h"
#include "selector_wrap.h"

namespace aionode {

namespace {

// Seconds (loop.time() units) to the heap's nanoseconds, rounded UP so a
// timer never fires before the instant JavaScript asked for.
int64_t SecondsToNs(double s) {
  double ns = std::ceil(s * 1e9);
  if (!(ns < 9.0e18)) return kNeverNs;  // +Infinity, > 285 years
  if (ns < 0) return 0;
  return static_cast<int64_t>(ns);
}

double RequireNumber(const Napi::CallbackInfo& info, size_t i,
                     const char* name) {
  if (!info[i].IsNumber()) ThrowArgType(info.Env(), name, "a number", info[i]);
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) ThrowArgType(info.Env(), name, "a number, not NaN", info[i]);
  return d;
}

int32_t RequireTimerId(const Napi::CallbackInfo& info, size_t i) {
  double d = RequireNumber(info, i, "id");
  if (d < 0 || d >= TimerHeap::kMaxId || d != std::trunc(d)) {
    ThrowArgType(info.Env(), "id", "a timer id (integer >= 0)", info[i]);
  }
  return static_cast<int32_t>(d);
}

LoopWrap* Owner(void* data) { return static_cast<LoopCore*>(data)->owner; }

// The uv callbacks below are entered from libuv, where no C++ exception may
// arrive: RunBatch is noexcept and catches everything itself.
void OnPoll(uv_poll_t* h, int /*status*/, int /*events*/) {
  // A status < 0 (e.g. EBADF after teardown began) still means "look": the
  // select below reports the real state.
  if (LoopWrap* w = Owner(h->data)) w->RunBatch(true);
}

void OnIdle(uv_idle_t* h) {
  // A proactor's pass reads completions from shared memory (no system
  // call), and completions, unlike readiness, are not reported again: take
  // them on every pass.
  LoopCore* c = static_cast<LoopCore*>(h->data);
  if (LoopWrap* w = c->owner) w->RunBatch(c->hooks != nullptr);
}

void OnUvTimer(uv_timer_t* h) {
  static_cast<LoopCore*>(h->data)->armed_when = INT64_MAX;
  if (LoopWrap* w = Owner(h->data)) w->RunBatch(false);
}

void OnAsync(uv_async_t* h) {
  LoopCore* c = static_cast<LoopCore*>(h->data);
  c->thread_busy = false;
  if (c->owner != nullptr) c->owner->RunBatch(true);
}

void NotifyAsync(void* arg) {
  // Runs on the helper thread: uv_async_send is the one libuv call that is
  // safe from another thread.
  uv_async_send(static_cast<LoopCore*>(arg)->async);
}

// Drops one pending close; the last one frees the core.
void ReleaseCore(LoopCore* c) {
  if (--c->pending_closes > 0) return;
  if (c->cleanup != nullptr) napi_remove_async_cleanup_hook(c->cleanup);
  if (c->owner != nullptr) c->owner->Detach();
  delete c;
}

// One close callback per handle type: each handle is deleted as the type it
// was allocated as (deleting a uv_poll_t through uv_handle_t* is undefined
// behaviour, and ASan's new-delete-type-mismatch).
template <typename H>
void OnHandleClosed(uv_handle_t* h) {
  LoopCore* c = static_cast<LoopCore*>(h->data);
  delete reinterpret_cast<H*>(h);
  ReleaseCore(c);
}

void OnCleanupHook(napi_async_cleanup_hook_handle handle, void* arg) {
  LoopCore* c = static_cast<LoopCore*>(arg);
  c->cleanup = handle;
  try {
    CloseCore(c);
  } catch (...) {
    // Environment teardown: nothing may be thrown into Node here.
  }
}

template <typename H>
void CloseHandle(LoopCore* c, H* h) {
  if (h == nullptr) return;
  c->pending_closes++;
  uv_close(reinterpret_cast<uv_handle_t*>(h), OnHandleClosed<H>);
}

// Test switch: AIONODE_TIMER_SOURCE=uv_timer makes a loop use the uv_timer_t
// fallback even where timerfd exists, so both arming paths run in CI.
bool ForceUvTimer() {
  const char* v = std::getenv("AIONODE_TIMER_SOURCE");
  return v != nullptr && std::strcmp(v, "uv_timer") == 0;
}

}  // namespace

void CloseCore(LoopCore* c) {
  if (c->closing) return;
  c->closing = true;
  c->running = false;
  if (c->thread) {
    // Stop joins; a join that fails (it cannot for a joinable thread of
    // ours) must still not leave a destructor or cleanup hook by throwing.
    try {
      c->thread->Stop();
    } catch (...) {
    }
    c->thread.reset();
  }
  if (c->source_timer && c->source) {
    c->source->ArmTimer(INT64_MAX);
    // The selector outlives this loop when JavaScript still holds it: its
    // size goes back to what JavaScript registered.
    if (c->selector != nullptr) c->selector->DropTimer();
  }
  c->source_timer = false;
  c->heap.Clear();
  // Hold one extra count so that the core is not freed by a close callback
  // while handles are still being closed below.
  c->pending_closes++;
  CloseHandle(c, c->poll);
  CloseHandle(c, c->async);
  CloseHandle(c, c->idle);
  CloseHandle(c, c->uvtimer);
  c->poll = nullptr;
  c->async = nullptr;
  c->idle = nullptr;
  c->uvtimer = nullptr;
  // uv_close has already taken the selector's fd out of libuv's epoll set
  // (uv__platform_invalidate_fd), and the helper thread is joined, so the
  // selector's fds can go now: close() frees fds synchronously.
  c->selector = nullptr;
  c->hooks.reset();
  c->source.reset();
  ReleaseCore(c);
}

Napi::Function LoopWrap::Init(Napi::Env env) {
  return DefineClass(
      env, "NativeLoop",
      {InstanceMethod<&LoopWrap::Start>("start"),
       InstanceMethod<&LoopWrap::Stop>("stop"),
       InstanceMethod<&LoopWrap::Kick>("kick"),
       InstanceMethod<&LoopWrap::TimerAt>("timerAt"),
       InstanceMethod<&LoopWrap::TimerIn>("timerIn"),
       InstanceMethod<&LoopWrap::TimerRemove>("timerRemove"),
       InstanceMethod<&LoopWrap::TimerCount>("timerCount"),
       InstanceMethod<&LoopWrap::Stats>("stats"),
       InstanceMethod<&LoopWrap::Close>("close"),
       InstanceAccessor<&LoopWrap::GetBackend>("backend")});
}

// new NativeLoop(source, events: Int32Array, onBatch: (n) => flags), the
// source a NativeSelector or a NativeProactor (told apart by type tag).
LoopWrap::LoopWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<LoopWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  SelectorWrap* sw = SelectorWrap::FromValue(env, info[0]);
  ProactorWrap* pw =
      sw == nullptr ? ProactorWrap::FromValue(env, info[0]) : nullptr;
  if (sw == nullptr && pw == nullptr) {
    ThrowArgType(env, "source", "a NativeSelector or NativeProactor",
                 info[0]);
  }
  if (!info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      info[1].As<Napi::TypedArray>().ElementLength() < 2) {
    ThrowArgType(env, "events", "an Int32Array of at least 2 elements",
                 info[1]);
  }
  if (!info[2].IsFunction()) ThrowArgType(env, "onBatch", "a function", info[2]);

  std::shared_ptr<EventSource> src;
  std::shared_ptr<Selector> sel;
  std::shared_ptr<SourceHooks> hooks;
  if (sw != nullptr) {
    sel = sw->Get(env, "create a loop");
    src = sel;
  } else {
    src = pw->Host(env, &hooks);
  }
  Napi::Int32Array events = info[1].As<Napi::Int32Array>();
  backend_ = src->Name();

  uv_loop_t* uvloop = nullptr;
  if (napi_get_uv_event_loop(env, &uvloop) != napi_ok || uvloop == nullptr) {
    throw Napi::Error::New(env, "aionode: no libuv loop in this environment");
  }

  // References first: they can fail (and throw) in a terminating
  // environment, and nothing is on Node's loop yet. The destructor, which
  // runs for a wrapper whose constructor completed, deletes them; on a
  // throw below the catch does. The selector is not referenced: the core
  // owns it through its shared_ptr, and a reference would only delay the
  // collection of a dropped loop's selector by one GC.
  try {
    Setup(info, src, sel.get(), hooks, events, uvloop);
  } catch (...) {
    ReleaseRefs();
    throw;
  }
}

void LoopWrap::Setup(const Napi::CallbackInfo& info,
                     const std::shared_ptr<EventSource>& src, Selector* sel,
                     const std::shared_ptr<SourceHooks>& hooks,
                     Napi::Int32Array events, uv_loop_t* uvloop) {
  Napi::Env env = info.Env();
  // The wrapper object keeps the callback alive (a read-only, hidden
  // property), so a stopped loop's callback lives exactly as long as the
  // loop: wrapper -> callback -> JS loop -> wrapper is a cycle the GC can
  // collect, unlike one through a strong native reference.
  info.This().As<Napi::Object>().DefineProperty(
      Napi::PropertyDescriptor::Value("onBatch", info[2], napi_default));
  Napi::Object resource = Napi::Object::New(env);
  if (napi_create_reference(env, info[2], 0, &on_batch_) != napi_ok ||
      napi_create_reference(env, events, 1, &events_ref_) != napi_ok ||
      napi_create_reference(env, resource, 1, &self_ref_) != napi_ok) {
    throw Napi::Error::New(env, "aionode: cannot create the loop's references");
  }
  napi_async_init(env, resource, Napi::String::New(env, "aionode.Loop"),
                  &async_context_);

  auto c = std::make_unique<LoopCore>();
  c->env = env;
  c->source = src;
  c->selector = sel;
  c->hooks = hooks;
  c->events = events.Data();
  c->capacity = static_cast<int>(events.ElementLength() / 2);
  if (src->BackendFd() < 0) {
    c->thread = std::make_unique<WaitThread>(src, c->capacity, NotifyAsync,
                                             c.get());
  }

  // One rule: the source's own timer when it has one (the first, disarming
  // call sets it up, here on the loop thread before any helper thread
  // waits), else a uv_timer_t.
  if (!ForceUvTimer()) {
    int rc = src->ArmTimer(INT64_MAX);
    if (rc < 0 && rc != -ENOSYS) ThrowIfError(env, rc, "timer_create");
    c->source_timer = rc == 0;
  }

  // Handles are created last, once nothing can throw any more, so a failed
  // constructor never leaves a handle behind on Node's loop.
  if (src->BackendFd() >= 0) {
    c->poll = new uv_poll_t;
    int rc = uv_poll_init(uvloop, c->poll, src->BackendFd());
    if (rc != 0) {
      delete c->poll;
      c->poll = nullptr;
      if (sel != nullptr) sel->DropTimer();
      throw MakeOsError(env, -rc, "uv_poll_init");
    }
    c->poll->data = c.get();
  } else {
    c->async = new uv_async_t;
    uv_async_init(uvloop, c->async, OnAsync);
    c->async->data = c.get();
    uv_unref(reinterpret_cast<uv_handle_t*>(c->async));
  }
  c->idle = new uv_idle_t;
  uv_idle_init(uvloop, c->idle);
  c->idle->data = c.get();
  // Made even beside a source timer (no system call, inactive): a source
  // whose timer stops working (a proactor closed under its loop) hands
  // over to it in Rearm.
  c->uvtimer = new uv_timer_t;
  uv_timer_init(uvloop, c->uvtimer);
  c->uvtimer->data = c.get();

  core_ = c.release();
  core_->owner = this;
  if (napi_add_async_cleanup_hook(env, OnCleanupHook, core_,
                                  &core_->cleanup) != napi_ok) {
    core_->cleanup = nullptr;
  }
  if (core_->thread) {
    int rc = core_->thread->Start();
    if (rc < 0) {
      // The destructor will not run for a constructor that throws: the
      // core must not call back into this wrapper.
      core_->owner = nullptr;
      CloseCore(core_);
      core_ = nullptr;
      throw MakeOsError(env, rc, "pthread_create");
    }
  }
}

void LoopWrap::ReleaseRefs() {
  // Raw calls with the status ignored: this runs in finalizers, where a
  // failure can only mean the environment is being torn down.
  if (on_batch_ != nullptr) napi_delete_reference(env_, on_batch_);
  if (events_ref_ != nullptr) napi_delete_reference(env_, events_ref_);
  if (self_ref_ != nullptr) napi_delete_reference(env_, self_ref_);
  on_batch_ = events_ref_ = self_ref_ = nullptr;
  batch_strong_ = false;
  if (async_context_ != nullptr) napi_async_destroy(env_, async_context_);
  async_context_ = nullptr;
}

// Runs as the GC finalizer of a collected loop (item 10) or at environment
// teardown: closes the core, i.e. its fds, handles and helper thread.
LoopWrap::~LoopWrap() {
  if (core_ != nullptr) {
    core_->owner = nullptr;
    CloseCore(core_);
    core_ = nullptr;
  }
  ReleaseRefs();
}

void LoopWrap::HoldBatch(bool strong) {
  if (strong == batch_strong_ || on_batch_ == nullptr) return;
  uint32_t count = 0;
  napi_status st = strong ? napi_reference_ref(env_, on_batch_, &count)
                          : napi_reference_unref(env_, on_batch_, &count);
  if (st == napi_ok) batch_strong_ = strong;
}

void LoopWrap::Halt() {
  LoopCore* c = core_;
  c->running = false;
  if (c->poll != nullptr) uv_poll_stop(c->poll);
  if (c->async != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(c->async));
  if (c->uvtimer != nullptr) uv_timer_stop(c->uvtimer);
  c->armed_when = INT64_MAX;
  if (c->source_timer) c->source->ArmTimer(INT64_MAX);
  StopIdle();
}

LoopCore* LoopWrap::Core(Napi::Env env, const char* use) {
  if (core_ == nullptr || core_->closing) {
    throw Napi::Error::New(env, std::string("Cannot ") + use +
                                    ": the native loop is closed");
  }
  return core_;
}

void LoopWrap::StartIdle() {
  if (!core_->idle_on) {
    uv_idle_start(core_->idle, OnIdle);
    core_->idle_on = true;
  }
}

void LoopWrap::StopIdle() {
  if (core_->idle_on) {
    uv_idle_stop(core_->idle);
    core_->idle_on = false;
  }
}

void LoopWrap::Rearm() {
  LoopCore* c = core_;
  int64_t want = NextWakeup(c->heap, c->running);
  if (want >= kNeverNs) want = INT64_MAX;
  if (want == c->armed_when) return;
  c->armed_when = want;
  c->timer_arms++;
  if (c->source_timer) {
    // A deadline of 0 or in the past must fire at once (item 4): the
    // source's ArmTimer never takes it for "disarm"; only INT64_MAX is.
    if (c->source->ArmTimer(want) == 0) return;
    // The source's timer is gone (its proactor was closed): libuv's from
    // now on, so the loop's timers outlive its source.
    c->source_timer = false;
  }
  if (want == INT64_MAX) {
    uv_timer_stop(c->uvtimer);
  } else {
    // uv timers count whole milliseconds from a truncated "now": round up
    // and add one so they never fire early; RunBatch checks the real clock
    // anyway and only pops timers that are due. A past deadline is 0 ms:
    // the next iteration's timer phase.
    int64_t delta = want - MonotonicNs();
    uint64_t ms = delta <= 0 ? 0 : static_cast<uint64_t>(delta / 1000000) + 2;
    uv_timer_start(c->uvtimer, OnUvTimer, ms, 0);
  }
}

// One napi_make_callback for the whole batch: the only supported way to have
// microtasks and nextTicks drain after it (loop-integration.md Q1/Q2).
// Raw N-API here, because in a terminating worker (terminate(),
// process.exit()) every JS call fails and node-addon-api would turn that
// into a C++ exception leaving a uv callback; here it simply means "stop
// calling JS" (Halt). `c`, not core_: JS may close the loop during the
// call (core_ becomes null), while c lives until its close callbacks.
int32_t LoopWrap::CallJs(LoopCore* c, int n) {
  napi_env env = env_;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    c->js_gone = true;
    return 0;
  }
  int32_t flags = 0;
  napi_value recv = nullptr, fn = nullptr, argv[1], result;
  if (napi_get_reference_value(env, self_ref_, &recv) == napi_ok &&
      napi_get_reference_value(env, on_batch_, &fn) == napi_ok &&
      recv != nullptr && fn != nullptr &&
      napi_create_int32(env, n, &argv[0]) == napi_ok) {
    napi_status st =
        napi_make_callback(env, async_context_, recv, fn, 1, argv, &result);
    if (st == napi_ok) {
      if (napi_get_value_int32(env, result, &flags) != napi_ok) flags = 0;
    } else {
      // A JS exception out of the batch is a bug in lib: crash loudly
      // through 'uncaughtException'. No exception to report means JS
      // cannot run any more (a terminating environment).
      bool pending = false;
      napi_value exc;
      napi_valuetype t = napi_undefined;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
          napi_get_and_clear_last_exception(env, &exc) == napi_ok &&
          napi_typeof(env, exc, &t) == napi_ok && t != napi_undefined) {
        if (napi_fatal_exception(env, exc) != napi_ok) c->js_gone = true;
      } else {
        c->js_gone = true;
      }
    }
  } else {
    // The callback is gone (collected while weak, or references failing at
    // teardown): nothing can be delivered any more.
    c->js_gone = true;
  }
  napi_close_handle_scope(env, scope);
  return flags;
}

void LoopWrap::RunBatch(bool take_io) noexcept {
  try {
    RunBatchUnsafe(take_io);
  } catch (...) {
    // Nothing in RunBatchUnsafe throws by design; if something does, the
    // loop stops instead of the process aborting in a uv callback.
    if (core_ != nullptr && !core_->closing) Halt();
  }
}

void LoopWrap::RunBatchUnsafe(bool take_io) {
  LoopCore* c = core_;
  if (c == nullptr || c->closing || c->js_gone) return;
  int n = 0;
  if (c->hooks) {
    // Completions are not level-triggered: one taken while the loop is
    // stopped would be lost, so they wait in the ring until it runs.
    if (!c->running) take_io = false;
    c->hooks->BeginPass();
  }
  if (take_io) {
    c->io_passes++;
    if (c->thread) {
      n = c->thread->Take(c->events, c->capacity);
    } else {
      EventBuffer eb{c->events, c->capacity};
      n = c->source->Wait(&eb, 0);
    }
    if (n < 0) {
      // A failing select is a bug or a broken fd set: crash loudly through
      // 'uncaughtException' rather than spin.
      napi_handle_scope scope;
      if (napi_open_handle_scope(env_, &scope) == napi_ok) {
        try {
          napi_fatal_exception(env_, MakeOsError(env_, n, "select").Value());
        } catch (...) {
        }
        napi_close_handle_scope(env_, scope);
      }
      n = 0;
    }
    // The timer's pair only means "look at the heap" (the source consumed
    // the expiry itself): drop it.
    bool timer_fired = false;
    n = DropToken(c->events, n, kTimerToken, &timer_fired);
    if (timer_fired) c->armed_when = INT64_MAX;
    if (c->hooks) n = c->hooks->AfterWait(c->events, n);
  } else {
    c->idle_passes++;
  }
  if (!c->running) {
    // Level-triggered readiness comes back once the loop runs again.
    return;
  }

  bool more = false;
  n = AppendDueTimers(&c->heap, MonotonicNs(), c->events, n, c->capacity,
                      &more);

  StopIdle();
  c->in_batch = true;
  c->batches++;
  // Held across the call: JS may close the loop, and the hooks must still
  // see the end of the batch they saw begin.
  std::shared_ptr<SourceHooks> hooks = c->hooks;
  if (hooks) hooks->EnterBatch();
  int32_t flags = CallJs(c, n);
  c->in_batch = false;
  if (hooks && hooks->EndBatch()) more = true;
  // JS may have closed the loop: then core_ is null (or closing) and c is
  // freed by its last close callback, after this returns.
  if (c->closing || core_ != c) return;
  if (c->js_gone) {
    Halt();
    return;
  }
  if (c->running && ((flags & 1) != 0 || more)) StartIdle();
  Rearm();
  if (c->thread && c->running && !c->thread_busy) {
    c->thread_busy = true;
    c->thread->Arm();
  }
}

// start(kick: boolean): the loop runs; handles are ref'd from now on.
Napi::Value LoopWrap::Start(const Napi::CallbackInfo& info) {
  LoopCore* c = Core(info.Env(), "start");
  // A running loop must outlive every reference to it but its own running
  // state (item 10): the batch callback, and through it the JS loop, is a
  // GC root until stop().
  HoldBatch(true);
  c->js_gone = false;
  c->running = true;
  if (c->poll != nullptr) {
    int rc = uv_poll_start(c->poll, UV_READABLE, OnPoll);
    if (rc != 0) {
      c->running = false;
      HoldBatch(false);
      throw MakeOsError(info.Env(), -rc, "uv_poll_start");
    }
  } else {
    uv_ref(reinterpret_cast<uv_handle_t*>(c->async));
    if (!c->thread_busy) {
      c->thread_busy = true;
      c->thread->Arm();
    }
  }
  Rearm();
  if (info[0].ToBoolean()) StartIdle();
  return info.Env().Undefined();
}

// stop(): the loop no longer runs; nothing of it holds the process open.
Napi::Value LoopWrap::Stop(const Napi::CallbackInfo& info) {
  if (core_ == nullptr || core_->closing) return info.Env().Undefined();
  LoopCore* c = core_;
  c->running = false;
  if (c->poll != nullptr) {
    uv_poll_stop(c->poll);
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(c->async));
  }
  StopIdle();
  Rearm();
  HoldBatch(false);
  return info.Env().Undefined();
}

// kick(): JS queued a ready callback outside a batch; run a pass soon. No
// syscall: an active idle handle only makes libuv poll with timeout 0.
Napi::Value LoopWrap::Kick(const Napi::CallbackInfo& info) {
  if (core_ != nullptr && core_->running && !core_->closing) StartIdle();
  return info.Env().Undefined();
}

// timerAt(id, whenSeconds)
Napi::Value LoopWrap::TimerAt(const Napi::CallbackInfo& info) {
  LoopCore* c = Core(info.Env(), "schedule a timer");
  int32_t id = RequireTimerId(info, 0);
  int64_t when = SecondsToNs(RequireNumber(info, 1, "when"));
  ThrowIfError(info.Env(), c->heap.Add(id, when), "timer_add");
  // Inside a batch the heap is re-armed once when the batch ends.
  if (!c->in_batch && when < c->armed_when) Rearm();
  return info.Env().Undefined();
}

// timerIn(id, delaySeconds) -> whenSeconds: one crossing for callLater.
Napi::Value LoopWrap::TimerIn(const Napi::CallbackInfo& info) {
  LoopCore* c = Core(info.Env(), "schedule a timer");
  int32_t id = RequireTimerId(info, 0);
  double delay = RequireNumber(info, 1, "delay");
  int64_t d = SecondsToNs(delay);
  int64_t now = MonotonicNs();
  bool never = d >= kNeverNs - now;
  int64_t when = never ? kNeverNs : now + d;
  ThrowIfError(info.Env(), c->heap.Add(id, when), "timer_add");
  if (!c->in_batch && when < c->armed_when) Rearm();
  // A clamped deadline never fires; JS still sees time() + delay as
  // asyncio computes it (Infinity for Infinity), not the clamp.
  double when_s = never ? static_cast<double>(now) / 1e9 + delay
                        : static_cast<double>(when) / 1e9;
  return Napi::Number::New(info.Env(), when_s);
}

Napi::Value LoopWrap::TimerRemove(const Napi::CallbackInfo& info) {
  LoopCore* c = Core(info.Env(), "cancel a timer");
  int32_t id = RequireTimerId(info, 0);
  int rc = c->heap.Remove(id);
  return Napi::Boolean::New(info.Env(), rc == 0);
}

Napi::Value LoopWrap::TimerCount(const Napi::CallbackInfo& info) {
  size_t n = core_ != nullptr ? core_->heap.Size() : 0;
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value LoopWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (core_ == nullptr) return o;
  o.Set("batches", core_->batches);
  o.Set("ioPasses", core_->io_passes);
  o.Set("idlePasses", core_->idle_passes);
  o.Set("timerArms", core_->timer_arms);
  o.Set("timers", static_cast<double>(core_->heap.Size()));
  o.Set("timerHeapBytes", static_cast<double>(core_->heap.HeapBytes()));
  o.Set("timerIndexBytes", static_cast<double>(core_->heap.IndexBytes()));
  double registered = 0;
  if (core_->selector != nullptr) {
    registered = core_->selector->Size() - (core_->selector->HasTimer() ? 1 : 0);
  } else if (core_->hooks) {
    registered = core_->hooks->Pending();
  }
  o.Set("registered", registered);
  o.Set("helperThread", core_->thread != nullptr);
  o.Set("timerSource", core_->source_timer ? "timerfd" : "uv_timer");
  return o;
}

Napi::Value LoopWrap::Close(const Napi::CallbackInfo& info) {
  if (core_ != nullptr) {
    LoopCore* c = core_;
    core_ = nullptr;
    c->owner = nullptr;
    CloseCore(c);
  }
  // Nothing is delivered after close: the callback need not stay alive.
  HoldBatch(false);
  return info.Env().Undefined();
}

Napi::Value LoopWrap::GetBackend(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), backend_);
}

}  // namespace aionode
