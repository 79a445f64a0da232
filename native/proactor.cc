// Builds without io_uring (not Linux): the proactor entry points say so,
// so the binding needs no platform condition of its own.
#include "proactor.h"

#if !defined(AIO_HAVE_IO_URING)

namespace aionode {

int CreateIoUringProactor(unsigned, std::unique_ptr<Proactor>*,
                          std::string* why) {
  if (why != nullptr) *why = IoUringRefusal(ENOSYS);
  return -ENOSYS;
}

std::string IoUringRefusal(int err) {
  return err == ENOSYS ? "io_uring not supported by this kernel"
                       : "io_uring not available in this build";
}

const ProactorFeatures* IoUringFeatures(const Proactor*) { return nullptr; }

const char* AvailableProactors() { return ""; }

}  // namespace aionode

#endif
