// Writing checked entries beneath a staging directory: DiskSink writes with
// every path opened beneath the root (OpenBeneath), PipelinedDiskSink moves
// that writing to a second thread.
#include "packaging/reader/disk_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "packaging/platform/open_beneath.hpp"

namespace fabu::packaging::reader {
namespace {

namespace fs = std::filesystem;

// Bytes of file data queued between the reading and the writing thread.
constexpr std::size_t kWriteQueueBytes = 1 << 20;

// Writes entries under a staging directory, every path opened beneath it
// with OpenBeneath.
class DiskSink : public EntrySink {
 public:
  // Entries reach a sink only after every check passed: a safe relative path
  // (no `..`, not absolute), listed once in the signed manifest, never beneath
  // a symlink of the package, no hard link, device or FIFO, every symlink's
  // chain resolved inside the tree (CheckSymlinkTree); and `root` is a fresh
  // private (0700) directory nobody else writes. The writer does not rely on
  // those checks: each path is resolved beneath `root` by the kernel without
  // following a symlink (one openat2 per file), so even a check missed could
  // not make it write outside the tree, nor through a link inside it. `root`
  // itself may lie beneath a symlink (an apps root /opt -> /data/opt).
  explicit DiskSink(fs::path root) : root_(std::move(root)) {
    root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd_ < 0) root_errno_ = errno;
  }
  ~DiskSink() override {
    if (file_ >= 0) ::close(file_);
    if (root_fd_ >= 0) ::close(root_fd_);
  }
  DiskSink(const DiskSink&) = delete;
  DiskSink& operator=(const DiskSink&) = delete;

  Result<void> Begin(const ManifestEntry& e) override {
    current_ = e.path;
    if (root_fd_ < 0) return Failed(root_.string(), root_errno_);
    switch (e.type) {
      case EntryType::kFile: {
        file_ = Create(e.path, [&] {
          return platform::OpenBeneath(root_fd_, e.path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        });
        if (file_ < 0) return Failed(e.path, errno);
        file_mode_ = e.mode;
        return {};
      }
      case EntryType::kDir: {
        auto made = MakeDir(e.path);
        if (!made) return made;
        dir_modes_[e.path] = e.mode;  // applied at Close, deepest first
        return {};
      }
      case EntryType::kSymlink: {
        const auto [parent, name] = Split(e.path);
        const int rc = Create(e.path, [&] {
          const int dir = OpenDir(parent);
          if (dir < 0) return -1;
          const int made = ::symlinkat(e.target.c_str(), dir, name.c_str());
          const int saved = errno;
          if (dir != root_fd_) ::close(dir);
          errno = saved;
          return made;
        });
        if (rc < 0) return Failed(e.path, errno);
        return {};
      }
    }
    return {};
  }

  Result<void> Data(const void* data, std::size_t size) override {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(file_, p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Failed(current_, n < 0 ? errno : ENOSPC);
      p += n;
      size -= static_cast<std::size_t>(n);
    }
    return {};
  }

  Result<void> End() override {
    if (file_ < 0) return {};
    // The exact mode of the manifest, whatever the umask.
    int rc = ::fchmod(file_, file_mode_);
    const int saved = errno;
    const int closed = ::close(file_);
    file_ = -1;
    if (rc != 0) return Failed(current_, saved);
    if (closed != 0) return Failed(current_, errno);
    return {};
  }

  // Applies the directories' modes, deepest first, so a read-only directory
  // did not stop its children being written.
  Result<void> Close() {
    for (auto it = dir_modes_.rbegin(); it != dir_modes_.rend(); ++it) {
      const int fd = platform::OpenBeneath(root_fd_, it->first, O_RDONLY | O_DIRECTORY);
      if (fd < 0 || ::fchmod(fd, it->second) != 0) {
        const int saved = errno;
        if (fd >= 0) ::close(fd);
        return Fail(ErrorCode::kIo,
                    fmt::format("finishing extraction: {}: {}", it->first, std::strerror(saved)));
      }
      ::close(fd);
    }
    return {};
  }

 private:
  // Directories the manifest does not list, made for their children.
  static constexpr mode_t kImplicitDirMode = 0755;

  static std::pair<std::string, std::string> Split(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) return {"", path};
    return {path.substr(0, slash), path.substr(slash + 1)};
  }

  static std::unexpected<Error> Failed(const std::string& path, int err) {
    if (err == ELOOP || err == EXDEV) {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("{}: refused: its path resolves through a symlink or outside the "
                              "tree being extracted",
                              path));
    }
    return Fail(ErrorCode::kIo, fmt::format("{}: cannot write: {}", path, std::strerror(err)));
  }

  // The directory `path` beneath the root, for *at() calls; the root itself
  // for "". Close what is returned unless it is root_fd_.
  int OpenDir(const std::string& path) {
    if (path.empty()) return root_fd_;
    return platform::OpenBeneath(root_fd_, path, O_PATH | O_DIRECTORY);
  }

  // Runs `make`; when it fails because a parent directory is missing (the
  // manifest need not list every directory), makes the parents and runs it
  // again.
  template <typename Make>
  int Create(const std::string& path, Make make) {
    int rc = make();
    if (rc >= 0 || errno != ENOENT) return rc;
    const auto parent = Split(path).first;
    if (parent.empty()) return rc;
    if (auto made = MakeParents(parent); !made) return -1;
    return make();
  }

  Result<void> MakeParents(const std::string& dir) {
    for (std::size_t slash = dir.find('/');; slash = dir.find('/', slash + 1)) {
      const std::string prefix = dir.substr(0, slash);
      if (!dir_modes_.contains(prefix)) {
        auto made = MakeDir(prefix);
        if (!made) return made;
        dir_modes_.emplace(prefix, kImplicitDirMode);
      }
      if (slash == std::string::npos) return {};
    }
  }

  // mkdir beneath the root (0700 until Close); an existing directory (made
  // earlier as a parent) is kept.
  Result<void> MakeDir(const std::string& path) {
    const auto [parent, name] = Split(path);
    const int rc = Create(path, [&, &parent = parent, &name = name] {
      const int dir = OpenDir(parent);
      if (dir < 0) return -1;
      int made = ::mkdirat(dir, name.c_str(), 0700);
      if (made != 0 && errno == EEXIST) {
        struct stat st {};
        if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
          made = 0;
        } else {
          errno = EEXIST;
        }
      }
      const int saved = errno;
      if (dir != root_fd_) ::close(dir);
      errno = saved;
      return made;
    });
    if (rc < 0) return Failed(path, errno);
    return {};
  }

  fs::path root_;
  int root_fd_ = -1;
  int root_errno_ = 0;
  int file_ = -1;  // the file being written
  mode_t file_mode_ = 0;
  std::string current_;
  std::map<std::string, mode_t> dir_modes_;
};

// Hands entries to a DiskSink on a second thread, so that writing (kernel
// time: page-cache copies and inode allocation, the larger share of an
// install) overlaps reading, decompressing and hashing. Entries travel in
// batches of about kBatchBytes, so the threads meet once per batch rather
// than once per piece of a file; the batches' buffers are reused, and at most
// kWriteQueueBytes wait, keeping memory flat. The first write error stops the
// reader at its next batch.
class PipelinedDiskSink final : public StagingSink {
 public:
  explicit PipelinedDiskSink(fs::path root)
      : disk_(std::move(root)), writer_([this] { WriteLoop(); }) {}

  // Without Close (the read failed), what is still queued is dropped: the
  // staging tree is about to be removed anyway.
  ~PipelinedDiskSink() override {
    {
      std::lock_guard lock(mutex_);
      queue_.clear();
      queued_bytes_ = 0;
    }
    Finish();
  }

  Result<void> Begin(const ManifestEntry& entry) override {
    filling_.items.push_back({Item::kBegin, entry, 0, 0});
    return filling_.items.size() >= kBatchItems ? Send() : Result<void>();
  }
  Result<void> Data(const void* data, std::size_t size) override {
    const char* bytes = static_cast<const char*>(data);
    filling_.items.push_back({Item::kData, {}, filling_.bytes.size(), size});
    filling_.bytes.insert(filling_.bytes.end(), bytes, bytes + size);
    return filling_.bytes.size() >= kBatchBytes ? Send() : Result<void>();
  }
  Result<void> End() override {
    filling_.items.push_back({Item::kEnd, {}, 0, 0});
    return filling_.items.size() >= kBatchItems ? Send() : Result<void>();
  }

  // Waits for the writer to drain the queue, then applies directory modes.
  Result<void> Close() override {
    if (auto sent = Send(); !sent) return sent;
    Finish();
    if (!healthy_) return std::unexpected(*first_error_);
    return disk_.Close();
  }

 private:
  static constexpr std::size_t kBatchBytes = 256 << 10;
  static constexpr std::size_t kBatchItems = 512;

  struct Item {
    enum Kind { kBegin, kData, kEnd } kind = kEnd;
    ManifestEntry entry;     // kBegin
    std::size_t offset = 0;  // kData: where in Batch::bytes
    std::size_t size = 0;
  };
  struct Batch {
    std::vector<Item> items;
    std::vector<char> bytes;
  };

  // Queues the batch being filled and takes a spare one to fill next.
  Result<void> Send() {
    if (filling_.items.empty()) return {};
    std::unique_lock lock(mutex_);
    space_.wait(lock, [&] { return queued_bytes_ < kWriteQueueBytes || !healthy_; });
    if (!healthy_) return std::unexpected(*first_error_);
    queued_bytes_ += filling_.bytes.size();
    const bool was_empty = queue_.empty();
    queue_.push_back(std::move(filling_));
    if (!spare_.empty()) {
      filling_ = std::move(spare_.back());
      spare_.pop_back();
    } else {
      filling_ = Batch();
    }
    if (was_empty) ready_.notify_one();
    return {};
  }

  Result<void> Write(const Batch& batch) {
    for (const Item& item : batch.items) {
      Result<void> done;
      switch (item.kind) {
        case Item::kBegin:
          done = disk_.Begin(item.entry);
          break;
        case Item::kData:
          done = disk_.Data(batch.bytes.data() + item.offset, item.size);
          break;
        case Item::kEnd:
          done = disk_.End();
          break;
      }
      if (!done) return done;
    }
    return {};
  }

  void WriteLoop() {
    while (true) {
      Batch batch;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;
        batch = std::move(queue_.front());
        queue_.pop_front();
      }
      Result<void> done = healthy_ ? Write(batch) : Result<void>();
      std::lock_guard lock(mutex_);
      queued_bytes_ -= batch.bytes.size();
      if (!done && healthy_) {
        healthy_ = false;
        first_error_ = done.error();
        queue_.clear();
        queued_bytes_ = 0;
      }
      batch.items.clear();
      batch.bytes.clear();  // keeps its capacity for the next batch
      if (spare_.size() < 2) spare_.push_back(std::move(batch));
      space_.notify_one();
    }
  }

  void Finish() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
      ready_.notify_all();
    }
    if (writer_.joinable()) writer_.join();
  }

  DiskSink disk_;
  Batch filling_;  // reading thread only
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable space_;
  std::deque<Batch> queue_;
  std::vector<Batch> spare_;  // emptied batches, their buffers kept
  std::size_t queued_bytes_ = 0;
  bool closing_ = false;
  bool healthy_ = true;  // no write has failed
  std::optional<Error> first_error_;
  std::thread writer_;  // last: starts after everything it uses exists
};

}  // namespace

std::unique_ptr<StagingSink> MakeStagingSink(fs::path root) {
  return std::make_unique<PipelinedDiskSink>(std::move(root));
}

}  // namespace fabu::packaging::reader
