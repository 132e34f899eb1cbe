// Reading a package: one streaming pass over the file.
//
//   file bytes --(hashed: package id)--> outer tar reader
//     manifest.json (<= 1 MiB) and manifest.sig: signature checked here,
//     before any payload byte is parsed
//     payload --(hashed, counted, bounded)--> inner tar reader (gzip|zstd)
//       each entry checked against the signed manifest, its data hashed and
//       bounded by the declared size, then handed to a sink (none, or disk)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fmt/format.h"
#include "packaging/growing_file.hpp"
#include "packaging/package.hpp"
#include "packaging/platform/libarchive.hpp"
#include "packaging/platform/open_beneath.hpp"
#include "packaging/sha256.hpp"
#include "platform/fs/files.hpp"

namespace fabu::packaging {
namespace {

namespace fs = std::filesystem;
using platform::ArchiveEntry;
using platform::ArchiveErrorText;
using platform::ArchiveReader;

constexpr std::size_t kReadChunk = 256 << 10;
// Bytes of file data queued between the reading and the writing thread.
constexpr std::size_t kWriteQueueBytes = 1 << 20;

// The package file, hashed as libarchive pulls it. A growing file (a
// download still running) is read up to its end as its writer declares it.
struct FileSource {
  int fd = -1;
  bool owns_fd = true;  // false: VerifyOptions::fd, the caller's
  bool hashing = true;  // VerifyOptions::file_digest
  Sha256 hash;
  std::uint64_t size = 0;
  std::vector<char> buffer = std::vector<char>(kReadChunk);
  GrowingFile* growing = nullptr;  // VerifyOptions::growing
  std::string growing_error;       // why a growing file ended early

  // The next bytes into `buffer`, hashed and counted: their number, 0 at the
  // end of the file, -1 on an error (errno, or `growing_error`).
  ssize_t Next() {
    bool waited = false;
    while (true) {
      // pread from our own offset: a caller's descriptor may be read again.
      const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(size));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -1;
      if (n == 0 && growing != nullptr) {
        // Caught up with the writer: wait for more, or for the end.
        if (waited) {
          // The writer said there is more, yet this file has no more: it is
          // no longer the file being written (a download that started over).
          growing_error = "the file was replaced while it was being read";
          return -1;
        }
        auto more = growing->WaitBeyond(size);
        if (!more) {
          growing_error = more.error().message();
          return -1;
        }
        if (*more) {
          waited = true;
          continue;
        }
      }
      if (hashing) hash.Update(buffer.data(), static_cast<std::size_t>(n));
      size += static_cast<std::uint64_t>(n);
      return n;
    }
  }

  // Reads and hashes whatever libarchive did not, so the digest covers the file.
  Result<void> Drain() {
    if (!hashing && growing == nullptr) {
      struct stat st {};
      if (::fstat(fd, &st) == 0) size = static_cast<std::uint64_t>(st.st_size);
      return {};
    }
    while (true) {
      const ssize_t n = Next();
      if (n < 0 && !growing_error.empty()) return Fail(ErrorCode::kUnavailable, growing_error);
      if (n < 0) return Fail(ErrorCode::kIo, std::string("read: ") + std::strerror(errno));
      if (n == 0) return {};
    }
  }
};

la_ssize_t FileRead(archive*, void* client, const void** out) {
  auto* src = static_cast<FileSource*>(client);
  const ssize_t n = src->Next();
  *out = src->buffer.data();
  return n;
}

// The payload member, pulled from the outer tar, hashed and bounded by the
// size the manifest declares.
struct PayloadSource {
  archive* outer = nullptr;
  Sha256 hash;
  std::uint64_t size = 0;
  std::uint64_t limit = 0;
  bool over_limit = false;
  std::string error;

  // Reads the rest of the payload member (what decompression did not need).
  Result<void> Drain() {
    const void* block = nullptr;
    std::size_t len = 0;
    la_int64_t offset = 0;
    while (true) {
      int r = archive_read_data_block(outer, &block, &len, &offset);
      if (r == ARCHIVE_EOF) return {};
      if (r != ARCHIVE_OK) {
        return Fail(ErrorCode::kIntegrity,
                    "package is truncated or corrupt: " + ArchiveErrorText(outer));
      }
      hash.Update(block, len);
      size += len;
      if (size > limit) {
        over_limit = true;
        return {};
      }
    }
  }
};

la_ssize_t PayloadRead(archive*, void* client, const void** out) {
  auto* src = static_cast<PayloadSource*>(client);
  const void* block = nullptr;
  std::size_t len = 0;
  la_int64_t offset = 0;
  int r = archive_read_data_block(src->outer, &block, &len, &offset);
  if (r == ARCHIVE_EOF) return 0;
  if (r != ARCHIVE_OK) {
    src->error = ArchiveErrorText(src->outer);
    return -1;
  }
  src->hash.Update(block, len);
  src->size += len;
  if (src->size > src->limit) {
    src->over_limit = true;
    return -1;
  }
  *out = block;
  return static_cast<la_ssize_t>(len);
}

// Where checked entries go.
class EntrySink {
 public:
  virtual ~EntrySink() = default;
  virtual Result<void> Begin(const ManifestEntry& entry) = 0;
  virtual Result<void> Data(const void* data, std::size_t size) = 0;
  virtual Result<void> End() = 0;
};

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
class PipelinedDiskSink : public EntrySink {
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
  Result<void> Close() {
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

Error Integrity(std::string message) { return Error(ErrorCode::kIntegrity, std::move(message)); }

std::int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Reads the next outer member's header; `what` says which member we expect.
Result<archive_entry*> NextMember(archive* outer, std::string_view what) {
  archive_entry* entry = nullptr;
  int r = archive_read_next_header(outer, &entry);
  if (r == ARCHIVE_EOF) {
    return std::unexpected(Integrity(fmt::format("{} is missing: the package ends early", what)));
  }
  if (r != ARCHIVE_OK) {
    return std::unexpected(
        Integrity(fmt::format("package is truncated or not a fabu package (reading {}): {}", what,
                              ArchiveErrorText(outer))));
  }
  return entry;
}

Result<std::string> ReadMemberData(archive* outer, std::size_t size, std::string_view name) {
  std::string data(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    la_ssize_t n = archive_read_data(outer, data.data() + done, size - done);
    if (n < 0) {
      return std::unexpected(Integrity(
          fmt::format("{}: package is truncated or corrupt: {}", name, ArchiveErrorText(outer))));
    }
    if (n == 0) {
      return std::unexpected(Integrity(fmt::format("{}: package is truncated", name)));
    }
    done += static_cast<std::size_t>(n);
  }
  return data;
}

struct Header {
  std::string manifest_json;
  Signature signature{};
};

// Reads manifest.json and manifest.sig, the first two members, in order.
Result<Header> ReadHeaderMembers(archive* outer) {
  Header h;
  auto first = NextMember(outer, "manifest.json");
  if (!first) return std::unexpected(first.error());
  const std::string first_name =
      archive_entry_pathname(*first) ? archive_entry_pathname(*first) : "";
  if (first_name != "manifest.json") {
    return std::unexpected(Integrity(
        fmt::format("order: the first member must be manifest.json, found \"{}\"", first_name)));
  }
  if (archive_entry_filetype(*first) != AE_IFREG) {
    return std::unexpected(Integrity("manifest.json is not a regular file"));
  }
  const la_int64_t manifest_size = archive_entry_size(*first);
  if (manifest_size < 0 || static_cast<std::uint64_t>(manifest_size) > kMaxManifestBytes) {
    return Fail(ErrorCode::kTooLarge,
                fmt::format("manifest.json is {} bytes; refused unread (the limit is {} bytes)",
                            manifest_size, kMaxManifestBytes));
  }
  auto json = ReadMemberData(outer, static_cast<std::size_t>(manifest_size), "manifest.json");
  if (!json) return std::unexpected(json.error());
  h.manifest_json = std::move(*json);

  auto second = NextMember(outer, "manifest.sig");
  if (!second) return std::unexpected(second.error());
  const std::string second_name =
      archive_entry_pathname(*second) ? archive_entry_pathname(*second) : "";
  if (second_name != "manifest.sig") {
    return std::unexpected(Integrity(
        fmt::format("manifest.sig is missing: the second member must be manifest.sig, found \"{}\"",
                    second_name)));
  }
  if (archive_entry_filetype(*second) != AE_IFREG ||
      archive_entry_size(*second) != static_cast<la_int64_t>(h.signature.size())) {
    return std::unexpected(
        Integrity(fmt::format("manifest.sig must be a {}-byte Ed25519 signature, it is {} bytes",
                              h.signature.size(), archive_entry_size(*second))));
  }
  auto sig = ReadMemberData(outer, h.signature.size(), "manifest.sig");
  if (!sig) return std::unexpected(sig.error());
  std::memcpy(h.signature.data(), sig->data(), h.signature.size());
  return h;
}

// Checks the signature, then parses the manifest it covers.
Result<Manifest> CheckSignature(const Header& h, const TrustStore& trust) {
  if (trust.empty()) {
    return Fail(ErrorCode::kFailedPrecondition,
                "no trusted publisher keys given: pass --trust KEY.pub");
  }
  const PublicKey* signer = nullptr;
  for (const auto& key : trust.keys()) {
    if (key.Verify(h.manifest_json, h.signature)) {
      signer = &key;
      break;
    }
  }
  if (signer == nullptr) {
    // Tell an unknown key from a broken signature; the manifest is read only
    // to name the key, never trusted.
    auto unverified = Manifest::Parse(h.manifest_json);
    if (unverified && trust.Find(unverified->key_id) == nullptr) {
      return std::unexpected(Integrity(fmt::format(
          "signature: unknown key {}: the package is signed by a key that is not trusted "
          "(trusted: {} key{})",
          unverified->key_id, trust.keys().size(), trust.keys().size() == 1 ? "" : "s")));
    }
    return std::unexpected(
        Integrity("signature: manifest.sig does not match manifest.json (tampered or corrupt)"));
  }
  auto manifest = Manifest::Parse(h.manifest_json);
  if (!manifest) return std::unexpected(manifest.error().WithContext("manifest.json"));
  if (manifest->key_id != signer->key_id()) {
    return std::unexpected(Integrity(fmt::format(
        "manifest.json names key {} but is signed by key {}", manifest->key_id, signer->key_id())));
  }
  return manifest;
}

const char* FileTypeName(mode_t type) {
  switch (type) {
    case AE_IFREG:
      return "file";
    case AE_IFDIR:
      return "dir";
    case AE_IFLNK:
      return "symlink";
    case AE_IFCHR:
      return "character device";
    case AE_IFBLK:
      return "block device";
    case AE_IFIFO:
      return "FIFO";
    case AE_IFSOCK:
      return "socket";
    default:
      return "unknown type";
  }
}

mode_t ExpectedFileType(EntryType t) {
  switch (t) {
    case EntryType::kFile:
      return AE_IFREG;
    case EntryType::kDir:
      return AE_IFDIR;
    case EntryType::kSymlink:
      return AE_IFLNK;
  }
  return AE_IFREG;
}

// Walks the inner tar and checks every entry against the manifest.
Result<void> CheckPayloadEntries(archive* inner, const Manifest& manifest, EntrySink* sink) {
  std::unordered_map<std::string, const ManifestEntry*> expected;
  std::set<std::string> symlinks;
  for (const auto& e : manifest.files) {
    expected[e.path] = &e;
    if (e.type == EntryType::kSymlink) symlinks.insert(e.path);
  }
  std::set<std::string> seen;
  const std::uint64_t byte_budget = manifest.TotalFileBytes();
  std::uint64_t bytes = 0;

  while (true) {
    archive_entry* ae = nullptr;
    int r = archive_read_next_header(inner, &ae);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      return std::unexpected(Integrity("payload is corrupt: " + ArchiveErrorText(inner)));
    }
    const char* raw_name = archive_entry_pathname(ae);
    const std::string name = raw_name ? raw_name : "";
    auto path = NormalizeEntryPath(name);
    if (!path) return std::unexpected(path.error().WithContext("payload"));
    if (archive_entry_hardlink(ae) != nullptr) {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("payload: \"{}\" is a hard link; refused", *path));
    }
    const mode_t type = archive_entry_filetype(ae);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("payload: \"{}\" is a {}; refused", *path, FileTypeName(type)));
    }
    if ((archive_entry_mode(ae) & 07000) != 0 && type != AE_IFLNK) {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("payload: \"{}\" has setuid, setgid or sticky bits; refused", *path));
    }
    if (!seen.insert(*path).second) {
      return Fail(ErrorCode::kUnsafe, fmt::format("payload: \"{}\" appears twice; refused", *path));
    }
    for (std::size_t slash = path->find('/'); slash != std::string::npos;
         slash = path->find('/', slash + 1)) {
      if (symlinks.contains(path->substr(0, slash))) {
        return Fail(ErrorCode::kUnsafe,
                    fmt::format("payload: \"{}\" lies beneath the symlink \"{}\"; refused", *path,
                                path->substr(0, slash)));
      }
    }
    auto it = expected.find(*path);
    if (it == expected.end()) {
      return std::unexpected(
          Integrity(fmt::format("file list: payload entry \"{}\" is not in the manifest", *path)));
    }
    if (seen.size() > manifest.files.size()) {
      return std::unexpected(Integrity("payload holds more entries than the manifest lists"));
    }
    const ManifestEntry& want = *it->second;
    if (type != ExpectedFileType(want.type)) {
      return std::unexpected(Integrity(
          fmt::format("file list: \"{}\" is a {} in the payload but a {} in the manifest", *path,
                      FileTypeName(type), FileTypeName(ExpectedFileType(want.type)))));
    }
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(ae);
      if (target == nullptr || want.target != target) {
        return Fail(ErrorCode::kUnsafe,
                    fmt::format("payload: symlink \"{}\" -> \"{}\" differs from the manifest's "
                                "\"{}\"",
                                *path, target ? target : "", want.target));
      }
    } else if ((archive_entry_perm(ae) & 0777) != want.mode) {
      return std::unexpected(
          Integrity(fmt::format("file list: \"{}\" has mode {:04o} but the manifest says {:04o}",
                                *path, archive_entry_perm(ae) & 0777, want.mode)));
    }
    if (type == AE_IFREG) {
      if (!archive_entry_size_is_set(ae) ||
          archive_entry_size(ae) != static_cast<la_int64_t>(want.size)) {
        return std::unexpected(
            Integrity(fmt::format("size: \"{}\" is {} bytes in the payload but {} in the manifest",
                                  *path, archive_entry_size(ae), want.size)));
      }
    }
    if (sink) {
      if (auto ok = sink->Begin(want); !ok) return ok;
    }
    if (type == AE_IFREG) {
      Sha256 hash;
      std::uint64_t got = 0;
      while (true) {
        // Straight from the decompressor's buffer: no copy.
        const void* block = nullptr;
        std::size_t n = 0;
        la_int64_t offset = 0;
        const int status = archive_read_data_block(inner, &block, &n, &offset);
        if (status == ARCHIVE_EOF) break;
        if (status != ARCHIVE_OK) {
          return std::unexpected(Integrity(
              fmt::format("payload is corrupt in \"{}\": {}", *path, ArchiveErrorText(inner))));
        }
        if (offset != static_cast<la_int64_t>(got)) {
          return std::unexpected(Integrity(
              fmt::format("payload: \"{}\" is stored sparse; a package holds plain files", *path)));
        }
        got += static_cast<std::uint64_t>(n);
        bytes += static_cast<std::uint64_t>(n);
        if (got > want.size || bytes > byte_budget) {
          return std::unexpected(Integrity(
              fmt::format("size: \"{}\" holds more than the {} bytes the manifest declares", *path,
                          want.size)));
        }
        hash.Update(block, n);
        if (sink) {
          if (auto ok = sink->Data(block, n); !ok) return ok;
        }
      }
      if (got != want.size) {
        return std::unexpected(Integrity(fmt::format(
            "size: \"{}\" is {} bytes but the manifest declares {}", *path, got, want.size)));
      }
      if (hash.FinishHex() != want.sha256) {
        return std::unexpected(Integrity(
            fmt::format("digest: \"{}\" does not match its SHA-256 in the manifest", *path)));
      }
    }
    if (sink) {
      if (auto ok = sink->End(); !ok) return ok;
    }
  }
  for (const auto& e : manifest.files) {
    if (!seen.contains(e.path)) {
      return std::unexpected(Integrity(fmt::format(
          "file list: \"{}\" is in the manifest but missing from the payload", e.path)));
    }
  }
  return {};
}

// The package file opened for one sequential read: every byte is hashed as
// libarchive pulls it (the package id), under the outer tar reader.
// Not movable: libarchive holds the address of `source`.
struct OpenedPackage {
  FileSource source;
  ArchiveReader outer;

  OpenedPackage() = default;
  OpenedPackage(const OpenedPackage&) = delete;
  OpenedPackage& operator=(const OpenedPackage&) = delete;
  ~OpenedPackage() {
    outer.reset();
    if (source.fd >= 0 && source.owns_fd) ::close(source.fd);
  }

  // Hashes what libarchive did not read and returns the signed header and
  // the package's id and size.
  Result<VerifiedPackage> Finish(Manifest manifest, std::string manifest_json) {
    if (auto drained = source.Drain(); !drained) return std::unexpected(drained.error());
    VerifiedPackage verified;
    verified.manifest = std::move(manifest);
    verified.manifest_json = std::move(manifest_json);
    if (source.hashing) verified.package_sha256 = source.hash.FinishHex();
    verified.package_size = source.size;
    return verified;
  }
};

// A growing file that ended early fails every read after it: its writer's
// reason is the cause to report, not the truncation the readers saw.
template <typename T>
Result<T> GrowingFileFirst(Result<T> result, const FileSource& source) {
  if (!result && !source.growing_error.empty()) {
    return Fail(ErrorCode::kUnavailable,
                fmt::format("the package ended before it was whole: {}", source.growing_error));
  }
  return result;
}

// Opens `file` for reading as a package. Errors carry no file name; callers add it.
Result<std::unique_ptr<OpenedPackage>> OpenPackage(const fs::path& file,
                                                   const VerifyOptions& options = {}) {
  auto opened = std::make_unique<OpenedPackage>();
  opened->source.hashing = options.file_digest;
  opened->source.growing = options.growing;
  if (options.fd >= 0) {
    opened->source.fd = options.fd;
    opened->source.owns_fd = false;
  } else {
    opened->source.fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (opened->source.fd < 0) {
    return Fail(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                fmt::format("cannot open: {}", std::strerror(errno)));
  }
  ::posix_fadvise(opened->source.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  opened->outer.reset(archive_read_new());
  archive_read_support_format_tar(opened->outer.get());
  if (archive_read_open(opened->outer.get(), &opened->source, nullptr, FileRead, nullptr) !=
      ARCHIVE_OK) {
    return GrowingFileFirst<std::unique_ptr<OpenedPackage>>(
        std::unexpected(Integrity("not a fabu package (not a tar file): " +
                                  ArchiveErrorText(opened->outer.get()))),
        opened->source);
  }
  return opened;
}

struct SignedHeader {
  Header header;
  Manifest manifest;
};

// Reads manifest.json and manifest.sig, checks the signature by a trusted key
// before anything else is read, then the expiry.
Result<SignedHeader> ReadSignedHeader(archive* outer, const TrustStore& trust,
                                      const VerifyOptions& options) {
  auto header = ReadHeaderMembers(outer);
  if (!header) return std::unexpected(header.error());
  auto manifest = CheckSignature(*header, trust);
  if (!manifest) return std::unexpected(manifest.error());
  if (manifest->expires) {
    auto expires = protocol::ParseRfc3339(*manifest->expires);
    const std::int64_t now = options.now.value_or(NowSeconds());
    if (expires && now > expires->seconds) {
      return Fail(ErrorCode::kExpired,
                  fmt::format("expiry: the package expired at {}", *manifest->expires));
    }
  }
  return SignedHeader{std::move(*header), std::move(*manifest)};
}

// The whole read of an opened package; `sink` receives every checked entry
// (nullptr: verify only).
Result<VerifiedPackage> ReadOpenedPackage(OpenedPackage& opened, const TrustStore& trust,
                                          const VerifyOptions& options, EntrySink* sink) {
  archive* outer = opened.outer.get();

  // 1. Manifest and signature, checked before the payload is touched.
  auto signed_header = ReadSignedHeader(outer, trust, options);
  if (!signed_header) return std::unexpected(signed_header.error());
  Header* header = &signed_header->header;
  Manifest* manifest = &signed_header->manifest;

  // 2. The payload member.
  auto payload_member = NextMember(outer, manifest->payload.file);
  if (!payload_member) return std::unexpected(payload_member.error());
  const std::string payload_name =
      archive_entry_pathname(*payload_member) ? archive_entry_pathname(*payload_member) : "";
  if (payload_name != manifest->payload.file) {
    return std::unexpected(Integrity(fmt::format("order: the third member must be {}, found \"{}\"",
                                                 manifest->payload.file, payload_name)));
  }
  if (archive_entry_size(*payload_member) != static_cast<la_int64_t>(manifest->payload.size)) {
    return std::unexpected(Integrity(
        fmt::format("payload size: {} is {} bytes but the manifest declares {}", payload_name,
                    archive_entry_size(*payload_member), manifest->payload.size)));
  }

  PayloadSource payload;
  payload.outer = outer;
  payload.limit = manifest->payload.size;
  Result<void> entries;
  {
    ArchiveReader inner(archive_read_new());
    archive_read_support_format_tar(inner.get());
    if (manifest->payload.compression == Compression::kZstd) {
      archive_read_support_filter_zstd(inner.get());
    } else {
      archive_read_support_filter_gzip(inner.get());
    }
    if (archive_read_open(inner.get(), &payload, nullptr, PayloadRead, nullptr) != ARCHIVE_OK) {
      entries = std::unexpected(Integrity("payload is corrupt: " + ArchiveErrorText(inner.get())));
    } else {
      entries = CheckPayloadEntries(inner.get(), *manifest, sink);
      if (entries &&
          archive_filter_code(inner.get(), 0) !=
              (manifest->payload.compression == Compression::kZstd ? ARCHIVE_FILTER_ZSTD
                                                                   : ARCHIVE_FILTER_GZIP)) {
        entries = std::unexpected(
            Integrity(fmt::format("payload is not {}-compressed as the manifest says",
                                  CompressionName(manifest->payload.compression))));
      }
    }
  }
  // 3. The payload digest covers every byte of the member, read or not. A
  // mismatch is the root cause of any entry error, so it is reported first.
  if (auto drained = payload.Drain(); !drained) return std::unexpected(drained.error());
  if (payload.over_limit || payload.size != manifest->payload.size ||
      payload.hash.FinishHex() != manifest->payload.sha256) {
    return std::unexpected(Integrity(fmt::format(
        "payload digest: {} does not match the SHA-256 in the signed manifest (tampered or "
        "corrupt)",
        payload_name)));
  }
  if (!entries) return std::unexpected(entries.error());

  // 4. Nothing may follow the payload.
  archive_entry* extra = nullptr;
  int r = archive_read_next_header(outer, &extra);
  if (r == ARCHIVE_OK) {
    return std::unexpected(
        Integrity(fmt::format("order: unexpected member \"{}\" after the payload",
                              archive_entry_pathname(extra) ? archive_entry_pathname(extra) : "")));
  }
  if (r != ARCHIVE_EOF) {
    return std::unexpected(
        Integrity("package is truncated or corrupt after the payload: " + ArchiveErrorText(outer)));
  }
  return opened.Finish(std::move(*manifest), std::move(header->manifest_json));
}

Result<VerifiedPackage> ReadPackage(const fs::path& file, const TrustStore& trust,
                                    const VerifyOptions& options, EntrySink* sink) {
  auto opened = OpenPackage(file, options);
  if (!opened) return std::unexpected(opened.error());
  return GrowingFileFirst(ReadOpenedPackage(**opened, trust, options, sink), (*opened)->source);
}

}  // namespace

Result<VerifiedPackage> VerifyPackage(const fs::path& file, const TrustStore& trust,
                                      const VerifyOptions& options) {
  return WithContext(ReadPackage(file, trust, options, nullptr), file.string());
}

Result<VerifiedPackage> ExtractPackage(const fs::path& file, const TrustStore& trust,
                                       const fs::path& dest, const VerifyOptions& options) {
  std::error_code ec;
  const fs::path target = fs::absolute(dest, ec).lexically_normal();
  if (target.filename().empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: not a directory name", dest.string()));
  }
  bool existed = false;
  if (fs::exists(fs::symlink_status(target, ec))) {
    if (!fs::is_directory(fs::symlink_status(target, ec)) || !fs::is_empty(target, ec)) {
      return Fail(ErrorCode::kAlreadyExists,
                  fmt::format("{} exists and is not an empty directory; refusing to extract "
                              "over it",
                              dest.string()));
    }
    existed = true;
  }
  const fs::path parent = target.parent_path();
  fs::create_directories(parent, ec);
  if (ec) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create {}: {}", parent.string(), ec.message()));
  }
  std::string staging_template =
      (parent / fmt::format(".{}.fabu-staging-XXXXXX", target.filename().string())).string();
  if (::mkdtemp(staging_template.data()) == nullptr) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create a staging directory in {}: {}",
                                            parent.string(), std::strerror(errno)));
  }
  const fs::path staging = staging_template;
  auto cleanup = [&] {
    std::error_code ignored;
    // Read-only directories from the payload must not stop the clean-up.
    for (auto it = fs::recursive_directory_iterator(staging, ignored);
         !ignored && it != fs::recursive_directory_iterator(); it.increment(ignored)) {
      if (it->is_directory(ignored) && !it->is_symlink(ignored)) {
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ignored);
      }
    }
    fs::remove_all(staging, ignored);
  };

  Result<VerifiedPackage> result;
  {
    PipelinedDiskSink sink(staging);
    result = ReadPackage(file, trust, options, &sink);
    if (options.remove_file_when_read) {
      // Read to the end (or refused): nothing reads it again. The writer may
      // still be busy; the sync below must not pay for the package's pages.
      ::unlink(file.c_str());
    }
    if (result) {
      if (auto closed = sink.Close(); !closed) result = std::unexpected(closed.error());
    }
  }
  if (result && options.durable) {
    // One syncfs flushes every extracted file before the tree becomes visible.
    if (auto synced = fabu::platform::SyncFileSystemOf(staging); !synced) {
      result = std::unexpected(synced.error());
    }
  }
  if (result) {
    ::chmod(staging.c_str(), 0755);
    if (existed && ::rmdir(target.c_str()) != 0) {
      result = Fail(ErrorCode::kIo,
                    fmt::format("cannot replace {}: {}", dest.string(), std::strerror(errno)));
    } else if (fabu::platform::CurrentFileSystem().Rename(staging.c_str(), target.c_str()) != 0) {
      result = Fail(ErrorCode::kIo, fmt::format("cannot move the tree into {}: {}", dest.string(),
                                                std::strerror(errno)));
    } else if (options.durable) {
      if (auto synced = fabu::platform::SyncDirectory(parent); !synced)
        result = std::unexpected(synced.error());
    }
  }
  if (!result) {
    cleanup();
    return std::unexpected(result.error().WithContext(file.string()));
  }
  return result;
}

namespace {

// The package opened, its signed header read and checked; errors name `file`.
struct OpenedHeader {
  std::unique_ptr<OpenedPackage> opened;
  SignedHeader header;
};

Result<OpenedHeader> OpenSignedHeader(const fs::path& file, const TrustStore& trust,
                                      const VerifyOptions& options) {
  auto opened = OpenPackage(file, options);
  if (!opened) return std::unexpected(opened.error().WithContext(file.string()));
  auto signed_header =
      GrowingFileFirst(ReadSignedHeader((*opened)->outer.get(), trust, options), (*opened)->source);
  if (!signed_header) return std::unexpected(signed_header.error().WithContext(file.string()));
  return OpenedHeader{std::move(*opened), std::move(*signed_header)};
}

}  // namespace

Result<VerifiedPackage> VerifySignatureAndDigest(const fs::path& file, const TrustStore& trust,
                                                 const VerifyOptions& options) {
  auto read = OpenSignedHeader(file, trust, options);
  if (!read) return std::unexpected(read.error());
  // The rest of the file is hashed, not parsed: the package id.
  return WithContext(read->opened->Finish(std::move(read->header.manifest),
                                          std::move(read->header.header.manifest_json)),
                     file.string());
}

Result<VerifiedPackage> VerifySignature(const fs::path& file, const TrustStore& trust,
                                        const VerifyOptions& options) {
  auto read = OpenSignedHeader(file, trust, options);
  if (!read) return std::unexpected(read.error());
  VerifiedPackage verified;
  verified.manifest = std::move(read->header.manifest);
  verified.manifest_json = std::move(read->header.header.manifest_json);
  struct stat st {};
  if (::fstat(read->opened->source.fd, &st) == 0) {
    verified.package_size = static_cast<std::uint64_t>(st.st_size);
  }
  return verified;
}

Result<Manifest> ReadManifestUnverified(const fs::path& file, std::string* manifest_json) {
  auto opened = OpenPackage(file);
  if (!opened) return std::unexpected(opened.error().WithContext(file.string()));
  auto header = ReadHeaderMembers((*opened)->outer.get());
  if (!header) return std::unexpected(header.error().WithContext(file.string()));
  auto manifest = Manifest::Parse(header->manifest_json);
  if (!manifest) {
    return std::unexpected(manifest.error().WithContext(file.string() + ": manifest.json"));
  }
  if (manifest_json) *manifest_json = std::move(header->manifest_json);
  return manifest;
}

}  // namespace fabu::packaging
