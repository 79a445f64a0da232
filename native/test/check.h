// Failure plumbing shared by the core test files that core_test.cc's
// runner calls (socket_test.cc, io_uring_test.cc): each Run*Tests entry
// point stores the runner's fail callback in g_fail, and the CHECK macros
// report the failed expression and line through it.
#ifndef AIONODE_TEST_CHECK_H_
#define AIONODE_TEST_CHECK_H_

#include <sstream>
#include <string>

namespace aionode {
namespace test {

inline void (*g_fail)(const std::string&) = nullptr;

inline void Fail(const std::string& detail) { g_fail(detail); }

template <typename T>
std::string Str(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace test
}  // namespace aionode

#define TEST_CHECK(cond)                                                     \
  do {                                                                       \
    if (!(cond))                                                             \
      ::aionode::test::Fail(std::string(#cond) + " (line " +                 \
                            ::aionode::test::Str(__LINE__) + ")");           \
  } while (0)

#define TEST_CHECK_EQ(a, b)                                                  \
  do {                                                                       \
    const auto check_a = (a);                                                \
    const auto check_b = (b);                                                \
    if (!(check_a == check_b)) {                                             \
      ::aionode::test::Fail(std::string(#a) + " == " + #b + ": got " +       \
                            ::aionode::test::Str(check_a) + " vs " +         \
                            ::aionode::test::Str(check_b) + " (line " +      \
                            ::aionode::test::Str(__LINE__) + ")");           \
    }                                                                        \
  } while (0)

#endif  // AIONODE_TEST_CHECK_H_
