// Tests of the child-process core (spawn.h): a successful spawn watched
// through its pidfd and reaped, exit codes and signals, a missing program
// reported through the report pipe, and the check that every fd the caller
// names is open before anything is created. Runs inside core_test.cc's
// harness (its Run / Fail).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

#include "../spawn.h"
#include "check.h"

namespace aionode {

void RunSpawnTests(void (*run)(const std::string&, const std::function<void()>&),
                   void (*fail)(const std::string&));

namespace {

// Open fds of this process: a leak shows as a difference.
int FdCount() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr) n++;
  closedir(d);
  return n;
}

// A number that is free right now: the lowest one, which is exactly what
// pipe2 inside Spawn would take next.
int ClosedFd() {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  close(fd);
  return fd;
}

// Everything Spawn reads, for one program with its arguments.
struct Cmd {
  const char* candidates[2];
  char* argv[4];
  char* envp[1] = {nullptr};
  SpawnSpec spec;
  Cmd(const char* path, const char* a0, const char* a1 = nullptr, const char* a2 = nullptr) {
    candidates[0] = path;
    candidates[1] = nullptr;
    argv[0] = const_cast<char*>(a0);
    argv[1] = const_cast<char*>(a1);
    argv[2] = a1 == nullptr ? nullptr : const_cast<char*>(a2);
    argv[3] = nullptr;
    spec.candidates = candidates;
    spec.n_candidates = 1;
    spec.argv = argv;
    spec.envp = envp;
  }
};

// Waits for the child's exit through its pidfd where the kernel has
// pidfd_open, else by polling waitpid; returns the return code.
int WaitExit(int pid) {
  int pidfd = PidfdOpen(pid);
  if (pidfd >= 0) {
    struct pollfd p = {pidfd, POLLIN, 0};
    int n = poll(&p, 1, 10000);
    TEST_CHECK_EQ(n, 1);
    close(pidfd);
  } else {
    TEST_CHECK(pidfd == -ENOSYS || pidfd == -EPERM);
  }
  int rc = 0;
  for (int i = 0; i < 10000; i++) {
    int r = ReapChild(pid, &rc);
    if (r == 1) return rc;
    TEST_CHECK_EQ(r, 0);
    if (r != 0) return -1000;
    usleep(1000);
  }
  test::Fail("child never exited");
  return -1000;
}

void TestTrueAndReap() {
  int before = FdCount();
  Cmd c("/bin/true", "true");
  SpawnFailure f;
  int pid = Spawn(c.spec, &f);
  TEST_CHECK(pid > 0);
  if (pid <= 0) return;
  TEST_CHECK_EQ(f.step, static_cast<int>(kSpawnStepNone));
  TEST_CHECK_EQ(WaitExit(pid), 0);
  // Reaped once: a second reap is not ours any more.
  int rc = 0;
  TEST_CHECK_EQ(ReapChild(pid, &rc), -ECHILD);
  TEST_CHECK_EQ(FdCount(), before);
}

void TestExitCodeSignalAndStdout() {
  int fds[2];
  TEST_CHECK_EQ(MakePipe(fds), 0);
  Cmd c("/bin/sh", "sh", "-c", "echo spawned; exit 3");
  c.spec.stdio[1] = fds[1];
  SpawnFailure f;
  int pid = Spawn(c.spec, &f);
  close(fds[1]);
  TEST_CHECK(pid > 0);
  if (pid > 0) {
    char buf[64] = {};
    size_t got = 0;
    ssize_t n;
    while ((n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0) got += static_cast<size_t>(n);
    TEST_CHECK_EQ(std::string(buf, got), std::string("spawned\n"));
    TEST_CHECK_EQ(WaitExit(pid), 3);
  }
  close(fds[0]);

  Cmd s("/bin/sleep", "sleep", "30");
  pid = Spawn(s.spec, &f);
  TEST_CHECK(pid > 0);
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  TEST_CHECK_EQ(WaitExit(pid), -SIGKILL);
}

void TestMissingProgram() {
  int before = FdCount();
  Cmd c("/nonexistent-aionode/zzz", "zzz");
  SpawnFailure f;
  int rc = Spawn(c.spec, &f);
  TEST_CHECK_EQ(rc, -ENOENT);
  TEST_CHECK_EQ(f.step, static_cast<int>(kSpawnStepExec));
  TEST_CHECK_EQ(f.index, 0);
  TEST_CHECK_EQ(std::string(SpawnStepName(f.step)), std::string("execve"));
  // The failed child was reaped by Spawn: nothing of ours is left to wait.
  int status;
  TEST_CHECK(waitpid(-1, &status, WNOHANG) <= 0);
  TEST_CHECK_EQ(FdCount(), before);
}

void TestClosedStdioFd() {
  for (int slot = 0; slot < 3; slot++) {
    int before = FdCount();
    Cmd c("/bin/sleep", "sleep", "5");
    int bad = ClosedFd();
    c.spec.stdio[slot] = bad;
    SpawnFailure f;
    int rc = Spawn(c.spec, &f);
    TEST_CHECK_EQ(rc, -EBADF);
    TEST_CHECK_EQ(f.step, static_cast<int>(kSpawnStepStdio));
    TEST_CHECK_EQ(f.index, slot);
    // Refused before the report pipe existed: the number is still free.
    TEST_CHECK_EQ(fcntl(bad, F_GETFD), -1);
    TEST_CHECK_EQ(FdCount(), before);
    if (rc > 0) {
      kill(rc, SIGKILL);
      WaitExit(rc);
    }
  }
}

void TestClosedPassFd() {
  int before = FdCount();
  int open_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int bad = ClosedFd();
  int pass[2] = {open_fd, bad};
  Cmd c("/bin/sleep", "sleep", "5");
  c.spec.pass_fds = pass;
  c.spec.n_pass_fds = 2;
  SpawnFailure f;
  int rc = Spawn(c.spec, &f);
  TEST_CHECK_EQ(rc, -EBADF);
  TEST_CHECK_EQ(f.step, static_cast<int>(kSpawnStepFds));
  TEST_CHECK_EQ(f.index, 1);
  if (rc > 0) {
    kill(rc, SIGKILL);
    WaitExit(rc);
  }
  close(open_fd);
  TEST_CHECK_EQ(FdCount(), before);
}

}  // namespace

void RunSpawnTests(void (*run)(const std::string&, const std::function<void()>&),
                   void (*fail)(const std::string&)) {
  test::g_fail = fail;
  run("spawn: /bin/true, exit seen through the pidfd, reaped once", TestTrueAndReap);
  run("spawn: stdout to a pipe, exit code 3, -SIGKILL", TestExitCodeSignalAndStdout);
  run("spawn: a missing program is -ENOENT from the child (execve, index 0)", TestMissingProgram);
  run("spawn: a closed stdio fd is -EBADF (step stdio, slot), nothing created", TestClosedStdioFd);
  run("spawn: a closed fd to pass is -EBADF (step fds, index)", TestClosedPassFd);
}

}  // namespace aionode
