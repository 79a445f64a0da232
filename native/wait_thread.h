// Drives an event source that has no pollable fd (poll, select) from Node's loop,
// as Trio's guest mode does: a helper thread blocks in Wait(-1), hands the
// ready set to the loop thread through `notify` (uv_async_send in the
// binding), and then waits until the loop thread has consumed it and calls
// Arm() again. Only one ready set is ever in flight, so the loop thread
// never races the helper for the same events.
//
// Threads: Arm, Take and Stop are called on the loop thread only; notify runs
// on the helper thread. No Node or libuv headers here.
#ifndef AIONODE_WAIT_THREAD_H_
#define AIONODE_WAIT_THREAD_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "event_source.h"

namespace aionode {

class WaitThread {
 public:
  using Notify = void (*)(void* arg);

  WaitThread(std::shared_ptr<EventSource> source, int capacity, Notify notify,
             void* arg);
  ~WaitThread();  // Stops the thread if it still runs.

  // Starts the thread (parked until Arm). Returns 0 or -errno.
  int Start();

  // Lets the thread run one more Wait(-1).
  void Arm();

  // Copies the set handed over by the last notify into out (at most cap
  // pairs). Returns the pair count, 0 if nothing is pending, or the -errno
  // Wait failed with.
  int Take(int32_t* out, int cap);

  // Stops and joins the thread. Idempotent.
  void Stop();

 private:
  void Run();

  std::shared_ptr<EventSource> selector_;
  Notify notify_;
  void* arg_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool stop_ = false;
  bool has_result_ = false;
  int result_ = 0;
  std::vector<int32_t> buf_;
  std::thread thread_;
};

}  // namespace aionode

#endif  // AIONODE_WAIT_THREAD_H_
