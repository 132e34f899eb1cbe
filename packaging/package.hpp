// Building, verifying and extracting fabu packages.
//
// A package is an uncompressed tar whose members are, in this order,
// manifest.json, manifest.sig and payload.tar.gz|zst (docs/package-format.md).
// Readers stream: the signature over the manifest bytes is checked before one
// payload byte is parsed; the payload is hashed as it streams, and every entry
// is checked against the signed manifest as it is read. Memory use is flat in
// the size of the package.
//
// Extraction is all or nothing: the tree is written into a private staging
// directory beside the destination and renamed into place only after every
// check passed; on any failure the staging directory is removed and the
// destination is left absent (or empty, if it existed empty).
//
// All functions are reentrant; they share no state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "packaging/growing_file.hpp"
#include "packaging/keys.hpp"
#include "packaging/manifest.hpp"
#include "protocol/error.hpp"

namespace fabu::packaging {

struct BuildOptions {
  std::string name;
  protocol::Version version;
  std::filesystem::path from;                  // the application tree
  std::optional<std::filesystem::path> hooks;  // a dir with hook executables
  Compression compression = Compression::kGzip;
  std::optional<std::string> expires;  // RFC 3339
  std::map<std::string, std::string> targets;
  std::filesystem::path out;            // the package file to write
  std::optional<std::int64_t> created;  // seconds since epoch; now when unset
};

struct BuildResult {
  Manifest manifest;
  std::filesystem::path path;
  std::uint64_t size = 0;
};

// Builds and signs a package. Refuses a source tree holding a link that leaves
// it, a device file, FIFO or socket, a setuid/setgid file, or a file it cannot
// read. Writes `out` atomically (temp file + rename); nothing is left on error.
Result<BuildResult> BuildPackage(const BuildOptions& options, const SigningKey& key);

struct VerifyOptions {
  // Current time for the expiry check, seconds since epoch; now when unset.
  std::optional<std::int64_t> now;
  // Extraction only: flush the extracted tree to disk (syncfs) and the
  // directory entry (fsync) before returning, so a crash after success cannot
  // lose it. Off only where durability does not matter (benchmarks, tests).
  bool durable = true;
  // Hash the whole file for `package_sha256` (the package id). A caller that
  // checked the id already and compares the signed manifest it saw then with
  // the one returned may turn this off: the payload's digest and every entry
  // are still checked against the signed manifest. `package_sha256` is then
  // empty.
  bool file_digest = true;
  // Extraction only: the package file is the caller's scratch copy (a
  // download): unlink it as soon as it has been read, before the tree is
  // synced, so its pages still waiting to be written never reach the disk.
  bool remove_file_when_read = false;
  // The file is still being written (a download in progress): read it as far
  // as its writer declares, waiting for more, so that checking and extracting
  // overlap the transfer. A file abandoned by its writer fails the read
  // (kUnavailable). Not owned; must outlive the call.
  GrowingFile* growing = nullptr;
  // An open descriptor of `file` to read instead of opening it by name (a
  // download renamed while it is read); `file` then only names it in
  // messages. Read from offset 0 without moving the descriptor's offset, and
  // not closed, so one descriptor serves several reads.
  int fd = -1;
};

struct VerifiedPackage {
  Manifest manifest;
  std::string manifest_json;   // the exact signed bytes
  std::string package_sha256;  // of the whole package file: its id
  std::uint64_t package_size = 0;
};

// Checks everything a package promises without writing anything: member order,
// signature by a trusted key, expiry, payload size and digest, and every
// payload entry against the manifest (types, sizes, digests, modes, safety).
Result<VerifiedPackage> VerifyPackage(const std::filesystem::path& file, const TrustStore& trust,
                                      const VerifyOptions& options = {});

// The quick check before an install: member order, the signature by a trusted
// key (before the payload is touched), expiry, and the SHA-256 of the whole
// file (the package id), without decompressing the payload. A payload that
// does not match its signed manifest is then refused by ExtractPackage,
// which checks everything while it writes. One read of the file.
Result<VerifiedPackage> VerifySignatureAndDigest(const std::filesystem::path& file,
                                                 const TrustStore& trust,
                                                 const VerifyOptions& options = {});

// The header alone: member order up to the signature, the signature by a
// trusted key and expiry; nothing after manifest.sig is read, so
// `package_sha256` is empty. For a caller that already knows the file's digest
// (an agent that hashed the bytes as they were downloaded) and extracts with
// ExtractPackage next, which derives the digest again as it reads.
Result<VerifiedPackage> VerifySignature(const std::filesystem::path& file, const TrustStore& trust,
                                        const VerifyOptions& options = {});

// Verifies and extracts the payload to `dest` in one streaming pass. `dest`
// must be absent or an empty directory.
Result<VerifiedPackage> ExtractPackage(const std::filesystem::path& file, const TrustStore& trust,
                                       const std::filesystem::path& dest,
                                       const VerifyOptions& options = {});

// Reads manifest.json without checking the signature: for `fabu pack inspect`
// only. Never act on what it returns. `manifest_json`, if given, receives the
// exact bytes.
Result<Manifest> ReadManifestUnverified(const std::filesystem::path& file,
                                        std::string* manifest_json = nullptr);

}  // namespace fabu::packaging
