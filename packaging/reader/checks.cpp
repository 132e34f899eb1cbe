// The checks of a package read (package_reader.cpp), in one file to audit:
// every refusal of a package's content is made here. In the order of a read:
//
//   1. manifest.json then manifest.sig, the first two members, bounded in
//      size; the signature by a trusted key before the manifest is parsed;
//      the manifest's key is the signer's; the expiry.
//   2. the payload member: third, of the signed size.
//   3. each payload entry against the signed manifest (CheckPayloadEntries):
//      a normalized relative path, listed once, no hard link, device, FIFO or
//      setuid/setgid/sticky bit, nothing beneath a symlink of the package,
//      the same type, mode, symlink target, size and SHA-256; no entry
//      missing; the compression the manifest names.
//   4. the payload's digest over every byte of the member, read or not.
//   5. nothing after the payload.
//
// The writer (disk_sink.cpp) does not rely on these: it opens every path
// beneath its root without following a symlink.
#include "packaging/reader/checks.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <set>
#include <unordered_map>

#include "fmt/format.h"

namespace fabu::packaging::reader {

using platform::ArchiveErrorText;

namespace {

std::int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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

}  // namespace

Error Integrity(std::string message) { return Error(ErrorCode::kIntegrity, std::move(message)); }

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

namespace {

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

}  // namespace

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

Result<std::string> CheckPayloadMember(archive* outer, const Manifest& manifest) {
  auto member = NextMember(outer, manifest.payload.file);
  if (!member) return std::unexpected(member.error());
  std::string name = archive_entry_pathname(*member) ? archive_entry_pathname(*member) : "";
  if (name != manifest.payload.file) {
    return std::unexpected(Integrity(fmt::format("order: the third member must be {}, found \"{}\"",
                                                 manifest.payload.file, name)));
  }
  if (archive_entry_size(*member) != static_cast<la_int64_t>(manifest.payload.size)) {
    return std::unexpected(
        Integrity(fmt::format("payload size: {} is {} bytes but the manifest declares {}", name,
                              archive_entry_size(*member), manifest.payload.size)));
  }
  return name;
}

Result<void> CheckCompression(archive* inner, const Manifest& manifest) {
  const bool zstd = manifest.payload.compression == Compression::kZstd;
  if (archive_filter_code(inner, 0) != (zstd ? ARCHIVE_FILTER_ZSTD : ARCHIVE_FILTER_GZIP)) {
    return std::unexpected(
        Integrity(fmt::format("payload is not {}-compressed as the manifest says",
                              CompressionName(manifest.payload.compression))));
  }
  return {};
}

Result<void> CheckPayloadDigest(PayloadSource& payload, const Manifest& manifest,
                                std::string_view payload_name) {
  if (auto drained = payload.Drain(); !drained) return std::unexpected(drained.error());
  if (payload.over_limit || payload.size != manifest.payload.size ||
      payload.hash.FinishHex() != manifest.payload.sha256) {
    return std::unexpected(Integrity(fmt::format(
        "payload digest: {} does not match the SHA-256 in the signed manifest (tampered or "
        "corrupt)",
        payload_name)));
  }
  return {};
}

Result<void> CheckNothingAfterPayload(archive* outer) {
  archive_entry* extra = nullptr;
  const int r = archive_read_next_header(outer, &extra);
  if (r == ARCHIVE_OK) {
    return std::unexpected(
        Integrity(fmt::format("order: unexpected member \"{}\" after the payload",
                              archive_entry_pathname(extra) ? archive_entry_pathname(extra) : "")));
  }
  if (r != ARCHIVE_EOF) {
    return std::unexpected(
        Integrity("package is truncated or corrupt after the payload: " + ArchiveErrorText(outer)));
  }
  return {};
}

}  // namespace fabu::packaging::reader
