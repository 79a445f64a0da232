/* The machine's floor for timer lateness: one timerfd (absolute deadline,
 * CLOCK_MONOTONIC) in an epoll set, waited on by plain C, serially, with the
 * same delays as bench/lateness.mjs (mulberry32, uniform 0..MAX_MS ms).
 * aionode's native timers use exactly this mechanism, so on the same
 * machine their lateness can only be this plus the loop's own overhead.
 *
 *   cc -O2 -o timerfd-floor bench/timerfd-floor.c
 *   ./timerfd-floor [N] [MAX_MS]      -> one JSON line (ms, nearest rank)
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint32_t rng_state;
static double mulberry32(void) {
  rng_state += 0x6d2b79f5u;
  uint32_t t = rng_state;
  t = (t ^ (t >> 15)) * (t | 1);
  t ^= t + (t ^ (t >> 7)) * (t | 61);
  return (double)(t ^ (t >> 14)) / 4294967296.0;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void wait_one(int tfd, int ep, int64_t due) {
  struct itimerspec s = {0};
  s.it_value.tv_sec = due / 1000000000;
  s.it_value.tv_nsec = due % 1000000000;
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &s, NULL);
  struct epoll_event ev;
  while (epoll_wait(ep, &ev, 1, -1) < 1) {
  }
  uint64_t x;
  if (read(tfd, &x, sizeof x) < 0) perror("read");
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2000;
  double max_ms = argc > 2 ? atof(argv[2]) : 50;
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN};
  if (tfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e) < 0) {
    perror("timerfd/epoll");
    return 1;
  }
  /* warm-up, as lateness.mjs: 100 timers in 0..5 ms, seed 7 */
  rng_state = 7;
  for (int i = 0; i < 100; i++) wait_one(tfd, ep, now_ns() + (int64_t)ceil(mulberry32() * 5 * 1e6));
  rng_state = 20261123;
  double* late = malloc(sizeof(double) * n);
  int early = 0;
  double sum = 0;
  for (int i = 0; i < n; i++) {
    int64_t due = now_ns() + (int64_t)ceil(mulberry32() * max_ms * 1e6);
    wait_one(tfd, ep, due);
    late[i] = (double)(now_ns() - due) / 1e6;
    if (late[i] < 0) early++;
    sum += late[i];
  }
  qsort(late, n, sizeof(double), cmp);
#define RANK(p) late[(int)fmin(n - 1, fmax(0, ceil((p) / 100.0 * n) - 1))]
  printf("{\"bench\": \"lateness_serial\", \"impl\": \"C timerfd+epoll\", \"n\": %d, "
         "\"max_delay_ms\": %g, \"p50_ms\": %.6f, \"p90_ms\": %.6f, \"p99_ms\": %.6f, "
         "\"max_ms\": %.6f, \"min_ms\": %.6f, \"mean_ms\": %.6f, \"early\": %d}\n",
         n, max_ms, RANK(50), RANK(90), RANK(99), late[n - 1], late[0], sum / n, early);
  return 0;
}
