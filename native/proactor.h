// The proactor contract: a completion source (io_uring; later IOCP). The
// caller submits operations, each under a caller-chosen Token; Wait reports
// every finished one as a (token, result) pair, where result is what the
// matching socket call would return (bytes, 0 at EOF, a new fd, 0 for a
// connect, a readiness mask for a poll) or -errno (-ECANCELED when a
// cancel won). A Proactor is an EventSource (event_source.h): the loop host
// drives it like a selector.
//
// Conventions, beyond event_source.h's:
//   * Tokens are >= 0 and unique among the ops in flight: a Submit with a
//     token whose op has not had its final completion reported by Wait
//     returns -EEXIST. After that completion the token is free again (a
//     batch may re-submit the token it was just handed).
//   * Every op has exactly one completion, except SubmitAcceptMany: one per
//     accepted fd, until its first negative result, which is the final one;
//     and SubmitRecvMany: one per chunk read (a packed value > 0, below),
//     until its first result <= 0 (0 at EOF, or -errno), the final one.
//   * Submit returns 0 when the op is queued, or -errno with nothing queued.
//     Errors of the op itself (a bad fd, a refused connect) come as its
//     completion. Queued ops reach the kernel at Flush(), or at once while
//     auto-flush is on; a full submission queue is flushed inline.
//   * Ownership: memory handed to a Submit (buffers, iovec targets) must
//     stay valid and untouched until Wait has reported that token's final
//     completion (or Drain has returned). Addresses, msghdrs and iovec
//     arrays are copied into the op: the caller's copies may go at once.
//   * Accepted fds are non-blocking and close-on-exec; they belong to
//     whoever receives the completion. An accepted fd nobody can receive
//     (the op ended inside Drain) is closed by the proactor.
//
// Threads: one thread, except Wakeup (any thread).
#ifndef AIONODE_PROACTOR_H_
#define AIONODE_PROACTOR_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "event_source.h"
#include "socket_ops.h"

namespace aionode {

// The kind of an op, as the binding needs it to interpret results.
enum class OpKind : uint8_t {
  kRecv,
  kRecvFrom,
  kSend,
  kSendMsg,  // writev and sendto
  kAccept,
  kAcceptMany,
  kConnect,
  kPoll,
  kRecvMany,
};

// A SubmitRecvMany chunk's completion value: the buffer id in the pool
// (SetBufferPool) and the bytes read, packed into one positive int32 so
// that it travels in the same (token, result) pair as every other result.
// Buffers are at most 1 << kRecvLenBits - 1 bytes and ids below
// 1 << (31 - kRecvLenBits), so the value never reaches the sign bit.
constexpr int kRecvLenBits = 17;
constexpr uint32_t kRecvPoolMaxSize = (1u << kRecvLenBits) - 1;
constexpr uint32_t kRecvPoolMaxCount = 1u << (31 - kRecvLenBits);
inline int32_t PackRecvChunk(uint32_t bid, uint32_t len) {
  return static_cast<int32_t>((bid << kRecvLenBits) | len);
}
inline uint32_t RecvChunkBid(int32_t v) {
  return static_cast<uint32_t>(v) >> kRecvLenBits;
}
inline uint32_t RecvChunkLen(int32_t v) {
  return static_cast<uint32_t>(v) & kRecvPoolMaxSize;
}

class Proactor : public EventSource {
 public:
  // recv(2) into buf[0, len).
  virtual int SubmitRecv(Token token, Fd fd, void* buf, size_t len) = 0;
  // recvmsg(2) of one datagram into buf[0, len); the sender is kept for
  // Address(token).
  virtual int SubmitRecvFrom(Token token, Fd fd, void* buf, size_t len) = 0;
  // send(2) with MSG_NOSIGNAL.
  virtual int SubmitSend(Token token, Fd fd, const void* buf, size_t len) = 0;
  // sendmsg(2) with MSG_NOSIGNAL of iov[0, iovcnt) (at most 1024), to `to`
  // when non-null (sendto). The iovec array and the address are copied.
  virtual int SubmitSendMsg(Token token, Fd fd, const struct iovec* iov,
                            int iovcnt, const SockAddr* to) = 0;
  // One accept4(2) NONBLOCK | CLOEXEC; the peer is kept for Address(token).
  virtual int SubmitAccept(Token token, Fd fd) = 0;
  // Accepts until the first error (see the contract above).
  virtual int SubmitAcceptMany(Token token, Fd fd) = 0;
  // connect(2) to `addr` (copied).
  virtual int SubmitConnect(Token token, Fd fd, const SockAddr& addr) = 0;
  // Provided-buffer pool for SubmitRecvMany: `count` buffers (a power of
  // two, at most kRecvPoolMaxCount) of `size` bytes (1 to
  // kRecvPoolMaxSize) at base[0, count * size), shared by every recv-many
  // op: the kernel picks a free one for each chunk it reads. Once per
  // proactor. The memory must stay valid until Drain has returned.
  // -EOPNOTSUPP where the kernel lacks multishot recv or provided-buffer
  // rings, -EEXIST the second time, -EINVAL for a bad size or count.
  virtual int SetBufferPool(void* base, uint32_t size, uint32_t count) = 0;
  // Multishot recv(2) into the pool: one submission, a completion per
  // chunk, each a PackRecvChunk value naming the buffer holding its bytes.
  // That buffer is the caller's until the next BeginBatch after Wait
  // reported it (read or copy it in the batch), then goes back to the pool.
  // When the pool runs dry the op waits inside (no completion) and goes on
  // once buffers come back; when the kernel ends it early it is re-armed
  // inside. -EOPNOTSUPP without a pool.
  virtual int SubmitRecvMany(Token token, Fd fd) = 0;
  // One-shot readiness for `interest` (kReadable 1 | kWritable 2): the
  // result is the ready subset; errors and hang-ups report every requested
  // direction, as the selectors do.
  virtual int SubmitPoll(Token token, Fd fd, uint32_t interest) = 0;

  // Asks the kernel to cancel the op: 0, or -ENOENT when no op with that
  // token is in flight. Its completion still comes (maybe a success).
  virtual int Cancel(Token token) = 0;
  // Cancels every op on `fd`: returns how many were in flight (0: none).
  virtual int CancelFd(Fd fd) = 0;
  // Ops on `fd` whose final completion Wait has not reported.
  virtual int OpsOnFd(Fd fd) const = 0;
  // Ops whose final completion Wait has not reported.
  virtual int Pending() const = 0;
  // The kind of the op in flight under `token`, or -ENOENT.
  virtual int KindOf(Token token, OpKind* out) const = 0;

  // Passes queued submissions to the kernel (one system call). Returns the
  // number passed or -errno.
  virtual int Flush() = 0;
  // With auto-flush on, every Submit and Cancel flushes at once (a caller
  // outside the loop's batch); off, they wait for Flush (the batch's end).
  virtual void SetAutoFlush(bool on) = 0;
  // Whether Wait has pairs to report without the backend fd polling
  // readable (pairs it had no room for): the host runs another pass.
  virtual bool HasBuffered() const = 0;

  // The peer of the last recvfrom / accept completion reported for `token`
  // since the last BeginBatch. Returns 0, or -ENOENT.
  virtual int Address(Token token, SockAddr* out) const = 0;
  // Forgets the addresses of completions reported before and gives the
  // pool buffers they named back to the kernel (a new batch).
  virtual void BeginBatch() = 0;

  // Cancels every op and waits (at most `timeout_ns`) until the kernel has
  // completed them all, dropping their completions (accepted fds closed).
  // After it, no memory handed to a Submit is used any more. Returns the
  // number of ops still in flight (0 unless the timeout ran out), and
  // leaves the proactor closed: Submit returns -EBADF, Wait 0.
  virtual int Drain(int64_t timeout_ns) = 0;
};

// What a kernel lacks or forbids, as the runtime probe found it.
struct ProactorFeatures {
  bool multishot_accept = false;
  bool multishot_recv = false;
  bool provided_buffer_ring = false;
  bool poll_multishot = false;
  bool cancel_fd_all = false;
  bool cancel_any = false;
  bool ext_arg = false;
  bool nodrop = false;
};

// Creates the io_uring proactor with `entries` submission slots (rounded up
// to a power of two by the kernel). Returns 0 and sets *out, or -errno:
// -ENOSYS where this build or kernel has no io_uring, -EPERM when it is
// denied, -EOPNOTSUPP when a required opcode is missing. *why (may be null)
// gets the sentence to show.
int CreateIoUringProactor(unsigned entries, std::unique_ptr<Proactor>* out,
                          std::string* why);

// The sentence for a refusal: ENOSYS "io_uring not supported by this
// kernel", EPERM "io_uring denied (seccomp or ...)". Exposed for tests.
std::string IoUringRefusal(int err);

// The probe's findings for a live proactor made by CreateIoUringProactor.
const ProactorFeatures* IoUringFeatures(const Proactor* p);

// Proactor names this build and kernel allow ("io_uring" or "").
const char* AvailableProactors();

}  // namespace aionode

#endif  // AIONODE_PROACTOR_H_
