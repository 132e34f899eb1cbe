#include "platform/fs/files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fabu::platform {

namespace fs = std::filesystem;

namespace {

std::string Errno() { return std::strerror(errno); }

std::atomic<FileSystem*> installed{nullptr};

fs::path ParentOf(const fs::path& path) {
  return path.parent_path().empty() ? fs::path(".") : path.parent_path();
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

int UniqueFd::Close() {
  if (fd_ < 0) return 0;
  return ::close(release());
}

int FileSystem::Open(const char* path, int flags, mode_t mode) { return ::open(path, flags, mode); }

int FileSystem::MakeTemp(char* path_template, int flags) {
  return ::mkostemp(path_template, flags);
}

ssize_t FileSystem::Write(int fd, const void* data, std::size_t size) {
  return ::write(fd, data, size);
}

int FileSystem::Fsync(int fd) { return ::fsync(fd); }

int FileSystem::Syncfs(int fd) { return ::syncfs(fd); }

int FileSystem::Rename(const char* from, const char* to) { return ::rename(from, to); }

FileSystem& CurrentFileSystem() {
  static FileSystem real;
  FileSystem* fs = installed.load(std::memory_order_acquire);
  return fs != nullptr ? *fs : real;
}

ScopedFileSystem::ScopedFileSystem(FileSystem& fs)
    : previous_(installed.exchange(&fs, std::memory_order_acq_rel)) {}

ScopedFileSystem::~ScopedFileSystem() { installed.store(previous_, std::memory_order_release); }

Result<void> WriteAll(int fd, std::string_view data, const fs::path& path) {
  FileSystem& fs = CurrentFileSystem();
  std::size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = fs.Write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return Fail(ErrorCode::kIo, fmt::format("write to {} failed: {}", path.string(), Errno()));
    }
    written += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> SyncDirectory(const fs::path& dir) {
  FileSystem& fs = CurrentFileSystem();
  UniqueFd fd(fs.Open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
  if (!fd.valid()) {
    return Fail(ErrorCode::kIo, fmt::format("cannot open directory {}: {}", dir.string(), Errno()));
  }
  if (fs.Fsync(fd.get()) != 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("fsync of directory {} failed: {}", dir.string(), Errno()));
  }
  return {};
}

Result<void> SyncFile(const fs::path& path) {
  FileSystem& fs = CurrentFileSystem();
  UniqueFd fd(fs.Open(path.c_str(), O_RDONLY | O_CLOEXEC, 0));
  if (!fd.valid()) {
    return Fail(ErrorCode::kIo, fmt::format("cannot open {}: {}", path.string(), Errno()));
  }
  if (fs.Fsync(fd.get()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("fsync of {} failed: {}", path.string(), Errno()));
  }
  return {};
}

Result<void> SyncFileSystemOf(const fs::path& path) {
  FileSystem& fs = CurrentFileSystem();
  UniqueFd fd(fs.Open(path.c_str(), O_RDONLY | O_CLOEXEC, 0));
  if (!fd.valid() || fs.Syncfs(fd.get()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot sync {}: {}", path.string(), Errno()));
  }
  return {};
}

Result<void> RenameAtomically(const fs::path& from, const fs::path& to) {
  if (CurrentFileSystem().Rename(from.c_str(), to.c_str()) != 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot rename {} to {}: {}", from.string(), to.string(), Errno()));
  }
  return {};
}

Result<void> WriteFileDurably(const fs::path& path, std::string_view content, mode_t mode) {
  FileSystem& fs = CurrentFileSystem();
  std::string temp = path.string() + ".tmp-XXXXXX";
  UniqueFd fd(fs.MakeTemp(temp.data(), O_CLOEXEC));
  auto fail = [&](std::string what) -> Result<void> {
    return Fail(ErrorCode::kIo, fmt::format("cannot write {}: {}", path.string(), what));
  };
  if (!fd.valid()) return fail(fmt::format("cannot create {}: {}", temp, Errno()));
  auto fail_and_remove = [&](std::string what) -> Result<void> {
    auto error = fail(std::move(what));
    fd.reset();
    ::unlink(temp.c_str());
    return error;
  };
  if (::fchmod(fd.get(), mode) != 0) {
    return fail_and_remove(fmt::format("chmod of {} failed: {}", temp, Errno()));
  }
  if (auto ok = WriteAll(fd.get(), content, temp); !ok)
    return fail_and_remove(ok.error().message());
  if (fs.Fsync(fd.get()) != 0) {
    return fail_and_remove(fmt::format("fsync of {} failed: {}", temp, Errno()));
  }
  if (fd.Close() != 0) return fail_and_remove(fmt::format("close of {} failed: {}", temp, Errno()));
  if (fs.Rename(temp.c_str(), path.c_str()) != 0) {
    return fail_and_remove(fmt::format("rename of {} into place failed: {}", temp, Errno()));
  }
  if (auto ok = SyncDirectory(ParentOf(path)); !ok) return fail(ok.error().message());
  return {};
}

Result<void> WriteNewFileDurably(const fs::path& path, std::string_view content, mode_t mode) {
  FileSystem& fs = CurrentFileSystem();
  UniqueFd fd(fs.Open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd.valid()) {
    if (errno == EEXIST) {
      return Fail(ErrorCode::kAlreadyExists, fmt::format("{} already exists", path.string()));
    }
    return Fail(ErrorCode::kIo, fmt::format("cannot create {}: {}", path.string(), Errno()));
  }
  auto fail_and_remove = [&](std::string what) -> Result<void> {
    auto error = Fail(ErrorCode::kIo, fmt::format("cannot write {}: {}", path.string(), what));
    fd.reset();
    ::unlink(path.c_str());
    return error;
  };
  // The umask must not widen or narrow what the caller asked for.
  if (::fchmod(fd.get(), mode) != 0)
    return fail_and_remove(fmt::format("chmod failed: {}", Errno()));
  if (auto ok = WriteAll(fd.get(), content, path); !ok)
    return fail_and_remove(ok.error().message());
  if (fs.Fsync(fd.get()) != 0) return fail_and_remove(fmt::format("fsync failed: {}", Errno()));
  if (fd.Close() != 0) return fail_and_remove(fmt::format("close failed: {}", Errno()));
  return SyncDirectory(ParentOf(path));
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
  return SyncDirectory(ParentOf(path));
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

}  // namespace fabu::platform
