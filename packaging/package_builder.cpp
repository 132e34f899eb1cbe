// Building a package: walk the source tree, write the compressed payload while
// hashing every file and the payload itself, sign the manifest, then write the
// outer tar (manifest.json, manifest.sig, payload) to a temp file and rename
// it into place.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "fmt/format.h"
#include "packaging/package.hpp"
#include "packaging/platform/libarchive.hpp"
#include "packaging/sha256.hpp"
#include "platform/fs/files.hpp"

namespace fabu::packaging {
namespace {

namespace fs = std::filesystem;
using platform::ArchiveEntry;
using platform::ArchiveErrorText;
using platform::ArchiveWriter;

constexpr std::size_t kChunk = 1 << 20;

using Fd = fabu::platform::UniqueFd;

// A file removed on scope exit unless released.
class TempFile {
 public:
  explicit TempFile(fs::path path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const fs::path& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  fs::path path_;
};

struct SourceEntry {
  std::string path;  // inside the package
  fs::path source;   // on disk
  EntryType type = EntryType::kFile;
  std::uint32_t mode = 0;
  std::string target;
};

// Collects the entries under `root`, placing them under `prefix` ("" or "hooks/").
Result<void> CollectTree(const fs::path& root, const std::string& prefix,
                         std::vector<SourceEntry>& out) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: not a directory", root.string()));
  }
  auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
  if (ec) {
    return Fail(ErrorCode::kIo, fmt::format("{}: cannot read: {}", root.string(), ec.message()));
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      return Fail(ErrorCode::kIo, fmt::format("{}: cannot read: {}", root.string(), ec.message()));
    }
    const fs::path& p = it->path();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      return Fail(ErrorCode::kIo, fmt::format("{}: {}", p.string(), std::strerror(errno)));
    }
    SourceEntry e;
    e.source = p;
    e.path = prefix + p.lexically_relative(root).generic_string();
    e.mode = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      e.type = EntryType::kDir;
      if (::access(p.c_str(), R_OK | X_OK) != 0) {
        return Fail(ErrorCode::kIo,
                    fmt::format("{}: cannot read directory: {}", p.string(), std::strerror(errno)));
      }
    } else if (S_ISREG(st.st_mode)) {
      e.type = EntryType::kFile;
      // A hard-linked source file is packed as an independent copy.
    } else if (S_ISLNK(st.st_mode)) {
      e.type = EntryType::kSymlink;
      std::error_code lec;
      e.target = fs::read_symlink(p, lec).string();
      if (lec) {
        return Fail(ErrorCode::kIo,
                    fmt::format("{}: cannot read link: {}", p.string(), lec.message()));
      }
      e.mode = 0777;
    } else {
      const char* kind = S_ISCHR(st.st_mode)    ? "a character device"
                         : S_ISBLK(st.st_mode)  ? "a block device"
                         : S_ISFIFO(st.st_mode) ? "a FIFO"
                         : S_ISSOCK(st.st_mode) ? "a socket"
                                                : "not a regular file";
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("{} is {}; packages hold only files, directories and symlinks",
                              p.string(), kind));
    }
    if (e.type != EntryType::kSymlink && (e.mode & 07000) != 0) {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("{} has setuid, setgid or sticky bits (mode {:04o}); refused",
                              p.string(), e.mode));
    }
    out.push_back(std::move(e));
  }
  return {};
}

// Hashes and counts the compressed payload as libarchive writes it.
struct PayloadSink {
  int fd = -1;
  Sha256 hash;
  std::uint64_t size = 0;
  int error = 0;
};

la_ssize_t PayloadWrite(archive*, void* client, const void* buffer, size_t length) {
  auto* sink = static_cast<PayloadSink*>(client);
  const char* data = static_cast<const char*>(buffer);
  std::size_t done = 0;
  while (done < length) {
    ssize_t n = ::write(sink->fd, data + done, length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      sink->error = errno;
      return -1;
    }
    done += static_cast<std::size_t>(n);
  }
  sink->hash.Update(buffer, length);
  sink->size += length;
  return static_cast<la_ssize_t>(length);
}

Result<void> WriteHeader(archive* a, const std::string& path, EntryType type, std::uint32_t mode,
                         std::uint64_t size, const std::string& target, std::int64_t mtime) {
  ArchiveEntry entry(archive_entry_new());
  archive_entry_set_pathname(entry.get(), path.c_str());
  archive_entry_set_mtime(entry.get(), mtime, 0);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  switch (type) {
    case EntryType::kFile:
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
      break;
    case EntryType::kDir:
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
      break;
    case EntryType::kSymlink:
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_symlink(entry.get(), target.c_str());
      break;
  }
  archive_entry_set_perm(entry.get(), mode);
  if (archive_write_header(a, entry.get()) != ARCHIVE_OK) {
    return Fail(ErrorCode::kIo, fmt::format("writing {}: {}", path, ArchiveErrorText(a)));
  }
  return {};
}

// Appends the regular file at `source` to `a`, returning its digest and size.
Result<std::pair<std::string, std::uint64_t>> WriteFileData(archive* a, const SourceEntry& e,
                                                            std::uint64_t expected_size,
                                                            std::vector<char>& buffer) {
  Sha256 hash;
  std::uint64_t total = 0;
  Fd fd(::open(e.source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("{}: cannot read: {}", e.source.string(), std::strerror(errno)));
  }
  while (true) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Fail(ErrorCode::kIo,
                  fmt::format("{}: cannot read: {}", e.source.string(), std::strerror(errno)));
    }
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (total > expected_size) {
      return Fail(ErrorCode::kIo,
                  fmt::format("{}: changed size while being packed", e.source.string()));
    }
    hash.Update(buffer.data(), static_cast<std::size_t>(n));
    if (archive_write_data(a, buffer.data(), static_cast<std::size_t>(n)) != n) {
      return Fail(ErrorCode::kIo, fmt::format("writing {}: {}", e.path, ArchiveErrorText(a)));
    }
  }
  if (total != expected_size) {
    return Fail(ErrorCode::kIo,
                fmt::format("{}: changed size while being packed", e.source.string()));
  }
  return std::make_pair(hash.FinishHex(), total);
}

}  // namespace

Result<BuildResult> BuildPackage(const BuildOptions& options, const SigningKey& key) {
  if (auto ok = CheckPackageName(options.name); !ok) return std::unexpected(ok.error());
  if (options.expires) {
    if (auto t = protocol::ParseRfc3339(*options.expires); !t) {
      return std::unexpected(t.error().WithContext("--expires"));
    }
  }
  const std::int64_t created =
      options.created.value_or(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());

  // 1. The entries: the application tree, then hooks/ from the hooks dir.
  std::vector<SourceEntry> entries;
  if (auto ok = CollectTree(options.from, "", entries); !ok) return std::unexpected(ok.error());
  std::map<std::string, std::string> hooks;
  if (options.hooks) {
    for (const auto& e : entries) {
      if (e.path == "hooks" || e.path.starts_with("hooks/")) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{} already has a hooks/ directory; pass hooks either there or "
                                "with --hooks, not both",
                                options.from.string()));
      }
    }
    entries.push_back(SourceEntry{"hooks", *options.hooks, EntryType::kDir, 0755, ""});
    std::vector<SourceEntry> hook_entries;
    if (auto ok = CollectTree(*options.hooks, "hooks/", hook_entries); !ok) {
      return std::unexpected(ok.error());
    }
    entries.insert(entries.end(), hook_entries.begin(), hook_entries.end());
  }
  std::sort(entries.begin(), entries.end(),
            [](const SourceEntry& a, const SourceEntry& b) { return a.path < b.path; });
  for (const auto& e : entries) {
    if (e.path.starts_with("hooks/") && e.path.find('/', 6) == std::string::npos) {
      const std::string hook = e.path.substr(6);
      bool known = false;
      for (auto n : kHookNames) known = known || n == hook;
      if (known) {
        if (e.type != EntryType::kFile || (e.mode & 0100) == 0) {
          return Fail(ErrorCode::kInvalidArgument,
                      fmt::format("hook {} must be an executable file (chmod +x {})", hook,
                                  e.source.string()));
        }
        hooks[hook] = e.path;
      }
    }
  }

  Manifest manifest;
  manifest.name = options.name;
  manifest.version = options.version;
  manifest.created = protocol::FormatRfc3339Utc(created);
  manifest.key_id = key.public_key().key_id();
  manifest.hooks = hooks;
  manifest.expires = options.expires;
  manifest.targets = options.targets;
  manifest.payload.compression = options.compression;
  manifest.payload.file =
      options.compression == Compression::kZstd ? "payload.tar.zst" : "payload.tar.gz";

  // Refuse links that leave the tree before writing a byte.
  for (const auto& e : entries) {
    if (e.type != EntryType::kSymlink) continue;
    const bool inside = SymlinkStaysInside(e.path, e.target);
    if (!inside) {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("{} is a link to \"{}\", which leaves {}; refused", e.source.string(),
                              e.target, options.from.string()));
    }
  }
  // Then the links together, resolved through each other as they will be
  // once extracted: a chain that climbs out is refused here too.
  {
    std::vector<ManifestEntry> tree;
    tree.reserve(entries.size());
    for (const auto& e : entries) {
      ManifestEntry m;
      m.path = e.path;
      m.type = e.type;
      m.target = e.target;
      tree.push_back(std::move(m));
    }
    if (auto ok = CheckSymlinkTree(tree); !ok) {
      return std::unexpected(ok.error().WithContext(options.from.string()));
    }
  }

  // 2. The payload, into a temp file beside the output.
  const fs::path out_dir = options.out.has_parent_path() ? options.out.parent_path() : ".";
  std::string payload_template = (out_dir / ".fabu-payload-XXXXXX").string();
  int raw_fd = ::mkstemp(payload_template.data());
  if (raw_fd < 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create a temp file in {}: {}", out_dir.string(),
                                            std::strerror(errno)));
  }
  Fd payload_fd(raw_fd);
  TempFile payload_file(payload_template);

  PayloadSink sink;
  sink.fd = payload_fd.get();
  std::vector<char> buffer(kChunk);
  {
    ArchiveWriter a(archive_write_new());
    archive_write_set_format_pax_restricted(a.get());
    if (options.compression == Compression::kZstd) {
      archive_write_add_filter_zstd(a.get());
    } else {
      archive_write_add_filter_gzip(a.get());
      // Reproducible: no name or time in the gzip header.
      archive_write_set_filter_option(a.get(), "gzip", "timestamp", nullptr);
    }
    archive_write_set_bytes_per_block(a.get(), 64 * 1024);
    archive_write_set_bytes_in_last_block(a.get(), 1);
    if (archive_write_open2(a.get(), &sink, nullptr, PayloadWrite, nullptr, nullptr) !=
        ARCHIVE_OK) {
      return Fail(ErrorCode::kIo, "cannot start the payload: " + ArchiveErrorText(a.get()));
    }
    for (const auto& e : entries) {
      ManifestEntry m{e.path, e.type, e.mode, 0, "", e.target};
      if (e.type == EntryType::kFile) {
        std::error_code ec;
        m.size = fs::file_size(e.source, ec);
        if (ec) {
          return Fail(ErrorCode::kIo, fmt::format("{}: {}", e.source.string(), ec.message()));
        }
      }
      if (auto ok = WriteHeader(a.get(), e.path, e.type, e.mode, m.size, e.target, created); !ok) {
        return std::unexpected(ok.error());
      }
      if (e.type == EntryType::kFile) {
        auto digest = WriteFileData(a.get(), e, m.size, buffer);
        if (!digest) return std::unexpected(digest.error());
        m.sha256 = digest->first;
      }
      manifest.files.push_back(std::move(m));
    }
    if (archive_write_close(a.get()) != ARCHIVE_OK) {
      return Fail(ErrorCode::kIo,
                  fmt::format("cannot finish the payload: {}{}", ArchiveErrorText(a.get()),
                              sink.error ? std::string(": ") + std::strerror(sink.error) : ""));
    }
  }
  manifest.payload.size = sink.size;
  manifest.payload.sha256 = sink.hash.FinishHex();

  // 3. Sign the exact manifest bytes.
  const std::string manifest_json = manifest.ToJson();
  if (manifest_json.size() > kMaxManifestBytes) {
    return Fail(ErrorCode::kTooLarge,
                fmt::format("the manifest would be {} bytes (limit {}): too many files",
                            manifest_json.size(), kMaxManifestBytes));
  }
  auto signature = key.Sign(manifest_json);
  if (!signature) return std::unexpected(signature.error());

  // 4. The outer tar, into a temp file, then renamed over `out`.
  std::string out_template = (out_dir / ".fabu-package-XXXXXX").string();
  raw_fd = fabu::platform::CurrentFileSystem().MakeTemp(out_template.data(), O_CLOEXEC);
  if (raw_fd < 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create a temp file in {}: {}", out_dir.string(),
                                            std::strerror(errno)));
  }
  Fd out_fd(raw_fd);
  TempFile out_file(out_template);
  {
    ArchiveWriter a(archive_write_new());
    archive_write_set_format_ustar(a.get());
    archive_write_set_bytes_per_block(a.get(), 10240);
    if (archive_write_open_fd(a.get(), out_fd.get()) != ARCHIVE_OK) {
      return Fail(ErrorCode::kIo, "cannot start the package: " + ArchiveErrorText(a.get()));
    }
    auto ok = WriteHeader(a.get(), "manifest.json", EntryType::kFile, 0644, manifest_json.size(),
                          "", created);
    if (!ok) return std::unexpected(ok.error());
    archive_write_data(a.get(), manifest_json.data(), manifest_json.size());
    ok = WriteHeader(a.get(), "manifest.sig", EntryType::kFile, 0644, signature->size(), "",
                     created);
    if (!ok) return std::unexpected(ok.error());
    archive_write_data(a.get(), signature->data(), signature->size());
    ok =
        WriteHeader(a.get(), manifest.payload.file, EntryType::kFile, 0644, sink.size, "", created);
    if (!ok) return std::unexpected(ok.error());
    if (::lseek(payload_fd.get(), 0, SEEK_SET) != 0) {
      return Fail(ErrorCode::kIo, "cannot rewind the payload temp file");
    }
    std::uint64_t copied = 0;
    while (copied < sink.size) {
      ssize_t n = ::read(payload_fd.get(), buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail(ErrorCode::kIo, "cannot read back the payload temp file");
      if (archive_write_data(a.get(), buffer.data(), static_cast<std::size_t>(n)) != n) {
        return Fail(ErrorCode::kIo, "writing the package: " + ArchiveErrorText(a.get()));
      }
      copied += static_cast<std::uint64_t>(n);
    }
    if (archive_write_close(a.get()) != ARCHIVE_OK) {
      return Fail(ErrorCode::kIo, "cannot finish the package: " + ArchiveErrorText(a.get()));
    }
  }
  if (fabu::platform::CurrentFileSystem().Fsync(out_fd.get()) != 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot sync {}: {}", out_template, std::strerror(errno)));
  }
  ::fchmod(out_fd.get(), 0644);
  if (fabu::platform::CurrentFileSystem().Rename(out_template.c_str(), options.out.c_str()) != 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot write {}: {}", options.out.string(), std::strerror(errno)));
  }
  out_file.Release();
  if (auto ok = fabu::platform::SyncDirectory(out_dir); !ok) return std::unexpected(ok.error());

  BuildResult result;
  result.manifest = std::move(manifest);
  result.path = options.out;
  std::error_code ec;
  result.size = fs::file_size(options.out, ec);
  return result;
}

}  // namespace fabu::packaging
