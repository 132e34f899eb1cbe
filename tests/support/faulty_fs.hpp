// A file system for crash-safety tests (platform/fs/files.hpp): the real one,
// except that it fails the calls it is told to fail, and can lose what a
// power cut would lose.
//
// Faults: the n-th call of an operation on a path containing a given part
// fails with an errno (fsync EIO, write ENOSPC after a short write, rename
// EXDEV...). A crash point is a fault after which the process is taken as
// dead: that call and every later one fail with EIO and change nothing.
//
// LoseUnsyncedData() then leaves the disk as the kernel may leave it after a
// power cut: data written through this file system since the file's last
// fsync is gone (a file never synced is empty), and each entry created or
// renamed through it whose directory was not fsynced since is undone (a
// rename over an existing file brings the old file back). syncfs counts as a
// sync of everything. Only what goes through this file system is tracked:
// files written by other means (an extracted tree) are taken as durable.
//
// Install with platform::ScopedFileSystem. Thread-safe.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "platform/fs/files.hpp"

namespace fabu::testing {

class FaultyFileSystem : public platform::FileSystem {
 public:
  enum class Op { kOpen, kMakeTemp, kWrite, kFsync, kSyncfs, kRename };

  // The `skip`+1-th call of `op` on a path containing `path_part` (for a
  // rename: either path) fails with `error`. A failing write first writes
  // half of what it was given (a short write), as a disk filling up does.
  void Fail(Op op, std::string path_part, int error, int skip = 0);
  // The same call is where the process dies: it and every later call fail
  // with EIO and change nothing.
  void CrashAt(Op op, std::string path_part, int skip = 0);
  // The process dies right after that call succeeded: every later call fails
  // with EIO and changes nothing (a rename done, its directory not synced).
  void CrashAfter(Op op, std::string path_part, int skip = 0);

  bool crashed() const;
  // How many calls of `op` on a path containing `path_part` were made.
  int Calls(Op op, const std::string& path_part = "") const;

  // What a power cut would leave (see above). Clears the crash: the file
  // system works again, as after a reboot.
  void LoseUnsyncedData();

  int Open(const char* path, int flags, mode_t mode) override;
  int MakeTemp(char* path_template, int flags) override;
  ssize_t Write(int fd, const void* data, std::size_t size) override;
  int Fsync(int fd) override;
  int Syncfs(int fd) override;
  int Rename(const char* from, const char* to) override;

 private:
  struct Fault {
    Op op;
    std::string path_part;
    int error;
    int skip;
    bool crash;
    bool after = false;  // the call goes through, then the crash
    bool short_write_done = false;
  };
  // What a name held before an unsynced change: nothing, a file's bytes, a
  // symlink's target, or an (empty) directory.
  struct Previous {
    enum class Kind { kAbsent, kFile, kSymlink, kDirectory } kind = Kind::kAbsent;
    std::string content;
    mode_t mode = 0644;
  };
  struct EntryChange {
    std::filesystem::path from;  // empty: `to` was created
    std::filesystem::path to;
    std::filesystem::path dir;  // the directory holding `to`, canonical
    Previous displaced;         // what `to` held before
  };
  struct Written {
    std::filesystem::path path;  // where the file is now
    std::string synced;          // its content as of its last fsync
  };

  // Applies the faults to a call of `op` on `paths`: -1 with errno set when it
  // must fail; 0 to go on; 1 when a write must be short; 2 to go on, then
  // crash.
  int Check(Op op, const std::vector<std::string>& paths);
  static std::string PathOfFd(int fd);
  static Previous Snapshot(const std::filesystem::path& path);
  static void Restore(const std::filesystem::path& path, const Previous& previous);
  // A file just created: an inode number this file system saw before was
  // reused (its file was removed by other means).
  void ForgetInode(int fd);
  void MarkDirectorySynced(const std::filesystem::path& dir);
  void MarkEverythingSynced();

  mutable std::mutex mutex_;
  std::vector<Fault> faults_;
  std::vector<std::pair<Op, std::string>> call_log_;
  bool crashed_ = false;
  std::vector<EntryChange> unsynced_entries_;
  std::map<ino_t, Written> written_;
};

}  // namespace fabu::testing
