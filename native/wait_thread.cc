#include "wait_thread.h"

#include <cerrno>
#include <cstring>
#include <system_error>

namespace aionode {

WaitThread::WaitThread(std::shared_ptr<EventSource> selector, int capacity,
                       Notify notify, void* arg)
    : selector_(std::move(selector)),
      notify_(notify),
      arg_(arg),
      buf_(static_cast<size_t>(capacity) * 2) {}

WaitThread::~WaitThread() { Stop(); }

int WaitThread::Start() {
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    return -(e.code().value() > 0 ? e.code().value() : EAGAIN);
  }
  return 0;
}

void WaitThread::Arm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = true;
  cv_.notify_one();
}

int WaitThread::Take(int32_t* out, int cap) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!has_result_) return 0;
  has_result_ = false;
  if (result_ <= 0) return result_;
  int n = result_ < cap ? result_ : cap;
  std::memcpy(out, buf_.data(), sizeof(int32_t) * 2 * n);
  return n;
}

void WaitThread::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  // The wake-up is level-triggered state in the source, so it also stops
  // a thread that is between checking stop_ and entering Wait.
  selector_->Wakeup();
  // Stop runs from the loop's close path, its cleanup hook and destructors:
  // a join that throws must neither escape nor leave a joinable std::thread
  // to be destroyed (std::terminate). The thread exits on its own (stop_).
  try {
    thread_.join();
  } catch (...) {
    thread_.detach();
  }
}

void WaitThread::Run() {
  EventBuffer eb{buf_.data(), static_cast<int>(buf_.size() / 2)};
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return armed_ || stop_; });
    if (stop_) return;
    armed_ = false;
    int n;
    do {
      lock.unlock();
      n = selector_->Wait(&eb, -1);
      lock.lock();
      // A zero count means a wake-up (an interest change or Stop): select
      // again with the new interest set instead of handing over nothing.
    } while (n == 0 && !stop_);
    if (stop_) return;
    result_ = n;
    has_result_ = true;
    lock.unlock();
    notify_(arg_);
    lock.lock();
  }
}

}  // namespace aionode
