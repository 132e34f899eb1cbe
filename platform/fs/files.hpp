// The file-system platform layer: the one place fabu writes a file durably,
// syncs a directory or renames into place (docs/architecture.md, "Modules and
// their dependencies").
//
// Every change that must survive a crash (the agent's journal, a release's
// manifest, the `current` link, the coordinator's configuration and keys, a
// package built) is written to a temp file beside its name, fsynced, renamed
// over the name and made durable by fsync(2) of the directory that holds it.
// A crash at any instant leaves the old content or the new, never a torn file.
//
// The system calls that decide durability go through a FileSystem, one per
// process (the real one unless a test installed another): the tests replace
// it with one that fails an fsync, a write or a rename, or loses what was not
// synced (tests/support/faulty_fs.hpp).
//
// Functions are reentrant; concurrent writers of the same path must be kept
// apart by the caller.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::platform {

// A file descriptor closed when it goes out of scope. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the descriptor held (if any) and holds `fd`.
  void reset(int fd = -1);
  // Closes the descriptor, returning close(2)'s result (0 when none was held).
  int Close();

 private:
  int fd_ = -1;
};

// The system calls whose failure or loss a crash-safety test must be able to
// provoke. Each behaves as its namesake: -1 with errno on failure.
class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual int Open(const char* path, int flags, mode_t mode);
  // mkostemp(3): `path_template` ends in XXXXXX, replaced by the name made.
  virtual int MakeTemp(char* path_template, int flags);
  virtual ssize_t Write(int fd, const void* data, std::size_t size);
  virtual int Fsync(int fd);
  virtual int Syncfs(int fd);
  virtual int Rename(const char* from, const char* to);
};

// The file system of the process: the real one unless a test installed
// another.
FileSystem& CurrentFileSystem();

// Makes `fs` the process's file system until destroyed (tests; one at a time).
class ScopedFileSystem {
 public:
  explicit ScopedFileSystem(FileSystem& fs);
  ~ScopedFileSystem();
  ScopedFileSystem(const ScopedFileSystem&) = delete;
  ScopedFileSystem& operator=(const ScopedFileSystem&) = delete;

 private:
  FileSystem* previous_;
};

// Writes all of `data` to `fd` (retrying short writes and EINTR); on error
// names `path`, the file `fd` writes.
Result<void> WriteAll(int fd, std::string_view data, const std::filesystem::path& path);

// fsync(2) of a directory, so entries created, renamed or removed in it
// survive a crash.
Result<void> SyncDirectory(const std::filesystem::path& dir);

// fsync(2) of an existing file.
Result<void> SyncFile(const std::filesystem::path& path);

// syncfs(2) of the file system holding `path`: everything written there so
// far (a freshly extracted tree: thousands of files in one call) is on disk.
Result<void> SyncFileSystemOf(const std::filesystem::path& path);

// rename(2) of `from` over `to`: atomic, but durable only once the
// directory holding `to` is synced.
Result<void> RenameAtomically(const std::filesystem::path& from, const std::filesystem::path& to);

// Writes `content` to `path` through `path.tmp-XXXXXX`: write, fsync, rename,
// fsync of the directory, the file getting `mode` (0600 for a secret: the
// temp file is created 0600, so the content is never readable by others). On
// error the temp file is removed, `path` is unchanged and the message names
// `path`, the step that failed and why. A temp file whose fsync failed is
// never synced again (its pages may be gone): the next write starts afresh.
Result<void> WriteFileDurably(const std::filesystem::path& path, std::string_view content,
                              mode_t mode = 0644);

// Creates `path` (never through a symlink; kAlreadyExists when it exists),
// writes `content`, gives it `mode`, fsyncs it and its directory. On error
// the file is removed. For secrets and keys that are made once.
Result<void> WriteNewFileDurably(const std::filesystem::path& path, std::string_view content,
                                 mode_t mode);

// Reads a whole file (kNotFound when it is absent).
Result<std::string> ReadWholeFile(const std::filesystem::path& path);

// Removes `path` and everything under it (absent is fine), then syncs its parent.
Result<void> RemoveTreeDurably(const std::filesystem::path& path);

// Creates `dir` and its parents (mode 0755); existing is fine.
Result<void> MakeDirectories(const std::filesystem::path& dir);

}  // namespace fabu::platform
