#include "coordinator/common/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace fabu::coordinator {
namespace {

std::unexpected<Error> ErrnoError(std::string_view what, const std::filesystem::path& path) {
  return Fail(ErrorCode::kIo,
              std::string(what) + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

Result<void> SyncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("syncing directory", dir);
  return {};
}

Result<void> SyncFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening", path);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("syncing", path);
  return {};
}

Result<void> WriteFileDurably(const std::filesystem::path& path, std::string_view content,
                              mode_t mode) {
  const std::filesystem::path temp = path.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("creating", temp);
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto error = ErrnoError("writing", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return error;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    auto error = ErrnoError("syncing", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return error;
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    auto error = ErrnoError("renaming into place", path);
    ::unlink(temp.c_str());
    return error;
  }
  return SyncDirectory(path.parent_path().empty() ? std::filesystem::path(".")
                                                  : path.parent_path());
}

}  // namespace fabu::coordinator
