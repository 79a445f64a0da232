// Child processes: spawn, exit watching, reaping. Core code (no Node
// headers): every call returns a count, an fd, a pid or -errno.
//
// Spawn follows the shape of CPython's _posixsubprocess (our own code): the
// parent prepares everything that needs memory (argv, envp, the list of
// paths to try), blocks every signal and vforks; the child, which shares the
// parent's memory until it execs, only makes async-signal-safe syscalls on
// what was prepared, and reports a failure (errno and the step that failed)
// through a close-on-exec pipe: EOF on that pipe means the exec succeeded.
//
// Reaping is per pid only (waitpid(pid, WNOHANG)), never waitpid(-1): libuv
// reaps the children of node:child_process the same way, and a wildcard
// wait here would steal their exit statuses.
#ifndef AIONODE_SPAWN_H_
#define AIONODE_SPAWN_H_

#include <cstddef>

namespace aionode {

// Which child-side step failed (SpawnFailure::step).
enum SpawnStep : int {
  kSpawnStepNone = 0,
  kSpawnStepFork,     // vfork itself (in the parent)
  kSpawnStepSession,  // setsid
  kSpawnStepGroup,    // setpgid
  kSpawnStepStdio,    // a stdio fd not open (parent), or its dup2 (child)
  kSpawnStepChdir,    // chdir(cwd)
  kSpawnStepFds,      // an fd to pass not open (parent), or clearing its FD_CLOEXEC (child)
  kSpawnStepExec,     // execve of every candidate path
};

// The name of a step for messages: "fork", "setsid", ..., "execve".
const char* SpawnStepName(int step);

struct SpawnSpec {
  // Paths to execve, in order (the PATH search is the caller's: it knows
  // which PATH applies, the child's env or ours). At least one.
  const char* const* candidates = nullptr;
  size_t n_candidates = 0;
  char* const* argv = nullptr;  // NULL-terminated
  char* const* envp = nullptr;  // NULL-terminated
  const char* cwd = nullptr;    // nullptr: the parent's
  // What becomes the child's fd 0, 1 and 2; -1 inherits the parent's
  // (made inheritable if the parent marked it close-on-exec).
  int stdio[3] = {-1, -1, -1};
  // Further fds the child keeps at the same numbers (each >= 3); every
  // other fd >= 3 is closed in the child.
  const int* pass_fds = nullptr;
  size_t n_pass_fds = 0;
  bool new_session = false;  // setsid()
  int process_group = -1;    // -1: leave; 0: a group of its own; > 0: join it
};

struct SpawnFailure {
  int step = kSpawnStepNone;
  // Which input the error is about, -1 if none: for kSpawnStepExec the
  // candidate, for kSpawnStepStdio the slot (0..2), for kSpawnStepFds the
  // index into pass_fds.
  int index = -1;
};

// Starts a child. Returns its pid, or -errno with `failure` telling which
// step failed (the failed child is already reaped). Every stdio[i] >= 0
// and every pass_fds[i] must be open: otherwise -EBADF (step Stdio or Fds,
// with the index) before anything is created. A closed number there could
// otherwise be handed to the report pipe, which the child would then keep
// across execve: the parent would wait on it for the child's whole life.
int Spawn(const SpawnSpec& spec, SpawnFailure* failure);

// pidfd_open(2): a close-on-exec fd that polls readable once `pid` exits.
// -ENOSYS where the kernel has none (before 5.3) or seccomp refuses it.
int PidfdOpen(int pid);

// waitpid(pid, WNOHANG). Returns 1 and sets *returncode when the child was
// reaped (exit status, or -signal when a signal killed it, as asyncio
// reports it), 0 while it runs, or -errno (-ECHILD: not our child, or
// already reaped elsewhere).
int ReapChild(int pid, int* returncode);

// Sets or clears O_NONBLOCK. 0 or -errno.
int SetBlocking(int fd, bool blocking);

// pipe2(O_CLOEXEC): both ends blocking (a child's stdio must be). With
// `size` > 0, asks for that capacity (F_SETPIPE_SZ, best effort: Linux
// only, capped by fs.pipe-max-size). 0 or -errno.
int MakePipe(int fds[2], int size = 0);

}  // namespace aionode

#endif  // AIONODE_SPAWN_H_
