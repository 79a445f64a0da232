// See spawn.h. Linux and the BSDs: vfork + execve; pidfd where Linux has it.
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace aionode {

namespace {

// pipe2(O_CLOEXEC). macOS has no pipe2: pipe, then FD_CLOEXEC, which
// leaves a short window in which a fork from another thread could inherit
// the two fds.
int PipeCloexec(int fds[2]) {
#if defined(__APPLE__)
  if (pipe(fds) < 0) return -errno;
  for (int i = 0; i < 2; i++) {
    if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0) {
      int e = errno;
      close(fds[0]);
      close(fds[1]);
      return -e;
    }
  }
  return 0;
#else
  return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
#endif
}

// What the child writes to the error pipe when a step fails.
struct ChildReport {
  int err;
  int step;
  int index;  // SpawnFailure::index
};

// Writes the whole report (a pipe write of this size is atomic) and leaves.
[[noreturn]] void ChildFail(int report_fd, int err, int step, int index) {
  ChildReport r{err, step, index};
  ssize_t n;
  do {
    n = write(report_fd, &r, sizeof r);
  } while (n < 0 && errno == EINTR);
  _exit(127);
}

int CloseRange(unsigned lo, unsigned hi) {
#if defined(SYS_close_range)
  if (syscall(SYS_close_range, lo, hi, 0) == 0) return 0;
  if (errno != ENOSYS && errno != EINVAL) return -errno;
#endif
  // Kernels before 5.9: one close per number, up to the fd limit. Every fd
  // Node and this addon make is close-on-exec anyway; this only catches the
  // ones some other library made without it.
  struct rlimit rl;
  unsigned top = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    top = rl.rlim_cur > (1u << 20) ? (1u << 20) : static_cast<unsigned>(rl.rlim_cur);
  }
  if (hi >= top) hi = top - 1;
  for (unsigned fd = lo; fd <= hi && fd >= lo; fd++) close(static_cast<int>(fd));
  return 0;
}

// Closes every fd >= 3 except `keep` (sorted ascending, unique, all >= 3).
void CloseFdsExcept(const int* keep, size_t n) {
  unsigned lo = 3;
  for (size_t i = 0; i < n; i++) {
    unsigned k = static_cast<unsigned>(keep[i]);
    if (k > lo) CloseRange(lo, k - 1);
    lo = k + 1;
  }
  CloseRange(lo, ~0u);
}

// The child between vfork and execve. It shares the parent's memory: only
// syscalls on data prepared before the fork, nothing that allocates or
// takes a lock, and it never returns.
[[noreturn]] void RunChild(const SpawnSpec& spec, int report_fd,
                           const int* keep, size_t n_keep) {
  // 1. Signal dispositions. A handler of the parent would run here on the
  //    parent's memory if a signal came before execve, so every handled
  //    signal goes back to SIG_DFL first (execve would reset them anyway).
  //    SIGPIPE and SIGXFSZ, which Node ignores, go back to SIG_DFL too:
  //    ignored dispositions survive execve, and a child such as `yes | head`
  //    relies on dying of SIGPIPE. Other ignored signals stay ignored, as a
  //    shell's `nohup` expects.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction cur {};
    if (sigaction(sig, nullptr, &cur) != 0) continue;  // glibc-internal ones
    bool restore = sig == SIGPIPE || sig == SIGXFSZ;
    if ((cur.sa_flags & SA_SIGINFO) != 0 ||
        (cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN) || restore) {
      sigaction(sig, &dfl, nullptr);
    }
  }

  // 2. Session or process group.
  if (spec.new_session && setsid() < 0) ChildFail(report_fd, errno, kSpawnStepSession, -1);
  if (spec.process_group >= 0 && setpgid(0, spec.process_group) < 0) {
    ChildFail(report_fd, errno, kSpawnStepGroup, -1);
  }

  // 3. stdio. A source that is itself one of 0..2 (but not its own
  //    target) is moved above 2 first, so an earlier dup2 cannot overwrite
  //    it (stdout=fd 2 and stderr=fd 1, say).
  int src[3] = {spec.stdio[0], spec.stdio[1], spec.stdio[2]};
  for (int i = 0; i < 3; i++) {
    if (src[i] >= 0 && src[i] < 3 && src[i] != i) {
      int moved = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
      if (moved < 0) ChildFail(report_fd, errno, kSpawnStepStdio, i);
      int old = src[i];
      for (int j = i; j < 3; j++) {
        if (src[j] == old) src[j] = moved;
      }
    }
  }
  for (int i = 0; i < 3; i++) {
    if (src[i] < 0) {
      // Inherited as is. Node may have marked its own stdio close-on-exec
      // (it does for some kinds of stdout), so clear that; a closed fd
      // stays closed.
      int flags = fcntl(i, F_GETFD);
      if (flags >= 0 && (flags & FD_CLOEXEC) != 0) fcntl(i, F_SETFD, flags & ~FD_CLOEXEC);
      continue;
    }
    if (src[i] == i) {
      // dup2 onto itself keeps FD_CLOEXEC: clear it by hand.
      int flags = fcntl(i, F_GETFD);
      if (flags < 0 || fcntl(i, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
        ChildFail(report_fd, errno, kSpawnStepStdio, i);
      }
    } else if (dup2(src[i], i) < 0) {
      ChildFail(report_fd, errno, kSpawnStepStdio, i);
    }
  }

  // 4. Working directory.
  if (spec.cwd != nullptr && chdir(spec.cwd) < 0) ChildFail(report_fd, errno, kSpawnStepChdir, -1);

  // 5. fd hygiene: everything >= 3 goes except the fds to pass and the
  //    report pipe (close-on-exec: it closes itself at execve, which is how
  //    the parent learns of success). The fds to pass lose FD_CLOEXEC.
  CloseFdsExcept(keep, n_keep);
  for (size_t i = 0; i < spec.n_pass_fds; i++) {
    int fd = spec.pass_fds[i];
    // Spawn's check rules this out; were it ever the report pipe, keeping
    // it across execve would make the parent wait for the child's exit.
    if (fd == report_fd) ChildFail(report_fd, EBADF, kSpawnStepFds, static_cast<int>(i));
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
      ChildFail(report_fd, errno, kSpawnStepFds, static_cast<int>(i));
    }
  }

  // 6. A clean signal mask: the parent blocked everything around vfork, and
  //    a new program should not start with signals blocked.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  // 7. execve each candidate, as execvp does: ENOENT / ENOTDIR / EACCES go
  //    on to the next; anything else stops. EACCES seen on the way wins
  //    over a final ENOENT (the program exists but cannot run).
  int err = ENOENT;
  int err_at = 0;
  bool eacces = false;
  int eacces_at = -1;
  for (size_t i = 0; i < spec.n_candidates; i++) {
    execve(spec.candidates[i], spec.argv, spec.envp);
    err = errno;
    err_at = static_cast<int>(i);
    if (err == EACCES) {
      eacces = true;
      if (eacces_at < 0) eacces_at = err_at;
    } else if (err != ENOENT && err != ENOTDIR) {
      break;
    }
  }
  if ((err == ENOENT || err == ENOTDIR) && eacces) {
    err = EACCES;
    err_at = eacces_at;
  }
  ChildFail(report_fd, err, kSpawnStepExec, err_at);
}

}  // namespace

const char* SpawnStepName(int step) {
  switch (step) {
    case kSpawnStepFork: return "fork";
    case kSpawnStepSession: return "setsid";
    case kSpawnStepGroup: return "setpgid";
    case kSpawnStepStdio: return "dup2";
    case kSpawnStepChdir: return "chdir";
    case kSpawnStepFds: return "fcntl";
    case kSpawnStepExec: return "execve";
    default: return "spawn";
  }
}

int Spawn(const SpawnSpec& spec, SpawnFailure* failure) {
  failure->step = kSpawnStepNone;
  failure->index = -1;
  if (spec.n_candidates == 0 || spec.argv == nullptr || spec.envp == nullptr) return -EINVAL;

  // Every fd the caller names must be open before the report pipe is made:
  // pipe2 takes the lowest free numbers, so a closed one named here could
  // become the report pipe's write end, which the child would then get as
  // its stdout or a passed fd, without close-on-exec.
  for (int i = 0; i < 3; i++) {
    if (spec.stdio[i] >= 0 && fcntl(spec.stdio[i], F_GETFD) < 0) {
      failure->step = kSpawnStepStdio;
      failure->index = i;
      return -EBADF;
    }
  }
  for (size_t i = 0; i < spec.n_pass_fds; i++) {
    if (spec.pass_fds[i] < 0 || fcntl(spec.pass_fds[i], F_GETFD) < 0) {
      failure->step = kSpawnStepFds;
      failure->index = static_cast<int>(i);
      return -EBADF;
    }
  }

  int report[2];
  int prc = PipeCloexec(report);
  if (prc < 0) {
    failure->step = kSpawnStepFork;
    return prc;
  }
  // The write end must not land on 0..2 (a parent with closed stdio), where
  // the child's dup2 would replace it.
  if (report[1] < 3) {
    int moved = fcntl(report[1], F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(report[1]);
    if (moved < 0) {
      close(report[0]);
      failure->step = kSpawnStepFork;
      return -e;
    }
    report[1] = moved;
  }

  // The fds the child keeps open until execve: the ones to pass and the
  // report pipe, sorted (insertion sort: a handful of numbers). Fixed
  // storage: the child must not allocate.
  constexpr size_t kMaxKeep = 256;
  if (spec.n_pass_fds + 1 > kMaxKeep) {
    close(report[0]);
    close(report[1]);
    return -E2BIG;
  }
  int keep[kMaxKeep];
  size_t n_keep = 0;
  auto insert = [&](int fd) {
    size_t i = n_keep;
    for (size_t j = 0; j < n_keep; j++) {
      if (keep[j] == fd) return;
    }
    while (i > 0 && keep[i - 1] > fd) {
      keep[i] = keep[i - 1];
      i--;
    }
    keep[i] = fd;
    n_keep++;
  };
  for (size_t i = 0; i < spec.n_pass_fds; i++) {
    if (spec.pass_fds[i] >= 3) insert(spec.pass_fds[i]);
  }
  insert(report[1]);

  // Every signal blocked from before the fork until the child has reset
  // the dispositions: a handler of ours must never run in the child.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = vfork();
  if (pid == 0) RunChild(spec, report[1], keep, n_keep);
  int fork_err = pid < 0 ? errno : 0;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(report[1]);

  if (pid < 0) {
    close(report[0]);
    failure->step = kSpawnStepFork;
    return -fork_err;
  }

  // vfork returned: the child has exec'd (the pipe is closed: EOF) or has
  // written its report and exited.
  ChildReport r{0, 0, -1};
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = read(report[0], reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(report[0]);
  if (got == 0) return pid;

  // The child failed before execve: reap it here, nobody else knows it.
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got < sizeof r || r.err <= 0) {
    failure->step = kSpawnStepExec;
    return -EIO;
  }
  failure->step = r.step;
  failure->index = r.index;
  return -r.err;
}

int PidfdOpen(int pid) {
#if defined(SYS_pidfd_open)
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return -errno;
  return static_cast<int>(fd);
#else
  (void)pid;
  return -ENOSYS;
#endif
}

int ReapChild(int pid, int* returncode) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (r == 0) return 0;
  if (WIFSIGNALED(status)) {
    *returncode = -WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    *returncode = WEXITSTATUS(status);
  } else {
    *returncode = status;  // not expected without WUNTRACED
  }
  return 1;
}

int SetBlocking(int fd, bool blocking) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -errno;
  int want = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
  if (want != flags && fcntl(fd, F_SETFL, want) < 0) return -errno;
  return 0;
}

int MakePipe(int fds[2], int size) {
  int rc = PipeCloexec(fds);
  if (rc < 0) return rc;
#if defined(F_SETPIPE_SZ)
  // A bigger pipe means fewer loop passes per megabyte (64 KiB is the
  // default). Best effort: the kernel caps it at fs.pipe-max-size for
  // unprivileged processes and the pipe works at any size.
  if (size > 0) (void)fcntl(fds[0], F_SETPIPE_SZ, size);
#else
  (void)size;
#endif
  return 0;
}

}  // namespace aionode
