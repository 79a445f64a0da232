// The native half of the event loop, living inside Node's own libuv loop
// ("guest mode", docs/design.md, "Living inside Node's loop"). It hosts any EventSource (event_source.h):
// a Selector (readiness) or a Proactor (completions, proactor.h):
//   * epoll, io_uring: the source's fd is watched by one uv_poll_t;
//   * poll / select: a WaitThread blocks in the source and hands each ready
//     set over with uv_async_send;
//   * timers: a TimerHeap beside the source, armed on the source's own timer
//     (ArmTimer: a timerfd in its wait set) or, where it has none, on a
//     uv_timer_t: one rule;
//   * a proactor's binding is told where batches begin and end
//     (SourceHooks): it frees what the previous batch delivered, owns
//     accepted fds before JavaScript sees them, and flushes submissions
//     with one system call after JavaScript returns;
//   * each batch of (token, events) / (-1, timerId) pairs is written into one
//     shared Int32Array and delivered with ONE napi_make_callback, so promise
//     microtasks and nextTicks drain after every batch;
//   * a uv_idle_t runs the next pass while JS has ready callbacks, so the
//     uv_poll_t never has to be woken by a syscall for work already queued.
// Handles are ref'd only while the loop runs: an idle loop never holds the
// process open.
//
// Lifetime (issue 8 item 10): the batch callback closes over the JS loop,
// which holds this wrapper, so a strong reference to it from here would be a
// cycle through a GC root and a dropped loop would never be collected. It is
// held strongly only while the loop runs (start .. stop/close), when the
// running loop must stay alive even if nothing else refers to it. Otherwise
// the wrapper object itself holds the callback (a hidden property), so the
// cycle wrapper -> callback -> JS loop -> wrapper stays inside the JS heap
// and a dropped, stopped loop is collected. A collected wrapper closes its
// core (fds, handles, thread).
//
// Exceptions (item 7): uv callbacks, the cleanup hook, finalizers and
// destructors are not wrapped by node-addon-api, so nothing thrown may leave
// them; Node-API calls made from them are raw and a failure there means the
// environment is going away: stop calling JavaScript.
#ifndef AIONODE_LOOP_WRAP_H_
#define AIONODE_LOOP_WRAP_H_

#include <napi.h>
#include <uv.h>

#include <memory>

#include "event_source.h"
#include "selector.h"
#include "timer_heap.h"
#include "wait_thread.h"

namespace aionode {

class LoopWrap;

// What a proactor's binding does around each batch (proactor_wrap.cc). All
// called on the loop thread, from uv callbacks: none may throw.
class SourceHooks {
 public:
  virtual ~SourceHooks() = default;
  // A pass starts: what the previous batch delivered can go.
  virtual void BeginPass() noexcept = 0;
  // Wait filled pairs[0, n): take ownership of what they carry (accepted
  // fds), retire final completions. Returns the count to deliver.
  virtual int AfterWait(int32_t* pairs, int n) noexcept = 0;
  // JavaScript runs the batch between these two; EndBatch flushes and
  // returns whether the source has more to report at once.
  virtual void EnterBatch() noexcept = 0;
  virtual bool EndBatch() noexcept = 0;
  // For stats(): ops in flight.
  virtual int Pending() const noexcept = 0;
};

// Everything the uv handles touch. Heap-allocated and freed by the last
// uv_close callback, so it outlives the JS wrapper when GC comes first and
// the wrapper outlives it when environment teardown comes first.
struct LoopCore {
  napi_env env = nullptr;
  LoopWrap* owner = nullptr;
  std::shared_ptr<EventSource> source;
  Selector* selector = nullptr;         // source, when it is a selector
  std::shared_ptr<SourceHooks> hooks;   // when it is a proactor
  TimerHeap heap;
  bool source_timer = false;            // ArmTimer, else uvtimer
  int64_t armed_when = INT64_MAX;
  uv_poll_t* poll = nullptr;      // epoll / kqueue / io_uring mode
  uv_async_t* async = nullptr;    // helper-thread mode
  std::unique_ptr<WaitThread> thread;
  bool thread_busy = false;       // armed and not yet consumed
  uv_idle_t* idle = nullptr;
  bool idle_on = false;
  uv_timer_t* uvtimer = nullptr;  // only without source_timer
  int pending_closes = 0;
  napi_async_cleanup_hook_handle cleanup = nullptr;
  bool running = false;
  bool in_batch = false;
  bool closing = false;
  bool js_gone = false;           // a call into JS failed: env going away
  int32_t* events = nullptr;      // shared Int32Array data
  int capacity = 0;               // pairs
  // Counters for tests and benchmarks.
  double batches = 0, io_passes = 0, idle_passes = 0, timer_arms = 0;
};

class LoopWrap : public Napi::ObjectWrap<LoopWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit LoopWrap(const Napi::CallbackInfo& info);
  ~LoopWrap() override;

  // Runs one batch: optionally takes ready I/O, pops due timers, calls JS.
  // Called from uv callbacks: never throws.
  void RunBatch(bool take_io) noexcept;
  // Called when the core is freed (teardown) so the wrapper forgets it.
  void Detach() { core_ = nullptr; }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Kick(const Napi::CallbackInfo& info);
  Napi::Value TimerAt(const Napi::CallbackInfo& info);
  Napi::Value TimerIn(const Napi::CallbackInfo& info);
  Napi::Value TimerRemove(const Napi::CallbackInfo& info);
  Napi::Value TimerCount(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetBackend(const Napi::CallbackInfo& info);

  // The constructor's second half, after the arguments are checked.
  void Setup(const Napi::CallbackInfo& info,
             const std::shared_ptr<EventSource>& src, Selector* sel,
             const std::shared_ptr<SourceHooks>& hooks,
             Napi::Int32Array events, uv_loop_t* uvloop);
  LoopCore* Core(Napi::Env env, const char* use);
  void RunBatchUnsafe(bool take_io);
  void Rearm();
  int32_t CallJs(LoopCore* c, int n);
  void StartIdle();
  void StopIdle();
  // Holds the batch callback strongly (the loop runs) or weakly.
  void HoldBatch(bool strong);
  // Stops every handle without closing: JS can no longer be called.
  void Halt();
  void ReleaseRefs();

  LoopCore* core_ = nullptr;
  napi_env env_ = nullptr;
  // Raw references, so that the finalizer and the uv callbacks that use
  // them never meet a node-addon-api throw.
  napi_ref on_batch_ = nullptr;    // weak unless batch_strong_
  bool batch_strong_ = false;
  napi_ref events_ref_ = nullptr;  // strong: core_->events points into it
  napi_ref self_ref_ = nullptr;    // resource object for make_callback
  napi_async_context async_context_ = nullptr;
  std::string backend_;

  friend void CloseCore(LoopCore* core);
};

// Stops the helper thread and closes every handle; the core frees itself
// when the last close callback has run. Safe to call twice.
void CloseCore(LoopCore* core);

}  // namespace aionode

#endif  // AIONODE_LOOP_WRAP_H_
