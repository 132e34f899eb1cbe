// Reading a package: one streaming pass over the file.
//
//   file bytes --(hashed: package id)--> outer tar reader   (reader/sources)
//     manifest.json (<= 1 MiB) and manifest.sig: signature checked here,
//     before any payload byte is parsed                     (reader/checks)
//     payload --(hashed, counted, bounded)--> inner tar reader (gzip|zstd)
//       each entry checked against the signed manifest, its data hashed and
//       bounded by the declared size                        (reader/checks)
//       then handed to a sink: none, or a staging directory (reader/disk_sink)
//
// This file opens the package, runs that pass and, for an extraction, moves
// the finished staging tree into place.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "fmt/format.h"
#include "packaging/package.hpp"
#include "packaging/platform/libarchive.hpp"
#include "packaging/reader/checks.hpp"
#include "packaging/reader/disk_sink.hpp"
#include "packaging/reader/sources.hpp"
#include "platform/fs/files.hpp"

namespace fabu::packaging {
namespace {

namespace fs = std::filesystem;
using platform::ArchiveErrorText;
using platform::ArchiveReader;
using reader::CheckCompression;
using reader::CheckNothingAfterPayload;
using reader::CheckPayloadDigest;
using reader::CheckPayloadEntries;
using reader::CheckPayloadMember;
using reader::EntrySink;
using reader::FileRead;
using reader::FileSource;
using reader::Integrity;
using reader::MakeStagingSink;
using reader::PayloadRead;
using reader::PayloadSource;
using reader::ReadHeaderMembers;
using reader::ReadSignedHeader;
using reader::SignedHeader;

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

// The whole read of an opened package; `sink` receives every checked entry
// (nullptr: verify only). The checks are checks.cpp's, in its order.
Result<VerifiedPackage> ReadOpenedPackage(OpenedPackage& opened, const TrustStore& trust,
                                          const VerifyOptions& options, EntrySink* sink) {
  archive* outer = opened.outer.get();

  // 1. Manifest and signature, checked before the payload is touched.
  auto signed_header = ReadSignedHeader(outer, trust, options);
  if (!signed_header) return std::unexpected(signed_header.error());
  const Manifest& manifest = signed_header->manifest;

  // 2. The payload member, then its entries through the inner tar reader.
  auto payload_name = CheckPayloadMember(outer, manifest);
  if (!payload_name) return std::unexpected(payload_name.error());
  PayloadSource payload;
  payload.outer = outer;
  payload.limit = manifest.payload.size;
  Result<void> entries;
  {
    ArchiveReader inner(archive_read_new());
    archive_read_support_format_tar(inner.get());
    if (manifest.payload.compression == Compression::kZstd) {
      archive_read_support_filter_zstd(inner.get());
    } else {
      archive_read_support_filter_gzip(inner.get());
    }
    if (archive_read_open(inner.get(), &payload, nullptr, PayloadRead, nullptr) != ARCHIVE_OK) {
      entries = std::unexpected(Integrity("payload is corrupt: " + ArchiveErrorText(inner.get())));
    } else {
      entries = CheckPayloadEntries(inner.get(), manifest, sink);
      if (entries) entries = CheckCompression(inner.get(), manifest);
    }
  }
  // 3. The payload digest. A mismatch is the root cause of any entry error,
  // so it is reported first.
  if (auto digest = CheckPayloadDigest(payload, manifest, *payload_name); !digest) {
    return std::unexpected(digest.error());
  }
  if (!entries) return std::unexpected(entries.error());

  // 4. Nothing may follow the payload.
  if (auto end = CheckNothingAfterPayload(outer); !end) return std::unexpected(end.error());
  return opened.Finish(std::move(signed_header->manifest),
                       std::move(signed_header->header.manifest_json));
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
    auto sink = MakeStagingSink(staging);
    result = ReadPackage(file, trust, options, sink.get());
    if (options.remove_file_when_read) {
      // Read to the end (or refused): nothing reads it again. The writer may
      // still be busy; the sync below must not pay for the package's pages.
      ::unlink(file.c_str());
    }
    if (result) {
      if (auto closed = sink->Close(); !closed) result = std::unexpected(closed.error());
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