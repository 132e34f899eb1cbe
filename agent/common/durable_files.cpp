#include "agent/common/durable_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace fabu::agent {

namespace fs = std::filesystem;

namespace {

std::string Errno() { return std::strerror(errno); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace

Result<void> SyncFileSystemOf(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0 || ::syncfs(fd.get()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot sync {}: {}", path.string(), Errno()));
  }
  return {};
}

Result<void> SyncDirectory(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot open directory {}: {}", dir.string(), Errno()));
  }
  if (::fsync(fd.get()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot sync directory {}: {}", dir.string(), Errno()));
  }
  return {};
}

Result<void> WriteFileDurably(const fs::path& path, std::string_view content, mode_t mode) {
  std::string temp = path.string() + ".tmp-XXXXXX";
  Fd fd(::mkostemp(temp.data(), O_CLOEXEC));
  if (fd.get() < 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create {}: {}", temp, Errno()));
  }
  auto fail = [&](std::string what) -> Result<void> {
    ::unlink(temp.c_str());
    return Fail(ErrorCode::kIo, fmt::format("{} {}: {}", what, temp, Errno()));
  };
  if (::fchmod(fd.get(), mode) != 0) return fail("cannot chmod");
  std::size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("cannot sync");
  if (::close(fd.release()) != 0) return fail("cannot close");
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail("cannot rename into place");
  return SyncDirectory(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

Result<std::string> ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                fmt::format("cannot read {}: {}", path.string(), Errno()));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Fail(ErrorCode::kIo, fmt::format("cannot read {}", path.string()));
  return buffer.str();
}

Result<void> RemoveTreeDurably(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    return Fail(ErrorCode::kIo, fmt::format("cannot remove {}: {}", path.string(), ec.message()));
  }
  return SyncDirectory(path.parent_path());
}

Result<void> MakeDirectories(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot create directory {}: {}", dir.string(), ec.message()));
  }
  return {};
}

}  // namespace fabu::agent
