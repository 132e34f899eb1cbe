#include "tests/support/faulty_fs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <ranges>

namespace fabu::testing {

namespace fs = std::filesystem;

namespace {

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteAll(const fs::path& path, const std::string& content, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return;
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::fchmod(fd, mode);
  ::close(fd);
}

fs::path CanonicalParent(const fs::path& path) {
  std::error_code ec;
  fs::path parent = fs::weakly_canonical(fs::absolute(path, ec).parent_path(), ec);
  return ec ? path.parent_path() : parent;
}

// `path` with its prefix `from` replaced by `to`, when it has that prefix.
std::optional<fs::path> Moved(const fs::path& path, const fs::path& from, const fs::path& to) {
  if (path == from) return to;
  const std::string p = path.string();
  const std::string f = from.string() + "/";
  if (p.starts_with(f)) return to / p.substr(f.size());
  return std::nullopt;
}

}  // namespace

void FaultyFileSystem::Fail(Op op, std::string path_part, int error, int skip) {
  std::lock_guard lock(mutex_);
  faults_.push_back({op, std::move(path_part), error, skip, false});
}

void FaultyFileSystem::CrashAt(Op op, std::string path_part, int skip) {
  std::lock_guard lock(mutex_);
  faults_.push_back({op, std::move(path_part), EIO, skip, true});
}

void FaultyFileSystem::CrashAfter(Op op, std::string path_part, int skip) {
  std::lock_guard lock(mutex_);
  faults_.push_back({op, std::move(path_part), EIO, skip, true, true});
}

bool FaultyFileSystem::crashed() const {
  std::lock_guard lock(mutex_);
  return crashed_;
}

int FaultyFileSystem::Calls(Op op, const std::string& path_part) const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::ranges::count_if(call_log_, [&](const auto& call) {
    return call.first == op && call.second.find(path_part) != std::string::npos;
  }));
}

int FaultyFileSystem::Check(Op op, const std::vector<std::string>& paths) {
  std::string logged;
  for (const auto& p : paths) logged += (logged.empty() ? "" : " -> ") + p;
  call_log_.emplace_back(op, logged);
  if (crashed_) {
    errno = EIO;
    return -1;
  }
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    const bool matches = it->op == op && std::ranges::any_of(paths, [&](const std::string& p) {
                           return p.find(it->path_part) != std::string::npos;
                         });
    if (!matches) continue;
    if (it->skip > 0) {
      --it->skip;
      continue;
    }
    if (op == Op::kWrite && !it->crash && !it->short_write_done) {
      it->short_write_done = true;
      return 1;
    }
    const Fault fault = *it;
    faults_.erase(it);
    if (fault.after) return 2;
    if (fault.crash) crashed_ = true;
    errno = fault.error;
    return -1;
  }
  return 0;
}

std::string FaultyFileSystem::PathOfFd(int fd) {
  std::error_code ec;
  fs::path path = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
  return ec ? std::string() : path.string();
}

FaultyFileSystem::Previous FaultyFileSystem::Snapshot(const fs::path& path) {
  Previous previous;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return previous;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    previous.kind = Previous::Kind::kSymlink;
    previous.content = fs::read_symlink(path, ec).string();
  } else if (S_ISDIR(st.st_mode)) {
    previous.kind = Previous::Kind::kDirectory;
  } else {
    previous.kind = Previous::Kind::kFile;
    previous.content = ReadAll(path);
    previous.mode = st.st_mode & 07777;
  }
  return previous;
}

void FaultyFileSystem::Restore(const fs::path& path, const Previous& previous) {
  switch (previous.kind) {
    case Previous::Kind::kAbsent:
      break;
    case Previous::Kind::kFile:
      WriteAll(path, previous.content, previous.mode);
      break;
    case Previous::Kind::kSymlink:
      ::symlink(previous.content.c_str(), path.c_str());
      break;
    case Previous::Kind::kDirectory:
      ::mkdir(path.c_str(), 0755);
      break;
  }
}

void FaultyFileSystem::ForgetInode(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) == 0) written_.erase(st.st_ino);
}

void FaultyFileSystem::MarkDirectorySynced(const fs::path& dir) {
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(dir, ec);
  std::erase_if(unsynced_entries_, [&](const EntryChange& e) { return e.dir == canonical; });
}

void FaultyFileSystem::MarkEverythingSynced() {
  unsynced_entries_.clear();
  for (auto& [ino, w] : written_) {
    struct stat st {};
    if (::lstat(w.path.c_str(), &st) == 0 && st.st_ino == ino) w.synced = ReadAll(w.path);
  }
}

int FaultyFileSystem::Open(const char* path, int flags, mode_t mode) {
  std::lock_guard lock(mutex_);
  const int check = Check(Op::kOpen, {path});
  if (check < 0) return -1;
  struct stat st {};
  const bool existed = ::lstat(path, &st) == 0;
  const int fd = ::open(path, flags, mode);
  if (fd >= 0 && (flags & O_CREAT) != 0 && !existed) {
    unsynced_entries_.push_back({{}, path, CanonicalParent(path), {}});
    ForgetInode(fd);
  }
  if (check == 2) crashed_ = true;
  return fd;
}

int FaultyFileSystem::MakeTemp(char* path_template, int flags) {
  std::lock_guard lock(mutex_);
  const int check = Check(Op::kMakeTemp, {path_template});
  if (check < 0) return -1;
  const int fd = ::mkostemp(path_template, flags);
  if (fd >= 0) {
    unsynced_entries_.push_back({{}, path_template, CanonicalParent(path_template), {}});
    ForgetInode(fd);
  }
  if (check == 2) crashed_ = true;
  return fd;
}

ssize_t FaultyFileSystem::Write(int fd, const void* data, std::size_t size) {
  const std::string path = PathOfFd(fd);
  std::lock_guard lock(mutex_);
  const int check = Check(Op::kWrite, {path});
  if (check < 0) return -1;
  if (check == 1) {
    if (size <= 1) {
      errno = ENOSPC;
      return -1;
    }
    size /= 2;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && !written_.contains(st.st_ino)) {
    // What was there before this file system wrote to it is taken as durable.
    written_[st.st_ino] = {path, ReadAll("/proc/self/fd/" + std::to_string(fd))};
  }
  const ssize_t n = ::write(fd, data, size);
  if (check == 2) crashed_ = true;
  return n;
}

int FaultyFileSystem::Fsync(int fd) {
  const std::string path = PathOfFd(fd);
  std::lock_guard lock(mutex_);
  const int check = Check(Op::kFsync, {path});
  if (check < 0) return -1;
  if (check == 2) crashed_ = true;
  if (::fsync(fd) != 0) return -1;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode)) {
    MarkDirectorySynced(path);
  } else if (auto it = written_.find(st.st_ino); it != written_.end()) {
    it->second.path = path;
    it->second.synced = ReadAll("/proc/self/fd/" + std::to_string(fd));
  }
  return 0;
}

int FaultyFileSystem::Syncfs(int fd) {
  const std::string path = PathOfFd(fd);
  std::lock_guard lock(mutex_);
  const int check = Check(Op::kSyncfs, {path});
  if (check < 0) return -1;
  if (check == 2) crashed_ = true;
  if (::syncfs(fd) != 0) return -1;
  MarkEverythingSynced();
  return 0;
}

int FaultyFileSystem::Rename(const char* from, const char* to) {
  std::lock_guard lock(mutex_);
  const int check = Check(Op::kRename, {from, to});
  if (check < 0) return -1;
  Previous displaced = Snapshot(to);
  struct stat st {};
  if (displaced.kind == Previous::Kind::kFile && ::lstat(to, &st) == 0) {
    if (auto it = written_.find(st.st_ino); it != written_.end()) {
      displaced.content = it->second.synced;  // what the disk holds of it
      written_.erase(it);
    }
  }
  if (::rename(from, to) != 0) return -1;
  unsynced_entries_.push_back({from, to, CanonicalParent(to), std::move(displaced)});
  // Not canonical themselves: `to` may be a symlink (the `current` link).
  const fs::path from_path = CanonicalParent(from) / fs::path(from).filename();
  const fs::path to_path = CanonicalParent(to) / fs::path(to).filename();
  for (auto& [ino, w] : written_) {
    if (auto moved = Moved(w.path, from_path, to_path)) w.path = *moved;
  }
  if (check == 2) crashed_ = true;
  return 0;
}

void FaultyFileSystem::LoseUnsyncedData() {
  std::lock_guard lock(mutex_);
  // Data first: every file written through here back to its last fsync.
  for (const auto& [ino, w] : written_) {
    struct stat st {};
    if (::lstat(w.path.c_str(), &st) == 0 && st.st_ino == ino && S_ISREG(st.st_mode)) {
      WriteAll(w.path, w.synced, st.st_mode & 07777);
    }
  }
  // Then the names, newest change first.
  for (const EntryChange& e : std::views::reverse(unsynced_entries_)) {
    std::error_code ec;
    if (e.from.empty()) {
      fs::remove(e.to, ec);
      continue;
    }
    if (::rename(e.to.c_str(), e.from.c_str()) != 0) fs::remove_all(e.to, ec);
    Restore(e.to, e.displaced);
  }
  unsynced_entries_.clear();
  written_.clear();
  faults_.clear();
  crashed_ = false;
}

}  // namespace fabu::testing
