#include "packaging/platform/open_beneath.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

namespace fabu::packaging::platform {

int OpenBeneath(int root, const std::string& path, int flags, mode_t mode, bool use_openat2) {
  static std::atomic<bool> no_openat2{false};
  if (use_openat2 && !no_openat2.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) != 0 ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
    long fd;
    do {
      fd = ::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return static_cast<int>(fd);
    if (errno == ENOSYS) no_openat2.store(true, std::memory_order_relaxed);
  }
  int dir = root;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? slash : slash - start);
    if (part.empty() || part == "." || part == "..") {
      if (dir != root) ::close(dir);
      errno = EXDEV;
      return -1;
    }
    const int next =
        slash == std::string::npos
            ? ::openat(dir, part.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode)
            : ::openat(dir, part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int saved = errno;
    if (dir != root) ::close(dir);
    if (next < 0) {
      // O_NOFOLLOW on a symlink: ELOOP, or ENOTDIR for a directory component.
      errno = saved == ENOTDIR ? ELOOP : saved;
      return -1;
    }
    if (slash == std::string::npos) return next;
    dir = next;
    start = slash + 1;
  }
}

}  // namespace fabu::packaging::platform
