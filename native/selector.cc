#include "selector.h"

#include <cerrno>
#include <cstring>
#include <string>

// The build decides which backends exist: binding.gyp / CMakeLists.txt add
// backends/<name>_selector.cc and define AIO_HAVE_<NAME> together, so these
// are the only platform conditions outside the backend files themselves.
#if defined(AIO_HAVE_EPOLL)
#include "backends/epoll_selector.h"
#endif
#if defined(AIO_HAVE_POLL)
#include "backends/poll_selector.h"
#endif
#if defined(AIO_HAVE_SELECT)
#include "backends/select_selector.h"
#endif

namespace aionode {
namespace {

struct Backend {
  const char* name;
  int (*create)(std::unique_ptr<Selector>* out);
};

// Compiled-in backends, best first: the order of Python's DefaultSelector
// (kqueue > epoll > poll > select). A trailing null entry keeps the array
// non-empty when a build has no backend at all.
constexpr Backend kBackends[] = {
#if defined(AIO_HAVE_EPOLL)
    {"epoll", &EpollSelector::Create},
#endif
#if defined(AIO_HAVE_POLL)
    {"poll", &PollSelector::Create},
#endif
#if defined(AIO_HAVE_SELECT)
    {"select", &SelectSelector::Create},
#endif
    {nullptr, nullptr},
};

// Every backend name aionode knows, compiled in here or not, so that a
// misspelt name (-EINVAL) differs from one this build lacks (-ENOSYS).
constexpr const char* kKnownNames[] = {"kqueue", "epoll",    "poll",
                                       "select", "io_uring", "iocp"};

}  // namespace

int CreateSelector(const char* name, std::unique_ptr<Selector>* out) {
  if (name == nullptr || out == nullptr) return -EINVAL;
  const bool want_default = std::strcmp(name, "default") == 0;
  for (const Backend& b : kBackends) {
    if (b.name == nullptr) break;
    if (want_default || std::strcmp(name, b.name) == 0) return b.create(out);
  }
  if (want_default) return -ENOSYS;
  for (const char* known : kKnownNames) {
    if (std::strcmp(name, known) == 0) return -ENOSYS;
  }
  return -EINVAL;
}

const char* AvailableSelectors() {
  // Built once from kBackends; a function-local static is thread-safe.
  static const std::string list = [] {
    std::string s;
    for (const Backend& b : kBackends) {
      if (b.name == nullptr) break;
      if (!s.empty()) s += ',';
      s += b.name;
    }
    return s;
  }();
  return list.c_str();
}

}  // namespace aionode
