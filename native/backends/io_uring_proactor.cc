// Linux io_uring backend of the proactor contract (proactor.h), built with
// AIO_HAVE_IO_URING. Raw system calls (no liburing): io_uring_setup,
// io_uring_enter and io_uring_register through syscall(2), the SQ and CQ
// rings mmap'd as io_uring_setup(2) describes. No SQPOLL: submissions sit
// in the SQ until Flush (one io_uring_enter), which the host calls once per
// loop pass; the ring fd polls readable while the CQ holds entries, so the
// host watches it with the same uv_poll_t it uses for epoll.
//
// user_data of an op's SQE is the address of its Op record, which lives
// until the op's final CQE has been reaped; the host's own ops (the timer
// and wake-up polls, cancels) use the small reserved values below, which no
// heap address can equal.
//
// Recv-many: one multishot IORING_OP_RECV per socket with IOSQE_BUFFER_SELECT
// from one provided-buffer ring (IORING_REGISTER_PBUF_RING, group
// kBufGroup) over the caller's pool. Each chunk's CQE names the buffer the
// kernel picked; the caller reads it in its batch and BeginBatch puts every
// buffer reported in the batch before back on the ring (one tail store, no
// system call). A ring that runs dry ends the multishot with -ENOBUFS: the
// op is parked here, not reported, and re-armed as soon as buffers are back
// (at the latest the next BeginBatch, which HasBuffered asks the host for).
//
// Timer: a timerfd watched by an internal multishot POLL_ADD (a one-shot
// one re-armed after every expiry on kernels before 5.13). Chosen over
// IORING_OP_TIMEOUT because re-arming a timerfd is one timerfd_settime
// with no SQE and no CQE, while a TIMEOUT needs a TIMEOUT_REMOVE/UPDATE
// round trip (two CQEs, and races between expiry and update) every time
// the earliest deadline moves; and it is the same timer_fd.cc the selector
// backends use, zero and past deadlines included.
#include <linux/io_uring.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../clock.h"
#include "../proactor.h"
#include "../timer_fd.h"
#include "backend_util.h"

namespace aionode {
namespace {

constexpr uint64_t kUdIgnore = 0;  // cancels: their own CQEs say nothing
constexpr uint64_t kUdTimer = 1;
constexpr uint64_t kUdWake = 2;

constexpr int kIovMax = 1024;
constexpr uint16_t kBufGroup = 0;

int SysSetup(unsigned entries, struct io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}
int SysEnter(int fd, unsigned to_submit, unsigned min_complete,
             unsigned flags) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, to_submit,
                                  min_complete, flags, nullptr, 0));
}
int SysRegister(int fd, unsigned op, void* arg, unsigned nr) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, op, arg, nr));
}

unsigned LoadAcquire(const unsigned* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
void StoreRelease(unsigned* p, unsigned v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

struct Op {
  Token token = 0;
  Fd fd = -1;
  OpKind kind = OpKind::kRecv;
  bool cancel_requested = false;
  bool parked = false;    // recv-many waiting for pool buffers
  uint32_t interest = 0;  // poll
  void* buf = nullptr;
  size_t len = 0;
  SockAddr addr;                 // peer (accept, recvfrom) or target
  socklen_t addrlen = 0;         // accept's in/out length
  struct msghdr msg = {};        // recvfrom / sendmsg
  struct iovec iov1 = {};        // recvfrom's one buffer
  std::vector<struct iovec> iovs;  // sendmsg's buffers
};

// What the kernel offers, by opcode and by feature bit; the features with
// no probe flag of their own are read from the opcode or feature that came
// in the same kernel release (noted beside each).
struct Probe {
  bool ops[256] = {};
  uint32_t features = 0;
};

constexpr struct {
  int op;
  const char* name;
} kRequired[] = {
    {IORING_OP_RECV, "IORING_OP_RECV"},
    {IORING_OP_SEND, "IORING_OP_SEND"},
    {IORING_OP_RECVMSG, "IORING_OP_RECVMSG"},
    {IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},
    {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},
    {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
    {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"},
    {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
};

// Test hooks, read once per creation: AIONODE_TEST_IO_URING=enosys|eperm
// makes io_uring_setup "fail" with that errno; =noop:<opcode number> makes
// the probe report that opcode missing; =old makes it report a 5.10-era
// kernel (no multishot accept or poll, no cancel by fd or "any", no
// IORING_ENTER_EXT_ARG), so the
// fallback paths run here too; =nomultirecv hides multishot recv and
// provided-buffer rings only (the transports' plain recv path). The refusal
// paths can then be tested on a kernel that allows everything.
void ReadTestHooks(int* fake_errno, int* hide_op, bool* old,
                   bool* no_multi_recv) {
  *fake_errno = 0;
  *hide_op = -1;
  *old = false;
  *no_multi_recv = false;
  const char* v = std::getenv("AIONODE_TEST_IO_URING");
  if (v == nullptr) return;
  if (std::strcmp(v, "enosys") == 0) *fake_errno = ENOSYS;
  if (std::strcmp(v, "eperm") == 0) *fake_errno = EPERM;
  if (std::strcmp(v, "old") == 0) *old = true;
  if (std::strcmp(v, "nomultirecv") == 0) *no_multi_recv = true;
  if (std::strncmp(v, "noop:", 5) == 0) *hide_op = std::atoi(v + 5);
}

class IoUringProactor final : public Proactor {
 public:
  static int Create(unsigned entries, std::unique_ptr<Proactor>* out,
                    std::string* why);
  ~IoUringProactor() override;

  int Wait(EventBuffer* out, int64_t timeout_ns) override;
  int Wakeup() override;
  Fd BackendFd() const override { return ring_fd_; }
  const char* Name() const override { return "io_uring"; }
  int ArmTimer(int64_t when_ns) override;

  int SubmitRecv(Token token, Fd fd, void* buf, size_t len) override;
  int SubmitRecvFrom(Token token, Fd fd, void* buf, size_t len) override;
  int SubmitSend(Token token, Fd fd, const void* buf, size_t len) override;
  int SubmitSendMsg(Token token, Fd fd, const struct iovec* iov, int iovcnt,
                    const SockAddr* to) override;
  int SubmitAccept(Token token, Fd fd) override;
  int SubmitAcceptMany(Token token, Fd fd) override;
  int SubmitConnect(Token token, Fd fd, const SockAddr& addr) override;
  int SubmitPoll(Token token, Fd fd, uint32_t interest) override;
  int SetBufferPool(void* base, uint32_t size, uint32_t count) override;
  int SubmitRecvMany(Token token, Fd fd) override;
  int Cancel(Token token) override;
  int CancelFd(Fd fd) override;
  int OpsOnFd(Fd fd) const override;
  int Pending() const override { return static_cast<int>(live_.size()); }
  int KindOf(Token token, OpKind* out) const override;
  int Flush() override;
  void SetAutoFlush(bool on) override { auto_flush_ = on; }
  bool HasBuffered() const override {
    return !buffered_.empty() || (!parked_.empty() && !recycle_.empty());
  }
  int Address(Token token, SockAddr* out) const override;
  void BeginBatch() override;
  int Drain(int64_t timeout_ns) override;

  const ProactorFeatures& features() const { return features_; }

 private:
  IoUringProactor() = default;
  int MapRings(const struct io_uring_params& p);
  // A zeroed SQE at the tail, or null when the SQ stays full after an
  // inline flush. Commit() publishes it.
  struct io_uring_sqe* GetSqe();
  void Commit();
  int Begin(Token token, Fd fd, OpKind kind, Op** out);
  // Queues op's SQE (filled by PrepOp) and files it as live.
  int Queue(Op* op);
  void PrepOp(Op* op, struct io_uring_sqe* sqe);
  int QueueInternalPoll(uint64_t ud, int fd);
  int QueueCancel(uint64_t target);
  void MaybeFlush() {
    if (auto_flush_) Flush();
  }
  // Takes CQEs into out (null: drop them) until out is full. Returns the
  // pairs written.
  int Reap(EventBuffer* out, int count);
  void ReapRecvMany(Op* op, const struct io_uring_cqe& cqe, bool more,
                    EventBuffer* out, int* count);
  // `bid` >= 0: the value names that pool buffer (freed once delivered).
  bool Emit(EventBuffer* out, int* count, int32_t token, int32_t value,
            int bid = -1);
  // Reports `op` ended with `res` outside any CQE (a parked recv-many
  // cancelled): queued as a buffered pair, the host woken to take it.
  void EndOutside(Op* op, int32_t res);
  // Puts the buffers in recycle_ back on the ring, then re-arms parked
  // recv-many ops if the ring has buffers again.
  void RefillPool();
  void RearmParked();
  void Rearm(Op* op);
  void Unpark(Op* op) {
    op->parked = false;
    for (size_t i = 0; i < parked_.size(); ++i) {
      if (parked_[i] == op) {
        parked_.erase(parked_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  // Buffers on the ring (the kernel's to use).
  uint32_t PoolFree() const { return pool_count_ - pool_out_; }
  // Blocks until a CQE is there or `timeout_ns` passed (-ETIME). 0 / -errno.
  int WaitCqe(int64_t timeout_ns);
  void Finish(Op* op);
  // Returns a finished op's record to free_ops_ (reset, its iovec storage
  // kept) or frees it: a connection's reads and writes reuse a handful of
  // records instead of a malloc/free pair per op.
  void Recycle(Op* op) {
    if (free_ops_.size() >= kFreeOpsMax) {
      delete op;
      return;
    }
    std::vector<struct iovec> iovs = std::move(op->iovs);
    iovs.clear();
    *op = Op();
    op->iovs = std::move(iovs);
    free_ops_.push_back(op);
  }
  static constexpr size_t kFreeOpsMax = 1024;
  std::vector<Op*> free_ops_;

  int ring_fd_ = -1;
  // SQ ring
  void* sq_ptr_ = nullptr;
  size_t sq_size_ = 0;
  unsigned* sq_khead_ = nullptr;
  unsigned* sq_ktail_ = nullptr;
  unsigned* sq_kflags_ = nullptr;
  unsigned* sq_array_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned sq_entries_ = 0;
  unsigned sq_tail_ = 0;  // ours; published to *sq_ktail_ by Commit
  struct io_uring_sqe* sqes_ = nullptr;
  size_t sqes_size_ = 0;
  // CQ ring (the same mapping as the SQ ring with IORING_FEAT_SINGLE_MMAP)
  void* cq_ptr_ = nullptr;
  size_t cq_size_ = 0;
  unsigned* cq_khead_ = nullptr;
  unsigned* cq_ktail_ = nullptr;
  unsigned cq_mask_ = 0;
  struct io_uring_cqe* cqes_ = nullptr;

  Probe probe_;
  ProactorFeatures features_;
  std::unordered_map<Token, Op*> live_;
  std::unordered_map<Fd, int> per_fd_;
  std::vector<Op*> retired_;  // reported this batch; kept for Address
  struct Pair {
    int32_t token, value, bid;
  };
  std::deque<Pair> buffered_;
  // Provided-buffer pool (SetBufferPool).
  struct io_uring_buf* pbuf_ring_ = nullptr;  // mmap'd, page-aligned
  size_t pbuf_ring_bytes_ = 0;
  char* pool_base_ = nullptr;
  uint32_t pool_size_ = 0;
  uint32_t pool_count_ = 0;
  uint32_t pool_out_ = 0;  // buffers off the ring: reported or in recycle_
  uint16_t pbuf_tail_ = 0;
  std::vector<uint16_t> recycle_;  // back to the ring at the next BeginBatch
  std::vector<Op*> parked_;
  bool auto_flush_ = true;
  bool closed_ = false;
  int timer_fd_ = -1;
  bool timer_poll_live_ = false;
  backend::WakeupFd wake_;
  bool wake_poll_live_ = false;
  bool internal_rearm_ = false;  // an internal poll was re-queued in Reap
  bool woken_ = false;           // Reap consumed a Wakeup()
};

int IoUringProactor::Create(unsigned entries, std::unique_ptr<Proactor>* out,
                            std::string* why) {
  int fake_errno, hide_op;
  bool old_kernel, no_multi_recv;
  ReadTestHooks(&fake_errno, &hide_op, &old_kernel, &no_multi_recv);
  if (entries == 0) entries = 256;
  std::unique_ptr<IoUringProactor> p(new IoUringProactor());
  struct io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  // Newest flags first; a kernel refuses flags it does not know with
  // EINVAL, so each refusal drops the newest ones. COOP_TASKRUN (5.19):
  // completions of ops that waited (a recv whose data came later) run as
  // task work; without it the kernel interrupts this thread with an IPI to
  // run it at once, and under load (a peer on another CPU sending all the
  // time) those IPIs cost more than the work. With it the work runs at our
  // next system call or sleep; a thread asleep (in epoll_wait or poll) is
  // still woken, so the ring fd's readiness is as before. SUBMIT_ALL
  // (5.18): one bad SQE does not stop the rest of the batch. The test hook
  // "old" starts at the oldest set, so that path runs here too.
  static const unsigned kFlagSets[] = {
      IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
      IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_CLAMP,
  };
  const size_t kSets = sizeof(kFlagSets) / sizeof(kFlagSets[0]);
  int fd = -1;
  for (size_t i = old_kernel ? kSets - 1 : 0; i < kSets; ++i) {
    std::memset(&params, 0, sizeof(params));
    params.flags = kFlagSets[i];
    fd = fake_errno != 0 ? (errno = fake_errno, -1) : SysSetup(entries, &params);
    if (fd >= 0 || errno != EINVAL) break;
  }
  if (fd < 0) {
    int err = errno;
    if (why != nullptr) *why = IoUringRefusal(err);
    return -err;
  }
  p->ring_fd_ = fd;
  // io_uring_setup(2) gives no O_CLOEXEC flag on old kernels; set it so the
  // ring never leaks into a child.
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  int rc = p->MapRings(params);
  if (rc < 0) {
    if (why != nullptr) *why = "cannot map the io_uring rings";
    return rc;
  }

  // io_uring_register(2) IORING_REGISTER_PROBE: one flag per opcode.
  const size_t probe_size =
      sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
  std::vector<unsigned char> raw(probe_size, 0);
  auto* probe = reinterpret_cast<struct io_uring_probe*>(raw.data());
  if (SysRegister(fd, IORING_REGISTER_PROBE, probe, 256) < 0) {
    int err = errno;
    if (why != nullptr) {
      *why = "io_uring probe failed (IORING_REGISTER_PROBE is 5.6+): " +
             std::string(std::strerror(err));
    }
    return -(err == EINVAL ? EOPNOTSUPP : err);
  }
  for (unsigned i = 0; i < probe->ops_len && i < 256; ++i) {
    if (probe->ops[i].flags & IO_URING_OP_SUPPORTED) {
      p->probe_.ops[probe->ops[i].op] = true;
    }
  }
  if (hide_op >= 0 && hide_op < 256) p->probe_.ops[hide_op] = false;
  p->probe_.features = params.features;
  for (const auto& r : kRequired) {
    if (!p->probe_.ops[r.op]) {
      if (why != nullptr) {
        *why = std::string("io_uring lacks the required opcode ") + r.name +
               " (kernel too old)";
      }
      return -EOPNOTSUPP;
    }
  }
  ProactorFeatures& f = p->features_;
  // IORING_OP_SOCKET, multishot accept, ASYNC_CANCEL_FD/ALL/ANY and
  // provided-buffer rings all came in 5.19.
  const bool v519 = p->probe_.ops[IORING_OP_SOCKET];
  f.multishot_accept = v519;
  f.cancel_fd_all = v519;
  f.cancel_any = v519;
  f.provided_buffer_ring = v519;
  // Multishot recv came with IORING_OP_SEND_ZC (6.0).
  f.multishot_recv = p->probe_.ops[IORING_OP_SEND_ZC];
  // Multishot poll came with IORING_FEAT_RSRC_TAGS (5.13).
  f.poll_multishot = (params.features & IORING_FEAT_RSRC_TAGS) != 0;
  f.ext_arg = (params.features & IORING_FEAT_EXT_ARG) != 0;
  f.nodrop = (params.features & IORING_FEAT_NODROP) != 0;
  if (old_kernel) {
    f.multishot_accept = f.multishot_recv = f.provided_buffer_ring = false;
    f.poll_multishot = f.cancel_fd_all = f.cancel_any = false;
    f.ext_arg = false;
  }
  if (no_multi_recv) f.multishot_recv = f.provided_buffer_ring = false;

  rc = p->wake_.Open();
  if (rc < 0) {
    if (why != nullptr) *why = "cannot create the wake-up eventfd";
    return rc;
  }
  rc = p->QueueInternalPoll(kUdWake, p->wake_.read_fd());
  if (rc == 0) rc = p->Flush();
  if (rc < 0) {
    if (why != nullptr) *why = "cannot submit the wake-up poll";
    return rc;
  }
  p->wake_poll_live_ = true;
  *out = std::move(p);
  return 0;
}

int IoUringProactor::MapRings(const struct io_uring_params& p) {
  sq_size_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  cq_size_ = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  const bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cq_size_ > sq_size_) sq_size_ = cq_size_;
  sq_ptr_ = mmap(nullptr, sq_size_, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_POPULATE, ring_fd_, IORING_OFF_SQ_RING);
  if (sq_ptr_ == MAP_FAILED) {
    sq_ptr_ = nullptr;
    return -errno;
  }
  if (single) {
    cq_ptr_ = sq_ptr_;
  } else {
    cq_ptr_ = mmap(nullptr, cq_size_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, ring_fd_, IORING_OFF_CQ_RING);
    if (cq_ptr_ == MAP_FAILED) {
      cq_ptr_ = nullptr;
      return -errno;
    }
  }
  sqes_size_ = p.sq_entries * sizeof(struct io_uring_sqe);
  void* s = mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_POPULATE, ring_fd_, IORING_OFF_SQES);
  if (s == MAP_FAILED) return -errno;
  sqes_ = static_cast<struct io_uring_sqe*>(s);
  char* sq = static_cast<char*>(sq_ptr_);
  sq_khead_ = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  sq_ktail_ = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  sq_kflags_ = reinterpret_cast<unsigned*>(sq + p.sq_off.flags);
  sq_array_ = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  sq_mask_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  sq_entries_ = p.sq_entries;
  sq_tail_ = *sq_ktail_;
  char* cq = static_cast<char*>(cq_ptr_);
  cq_khead_ = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
  cq_ktail_ = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
  cq_mask_ = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
  cqes_ = reinterpret_cast<struct io_uring_cqe*>(cq + p.cq_off.cqes);
  return 0;
}

IoUringProactor::~IoUringProactor() {
  if (ring_fd_ >= 0 && !closed_) Drain(2000000000);
  // Ops the kernel never finished (Drain timed out) are leaked on purpose:
  // their memory may still be written into.
  if (live_.empty()) {
    for (Op* op : retired_) Recycle(op);
  }
  retired_.clear();
  for (Op* op : free_ops_) delete op;
  free_ops_.clear();
  if (pbuf_ring_ != nullptr && live_.empty()) {
    // The kernel reads the ring's entries until it is unregistered (or the
    // ring fd goes); with ops left over it may still, so it stays mapped.
    struct io_uring_buf_reg reg;
    std::memset(&reg, 0, sizeof(reg));
    reg.bgid = kBufGroup;
    if (ring_fd_ >= 0) SysRegister(ring_fd_, IORING_UNREGISTER_PBUF_RING, &reg, 1);
    munmap(pbuf_ring_, pbuf_ring_bytes_);
    pbuf_ring_ = nullptr;
  }
  if (sqes_ != nullptr) munmap(sqes_, sqes_size_);
  if (cq_ptr_ != nullptr && cq_ptr_ != sq_ptr_) munmap(cq_ptr_, cq_size_);
  if (sq_ptr_ != nullptr) munmap(sq_ptr_, sq_size_);
  if (ring_fd_ >= 0) close(ring_fd_);
  if (timer_fd_ >= 0) close(timer_fd_);
}

struct io_uring_sqe* IoUringProactor::GetSqe() {
  if (sq_tail_ - LoadAcquire(sq_khead_) >= sq_entries_) {
    Flush();  // full: pass what is there now, inline
    if (sq_tail_ - LoadAcquire(sq_khead_) >= sq_entries_) return nullptr;
  }
  struct io_uring_sqe* sqe = &sqes_[sq_tail_ & sq_mask_];
  std::memset(sqe, 0, sizeof(*sqe));
  return sqe;
}

void IoUringProactor::Commit() {
  sq_array_[sq_tail_ & sq_mask_] = sq_tail_ & sq_mask_;
  ++sq_tail_;
  StoreRelease(sq_ktail_, sq_tail_);
}

int IoUringProactor::Flush() {
  if (ring_fd_ < 0) return 0;
  for (;;) {
    unsigned to_submit = sq_tail_ - LoadAcquire(sq_khead_);
    if (to_submit == 0) return 0;
    int rc = SysEnter(ring_fd_, to_submit, 0, 0);
    if (rc >= 0) return rc;
    if (errno == EINTR) continue;
    // EAGAIN / EBUSY (out of memory, CQ overflow): the SQEs stay queued
    // and go with the next flush.
    return -errno;
  }
}

int IoUringProactor::Begin(Token token, Fd fd, OpKind kind, Op** out) {
  if (closed_) return -EBADF;
  if (token < 0) return -EINVAL;
  if (fd < 0) return -EBADF;
  if (live_.count(token) != 0) return -EEXIST;
  Op* op;
  if (!free_ops_.empty()) {
    op = free_ops_.back();
    free_ops_.pop_back();
  } else {
    op = new (std::nothrow) Op();
    if (op == nullptr) return -ENOMEM;
  }
  op->token = token;
  op->fd = fd;
  op->kind = kind;
  *out = op;
  return 0;
}

void IoUringProactor::PrepOp(Op* op, struct io_uring_sqe* sqe) {
  sqe->fd = op->fd;
  sqe->user_data = reinterpret_cast<uint64_t>(op);
  switch (op->kind) {
    case OpKind::kRecv:
      sqe->opcode = IORING_OP_RECV;
      sqe->addr = reinterpret_cast<uint64_t>(op->buf);
      sqe->len = static_cast<uint32_t>(op->len);
      break;
    case OpKind::kRecvFrom:
      sqe->opcode = IORING_OP_RECVMSG;
      op->iov1.iov_base = op->buf;
      op->iov1.iov_len = op->len;
      op->msg = {};
      op->msg.msg_name = &op->addr.storage;
      op->msg.msg_namelen = sizeof(op->addr.storage);
      op->msg.msg_iov = &op->iov1;
      op->msg.msg_iovlen = 1;
      sqe->addr = reinterpret_cast<uint64_t>(&op->msg);
      sqe->len = 1;
      break;
    case OpKind::kSend:
      sqe->opcode = IORING_OP_SEND;
      sqe->addr = reinterpret_cast<uint64_t>(op->buf);
      sqe->len = static_cast<uint32_t>(op->len);
      sqe->msg_flags = MSG_NOSIGNAL;
      break;
    case OpKind::kSendMsg:
      sqe->opcode = IORING_OP_SENDMSG;
      op->msg = {};
      if (op->addr.len > 0) {
        op->msg.msg_name = &op->addr.storage;
        op->msg.msg_namelen = op->addr.len;
      }
      op->msg.msg_iov = op->iovs.data();
      op->msg.msg_iovlen = op->iovs.size();
      sqe->addr = reinterpret_cast<uint64_t>(&op->msg);
      sqe->len = 1;
      sqe->msg_flags = MSG_NOSIGNAL;
      break;
    case OpKind::kAccept:
      sqe->opcode = IORING_OP_ACCEPT;
      op->addrlen = sizeof(op->addr.storage);
      sqe->addr = reinterpret_cast<uint64_t>(&op->addr.storage);
      sqe->addr2 = reinterpret_cast<uint64_t>(&op->addrlen);
      sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
      break;
    case OpKind::kAcceptMany:
      // No address: one storage cannot serve many completions; the peer
      // is getpeername's.
      sqe->opcode = IORING_OP_ACCEPT;
      sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
      if (features_.multishot_accept) sqe->ioprio |= IORING_ACCEPT_MULTISHOT;
      break;
    case OpKind::kConnect:
      sqe->opcode = IORING_OP_CONNECT;
      sqe->addr = reinterpret_cast<uint64_t>(&op->addr.storage);
      sqe->off = op->addr.len;
      break;
    case OpKind::kRecvMany:
      sqe->opcode = IORING_OP_RECV;
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufGroup;
      sqe->ioprio |= IORING_RECV_MULTISHOT;
      break;
    case OpKind::kPoll: {
      sqe->opcode = IORING_OP_POLL_ADD;
      uint32_t ev = 0;
      if (op->interest & kReadable) ev |= POLLIN;
      if (op->interest & kWritable) ev |= POLLOUT;
      sqe->poll32_events = ev;  // little-endian: Linux on BE swaps words
      break;
    }
  }
}

int IoUringProactor::Queue(Op* op) {
  struct io_uring_sqe* sqe = GetSqe();
  if (sqe == nullptr) {
    Recycle(op);
    return -EBUSY;
  }
  PrepOp(op, sqe);
  Commit();
  live_[op->token] = op;
  per_fd_[op->fd]++;
  MaybeFlush();
  return 0;
}

int IoUringProactor::QueueInternalPoll(uint64_t ud, int fd) {
  struct io_uring_sqe* sqe = GetSqe();
  if (sqe == nullptr) return -EBUSY;
  sqe->opcode = IORING_OP_POLL_ADD;
  sqe->fd = fd;
  sqe->poll32_events = POLLIN;
  if (features_.poll_multishot) sqe->len = IORING_POLL_ADD_MULTI;
  sqe->user_data = ud;
  Commit();
  return 0;
}

int IoUringProactor::QueueCancel(uint64_t target) {
  struct io_uring_sqe* sqe = GetSqe();
  if (sqe == nullptr) return -EBUSY;
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->fd = -1;
  sqe->addr = target;
  sqe->user_data = kUdIgnore;
  Commit();
  return 0;
}

int IoUringProactor::SubmitRecv(Token token, Fd fd, void* buf, size_t len) {
  Op* op;
  int rc = Begin(token, fd, OpKind::kRecv, &op);
  if (rc < 0) return rc;
  op->buf = buf;
  op->len = len;
  return Queue(op);
}

int IoUringProactor::SubmitRecvFrom(Token token, Fd fd, void* buf,
                                    size_t len) {
  Op* op;
  int rc = Begin(token, fd, OpKind::kRecvFrom, &op);
  if (rc < 0) return rc;
  op->buf = buf;
  op->len = len;
  return Queue(op);
}

int IoUringProactor::SubmitSend(Token token, Fd fd, const void* buf,
                                size_t len) {
  Op* op;
  int rc = Begin(token, fd, OpKind::kSend, &op);
  if (rc < 0) return rc;
  op->buf = const_cast<void*>(buf);
  op->len = len;
  return Queue(op);
}

int IoUringProactor::SubmitSendMsg(Token token, Fd fd,
                                   const struct iovec* iov, int iovcnt,
                                   const SockAddr* to) {
  if (iovcnt < 0 || iovcnt > kIovMax) return -EINVAL;
  Op* op;
  int rc = Begin(token, fd, OpKind::kSendMsg, &op);
  if (rc < 0) return rc;
  try {
    op->iovs.assign(iov, iov + iovcnt);
  } catch (...) {
    Recycle(op);
    return -ENOMEM;
  }
  if (to != nullptr) op->addr = *to;
  return Queue(op);
}

int IoUringProactor::SubmitAccept(Token token, Fd fd) {
  Op* op;
  int rc = Begin(token, fd, OpKind::kAccept, &op);
  if (rc < 0) return rc;
  return Queue(op);
}

int IoUringProactor::SubmitAcceptMany(Token token, Fd fd) {
  Op* op;
  int rc = Begin(token, fd, OpKind::kAcceptMany, &op);
  if (rc < 0) return rc;
  return Queue(op);
}

int IoUringProactor::SubmitConnect(Token token, Fd fd, const SockAddr& addr) {
  Op* op;
  int rc = Begin(token, fd, OpKind::kConnect, &op);
  if (rc < 0) return rc;
  op->addr = addr;
  return Queue(op);
}

int IoUringProactor::SubmitPoll(Token token, Fd fd, uint32_t interest) {
  if (!backend::ValidInterest(interest)) return -EINVAL;
  Op* op;
  int rc = Begin(token, fd, OpKind::kPoll, &op);
  if (rc < 0) return rc;
  op->interest = interest;
  return Queue(op);
}

int IoUringProactor::SetBufferPool(void* base, uint32_t size,
                                   uint32_t count) {
  if (closed_) return -EBADF;
  if (!features_.multishot_recv || !features_.provided_buffer_ring) {
    return -EOPNOTSUPP;
  }
  if (pbuf_ring_ != nullptr) return -EEXIST;
  if (base == nullptr || size == 0 || size > kRecvPoolMaxSize || count == 0 ||
      count > kRecvPoolMaxCount || (count & (count - 1)) != 0) {
    return -EINVAL;
  }
  const size_t bytes = count * sizeof(struct io_uring_buf);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return -errno;
  struct io_uring_buf_reg reg;
  std::memset(&reg, 0, sizeof(reg));
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = count;
  reg.bgid = kBufGroup;
  if (SysRegister(ring_fd_, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) {
    int err = errno;
    munmap(mem, bytes);
    return -err;
  }
  pbuf_ring_ = static_cast<struct io_uring_buf*>(mem);
  pbuf_ring_bytes_ = bytes;
  pool_base_ = static_cast<char*>(base);
  pool_size_ = size;
  pool_count_ = count;
  pool_out_ = count;  // all "off the ring" until the refill below
  recycle_.reserve(count);
  for (uint32_t i = 0; i < count; ++i) recycle_.push_back(static_cast<uint16_t>(i));
  RefillPool();
  return 0;
}

void IoUringProactor::RefillPool() {
  if (pbuf_ring_ != nullptr && !recycle_.empty()) {
    const uint16_t mask = static_cast<uint16_t>(pool_count_ - 1);
    for (uint16_t bid : recycle_) {
      struct io_uring_buf* b = &pbuf_ring_[pbuf_tail_ & mask];
      b->addr = reinterpret_cast<uint64_t>(pool_base_ +
                                           static_cast<size_t>(bid) * pool_size_);
      b->len = pool_size_;
      b->bid = bid;
      ++pbuf_tail_;
    }
    pool_out_ -= static_cast<uint32_t>(recycle_.size());
    recycle_.clear();
    // The tail overlays bufs[0].resv (io_uring_buf_ring); the kernel reads
    // it with acquire semantics, so the entries above are seen first.
    auto* tail = reinterpret_cast<uint16_t*>(
        reinterpret_cast<char*>(pbuf_ring_) + offsetof(struct io_uring_buf, resv));
    __atomic_store_n(tail, pbuf_tail_, __ATOMIC_RELEASE);
  }
  RearmParked();
}

void IoUringProactor::RearmParked() {
  if (parked_.empty() || PoolFree() == 0) return;
  std::vector<Op*> parked;
  parked.swap(parked_);
  for (Op* op : parked) {
    op->parked = false;
    Rearm(op);
  }
}

// Queues the op's SQE again under the same record (multishot ops the kernel
// ended early). Without room in the SQ it ends with -EBUSY.
void IoUringProactor::Rearm(Op* op) {
  struct io_uring_sqe* sqe = GetSqe();
  if (sqe == nullptr) {
    EndOutside(op, -EBUSY);
    return;
  }
  PrepOp(op, sqe);
  Commit();
  internal_rearm_ = true;
}

void IoUringProactor::EndOutside(Op* op, int32_t res) {
  buffered_.push_back(Pair{op->token, res, -1});
  Finish(op);
  // Outside a batch nothing else would make the host look: the wake-up
  // poll's completion does.
  wake_.Signal();
}

int IoUringProactor::SubmitRecvMany(Token token, Fd fd) {
  if (pbuf_ring_ == nullptr && !closed_) return -EOPNOTSUPP;
  Op* op;
  int rc = Begin(token, fd, OpKind::kRecvMany, &op);
  if (rc < 0) return rc;
  return Queue(op);
}

int IoUringProactor::Cancel(Token token) {
  auto it = live_.find(token);
  if (it == live_.end()) return -ENOENT;
  Op* op = it->second;
  if (op->cancel_requested) return 0;
  if (op->parked) {
    // Nothing in the kernel to cancel: it ends here.
    op->cancel_requested = true;
    Unpark(op);
    EndOutside(op, -ECANCELED);
    return 0;
  }
  int rc = QueueCancel(reinterpret_cast<uint64_t>(op));
  if (rc < 0) return rc;
  op->cancel_requested = true;
  MaybeFlush();
  return 0;
}

int IoUringProactor::CancelFd(Fd fd) {
  int n = OpsOnFd(fd);
  if (n == 0) return 0;
  for (size_t i = parked_.size(); i-- > 0;) {
    Op* op = parked_[i];
    if (op->fd != fd) continue;
    op->cancel_requested = true;
    Unpark(op);
    EndOutside(op, -ECANCELED);
  }
  if (OpsOnFd(fd) == 0) return n;
  if (features_.cancel_fd_all) {
    struct io_uring_sqe* sqe = GetSqe();
    if (sqe == nullptr) return -EBUSY;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = fd;
    sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    sqe->user_data = kUdIgnore;
    Commit();
    for (auto& kv : live_) {
      if (kv.second->fd == fd) kv.second->cancel_requested = true;
    }
  } else {
    for (auto& kv : live_) {
      Op* op = kv.second;
      if (op->fd != fd || op->cancel_requested) continue;
      if (QueueCancel(reinterpret_cast<uint64_t>(op)) == 0) {
        op->cancel_requested = true;
      }
    }
  }
  MaybeFlush();
  return n;
}

int IoUringProactor::OpsOnFd(Fd fd) const {
  auto it = per_fd_.find(fd);
  return it == per_fd_.end() ? 0 : it->second;
}

int IoUringProactor::KindOf(Token token, OpKind* out) const {
  auto it = live_.find(token);
  if (it == live_.end()) return -ENOENT;
  *out = it->second->kind;
  return 0;
}

int IoUringProactor::Address(Token token, SockAddr* out) const {
  for (auto it = retired_.rbegin(); it != retired_.rend(); ++it) {
    if ((*it)->token == token) {
      *out = (*it)->addr;
      return 0;
    }
  }
  return -ENOENT;
}

void IoUringProactor::BeginBatch() {
  for (Op* op : retired_) Recycle(op);
  retired_.clear();
  RefillPool();
}

int IoUringProactor::Wakeup() { return wake_.Signal(); }

int IoUringProactor::ArmTimer(int64_t when_ns) {
  if (closed_) return -EBADF;
  if (timer_fd_ < 0) {
    int fd = TimerFdCreate();
    if (fd < 0) return fd;
    timer_fd_ = fd;
  }
  if (!timer_poll_live_) {
    int rc = QueueInternalPoll(kUdTimer, timer_fd_);
    if (rc < 0) return rc;
    timer_poll_live_ = true;
    // Rare (once, or after a one-shot poll fired): flushed at once, since
    // the host arms after the batch's own flush.
    Flush();
  }
  return when_ns == INT64_MAX ? TimerFdDisarm(timer_fd_)
                              : TimerFdArm(timer_fd_, when_ns);
}

bool IoUringProactor::Emit(EventBuffer* out, int* count, int32_t token,
                           int32_t value, int bid) {
  if (out == nullptr) {
    if (bid >= 0) recycle_.push_back(static_cast<uint16_t>(bid));
    return true;
  }
  if (*count < out->capacity) {
    out->data[2 * *count] = token;
    out->data[2 * *count + 1] = value;
    ++*count;
    if (bid >= 0) recycle_.push_back(static_cast<uint16_t>(bid));
  } else {
    buffered_.push_back(Pair{token, value, bid});
  }
  return true;
}

void IoUringProactor::Finish(Op* op) {
  live_.erase(op->token);
  auto it = per_fd_.find(op->fd);
  if (it != per_fd_.end() && --it->second <= 0) per_fd_.erase(it);
  if (op->kind == OpKind::kAccept || op->kind == OpKind::kRecvFrom) {
    if (op->kind == OpKind::kAccept) op->addr.len = op->addrlen;
    if (op->kind == OpKind::kRecvFrom) op->addr.len = op->msg.msg_namelen;
    retired_.push_back(op);
  } else {
    Recycle(op);
  }
}

namespace {
int32_t PollResult(int32_t res, uint32_t interest) {
  if (res < 0) return res;
  uint32_t r = 0;
  if (res & (POLLIN | POLLPRI | POLLRDHUP)) r |= kReadable;
  if (res & POLLOUT) r |= kWritable;
  if (res & (POLLERR | POLLHUP | POLLNVAL)) r |= interest;
  return static_cast<int32_t>(r & interest);
}
}  // namespace

int IoUringProactor::Reap(EventBuffer* out, int count) {
  unsigned head = *cq_khead_;
  for (;;) {
    if (out != nullptr && count >= out->capacity) break;
    unsigned tail = LoadAcquire(cq_ktail_);
    if (head == tail) break;
    const struct io_uring_cqe cqe = cqes_[head & cq_mask_];
    ++head;
    StoreRelease(cq_khead_, head);
    const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
    if (cqe.user_data == kUdIgnore) continue;
    if (cqe.user_data == kUdTimer || cqe.user_data == kUdWake) {
      const bool timer = cqe.user_data == kUdTimer;
      bool& live = timer ? timer_poll_live_ : wake_poll_live_;
      if (!more) {
        live = false;
        if (!closed_ && cqe.res != -ECANCELED) {
          int fd = timer ? timer_fd_ : wake_.read_fd();
          if (QueueInternalPoll(cqe.user_data, fd) == 0) {
            live = true;
            internal_rearm_ = true;
          }
        }
      }
      if (cqe.res <= 0) continue;
      if (timer) {
        TimerFdDrain(timer_fd_);
        if (!closed_) Emit(out, &count, kTimerToken, 1);
      } else {
        wake_.Drain();
        woken_ = true;
      }
      continue;
    }
    Op* op = reinterpret_cast<Op*>(cqe.user_data);
    if (op->kind == OpKind::kAcceptMany) {
      if (cqe.res >= 0) {
        if (out == nullptr) {
          close(cqe.res);  // draining: nobody can receive it
        } else {
          Emit(out, &count, op->token, cqe.res);
        }
      }
      if (more) continue;
      if (cqe.res < 0) {
        Emit(out, &count, op->token, cqe.res);
        Finish(op);
      } else if (closed_ || op->cancel_requested) {
        // Ended by the kernel after a success while a cancel was asked
        // for: the op still owes its final negative completion.
        Emit(out, &count, op->token, -ECANCELED);
        Finish(op);
      } else {
        // Multishot accept ended after a success (or single accepts):
        // accept again under the same token.
        struct io_uring_sqe* sqe = GetSqe();
        if (sqe == nullptr) {
          Emit(out, &count, op->token, -EBUSY);
          Finish(op);
        } else {
          PrepOp(op, sqe);
          Commit();
          internal_rearm_ = true;
        }
      }
      continue;
    }
    if (op->kind == OpKind::kRecvMany) {
      ReapRecvMany(op, cqe, more, out, &count);
      continue;
    }
    int32_t res = cqe.res;
    if (op->kind == OpKind::kPoll) res = PollResult(res, op->interest);
    if (op->kind == OpKind::kAccept && res >= 0 && out == nullptr) close(res);
    Emit(out, &count, op->token, res);
    Finish(op);
  }
  return count;
}

void IoUringProactor::ReapRecvMany(Op* op, const struct io_uring_cqe& cqe,
                                   bool more, EventBuffer* out, int* count) {
  int32_t res = cqe.res;
  if ((cqe.flags & IORING_CQE_F_BUFFER) != 0) {
    const uint32_t bid = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
    ++pool_out_;
    if (res > 0 && bid < pool_count_ && static_cast<uint32_t>(res) <= pool_size_) {
      Emit(out, count, op->token, PackRecvChunk(bid, static_cast<uint32_t>(res)),
           static_cast<int>(bid));
    } else {
      // A buffer with no bytes in it (or none we could name): straight back.
      if (bid < pool_count_) recycle_.push_back(static_cast<uint16_t>(bid));
      else --pool_out_;
      if (res > 0) res = -EIO;
    }
  } else if (res > 0) {
    res = -EIO;  // bytes without a buffer: cannot happen with BUFFER_SELECT
  }
  if (more) return;
  // The op's last CQE.
  if (res > 0) {
    // Ended by the kernel after a chunk (e.g. a CQ overflow).
    if (closed_ || op->cancel_requested) {
      Emit(out, count, op->token, -ECANCELED);
      Finish(op);
    } else {
      Rearm(op);
    }
    return;
  }
  if (res == -ENOBUFS && !closed_ && !op->cancel_requested) {
    // The pool ran dry: wait for buffers (RefillPool re-arms). They may be
    // back already (given back since the kernel looked).
    op->parked = true;
    parked_.push_back(op);
    // Not RefillPool: recycle_ holds buffers this batch still reports.
    RearmParked();
    return;
  }
  if (res == -ENOBUFS) res = -ECANCELED;
  Emit(out, count, op->token, res);
  Finish(op);
}

int IoUringProactor::Wait(EventBuffer* out, int64_t timeout_ns) {
  if (out == nullptr || out->data == nullptr || out->capacity <= 0) {
    return -EINVAL;
  }
  if (closed_) {
    // Late completions of ops Drain gave up on: dropped, so the ring fd
    // stops polling readable (a level-triggered watcher would spin).
    Reap(nullptr, 0);
    return 0;
  }
  backend::Deadline deadline(timeout_ns);
  for (;;) {
    int count = 0;
    while (!buffered_.empty() && count < out->capacity) {
      const Pair& pr = buffered_.front();
      out->data[2 * count] = pr.token;
      out->data[2 * count + 1] = pr.value;
      if (pr.bid >= 0) recycle_.push_back(static_cast<uint16_t>(pr.bid));
      buffered_.pop_front();
      ++count;
    }
    // With IORING_FEAT_NODROP the kernel keeps CQEs the ring had no room
    // for and says so in the SQ flags; an enter with GETEVENTS moves them in.
    if (LoadAcquire(cq_khead_) == LoadAcquire(cq_ktail_) &&
        (LoadAcquire(sq_kflags_) & IORING_SQ_CQ_OVERFLOW) != 0) {
      SysEnter(ring_fd_, 0, 0, IORING_ENTER_GETEVENTS);
    }
    count = Reap(out, count);
    if (internal_rearm_) {
      internal_rearm_ = false;
      if (auto_flush_) Flush();
    }
    if (count > 0 || deadline.NonBlocking() || woken_) {
      woken_ = false;
      return count;
    }
    // Blocking wait (core tests, a helper thread): pass what is queued,
    // then sleep in poll(2) on the ring fd, which polls readable exactly
    // when the CQ holds entries.
    Flush();
    struct pollfd pfd = {ring_fd_, POLLIN, 0};
    int n = poll(&pfd, 1, backend::CeilMs(deadline.NextWaitNs()));
    if (n < 0 && errno != EINTR) return -errno;
    if (n == 0 && deadline.Expired()) return 0;
  }
}

int IoUringProactor::WaitCqe(int64_t timeout_ns) {
  if (features_.ext_arg) {
    // io_uring_enter(2) GETEVENTS with a timeout (IORING_ENTER_EXT_ARG,
    // 5.11): returns once a CQE is there, or -ETIME.
    struct __kernel_timespec ts;
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    struct io_uring_getevents_arg arg;
    std::memset(&arg, 0, sizeof(arg));
    arg.ts = reinterpret_cast<uint64_t>(&ts);
    int rc = static_cast<int>(
        syscall(__NR_io_uring_enter, ring_fd_, 0, 1,
                IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg,
                sizeof(arg)));
    if (rc < 0) return errno == EINTR ? 0 : -errno;
    return 0;
  }
  struct pollfd pfd = {ring_fd_, POLLIN, 0};
  int n = poll(&pfd, 1, backend::CeilMs(timeout_ns));
  if (n < 0) return errno == EINTR ? 0 : -errno;
  return n == 0 ? -ETIME : 0;
}

int IoUringProactor::Drain(int64_t timeout_ns) {
  if (closed_) return static_cast<int>(live_.size());
  closed_ = true;
  buffered_.clear();
  // Parked recv-many ops have nothing in the kernel: they just end.
  std::vector<Op*> parked;
  parked.swap(parked_);
  for (Op* op : parked) {
    op->parked = false;
    Finish(op);
  }
  // Everything goes: one CANCEL_ANY where the kernel has it, else one
  // cancel per op (the internal polls included).
  auto cancel_all = [this] {
    if (features_.cancel_any) {
      struct io_uring_sqe* sqe = GetSqe();
      if (sqe != nullptr) {
        sqe->opcode = IORING_OP_ASYNC_CANCEL;
        sqe->fd = -1;
        sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY;
        sqe->user_data = kUdIgnore;
        Commit();
      }
    } else {
      for (auto& kv : live_) QueueCancel(reinterpret_cast<uint64_t>(kv.second));
      if (timer_poll_live_) QueueCancel(kUdTimer);
      if (wake_poll_live_) QueueCancel(kUdWake);
    }
    Flush();
  };
  cancel_all();
  const int64_t end = MonotonicNs() + (timeout_ns < 0 ? 0 : timeout_ns);
  while (!live_.empty() || timer_poll_live_ || wake_poll_live_) {
    Reap(nullptr, 0);
    if (live_.empty() && !timer_poll_live_ && !wake_poll_live_) break;
    int64_t left = end - MonotonicNs();
    if (left <= 0) break;
    const int64_t slice = left > 100 * 1000000 ? 100 * 1000000 : left;
    if (WaitCqe(slice) == -ETIME) cancel_all();  // one the cancel missed
  }
  for (Op* op : retired_) Recycle(op);
  retired_.clear();
  return static_cast<int>(live_.size());
}

}  // namespace

int CreateIoUringProactor(unsigned entries, std::unique_ptr<Proactor>* out,
                          std::string* why) {
  return IoUringProactor::Create(entries, out, why);
}

const ProactorFeatures* IoUringFeatures(const Proactor* p) {
  auto* u = dynamic_cast<const IoUringProactor*>(p);
  return u != nullptr ? &u->features() : nullptr;
}

std::string IoUringRefusal(int err) {
  if (err == ENOSYS) return "io_uring not supported by this kernel";
  if (err == EPERM || err == EACCES) {
    std::string v = "N";
    int fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[8] = {0};
      ssize_t n = read(fd, buf, sizeof(buf) - 1);
      close(fd);
      if (n > 0 && buf[0] >= '0' && buf[0] <= '9') v = std::string(1, buf[0]);
    }
    return "io_uring denied (seccomp or kernel.io_uring_disabled=" + v +
           " — read /proc/sys/kernel/io_uring_disabled)";
  }
  return std::string("io_uring_setup failed: ") + std::strerror(err);
}

const char* AvailableProactors() {
  static const bool ok = [] {
    std::unique_ptr<Proactor> p;
    return CreateIoUringProactor(4, &p, nullptr) == 0;
  }();
  return ok ? "io_uring" : "";
}

}  // namespace aionode
